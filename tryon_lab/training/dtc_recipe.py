"""``tryon-lab train-dtc``: the recipe behind the shipped ``data/models/dtc``.

Every setting is read and checked first (``recipe_plan``: variant names, the shipped variant, the
judge the selection needs), before any training. Then three stages, each resumable: the perceptual
network (``train_perceptual_net``, self-supervised, no labels), the paper's ablation
(``run_ablation``: every variant and seed trained on the same U-Net parameters, scored on val and
test), and shipping: the profile's ``ship`` variant, or with ``ship = "auto"`` the hint variant
(addition or FiLM; the no-hint baseline is the paper's Paint-by-Example comparator, not a DTC) with
the best val ``select_metric`` (never test). A "lora" or "frozen" recipe ships only what DTC adds
(reference and hint encoders, the U-Net's LoRA when one trained) plus ``dtc.json`` naming the base,
which ``load_dtc_pipeline`` puts together; a "full" recipe ships the whole DTCPipeline in fp16.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.loading import DTC_RECORD, DTC_UNET_LORA, LORA_WEIGHTS, unet_sha256
from tryon_lab.profiles import Profile, settings_from_mapping
from tryon_lab.training.common import run_record, save_atomically, write_json
from tryon_lab.training.dtc import (
    AblationSettings,
    DTCSettings,
    PerceptualSettings,
    ablation_table,
    comparisons_table,
    factor_verdicts,
    hint_step_seconds,
    run_ablation,
    select_variant,
    train_perceptual_net,
)
from tryon_lab.training.dtc.ablation import LORA_FOLDER, ensure_weights
from tryon_lab.training.dtc.evaluation import METRICS
from tryon_lab.training.model_card import write_model_card
from tryon_lab.training.pretrain import TRAINING_RECORD

ABLATION_FILE = "ablation.md"
AUTO = "auto"
SELECTION = "the best val {} among the hint variants"  # what ship = "auto" picks
JUDGE_METRICS = ("identity_acc", "attr_acc_all", "ref_similarity")


@dataclass(frozen=True)
class RecipePlan:
    """The checked settings of one ``train-dtc`` run."""

    ablation: AblationSettings
    perceptual: PerceptualSettings
    ship: str
    select_metric: str


def recipe_plan(profile: Profile, variants: Sequence[str] | None = None, seed: int = 0,
                judge_dir: str | Path | None = None) -> RecipePlan:
    """Read and check the profile's ``[dtc]`` recipe (``variants`` narrows its list; the profile's schema
    checked its keys); ``ConfigError`` for an unknown variant, a shipped variant left out, or an
    automatic selection without a judge."""
    section = profile["dtc"]
    names = tuple(variants or section["variants"])
    ablation = AblationSettings(
        train=DTCSettings.from_mapping(section["train"]), variants=names, seeds=tuple(section["seeds"]),
        seed_variants=tuple(v for v in section["seed_variants"] if v in names),
        eval_samples=section["eval_samples"], val_samples=section["val_samples"],
        sample_steps=section["sample_steps"], guidance_scale=section["guidance_scale"],
        eval_batch_size=section["eval_batch_size"], world_seed=seed,
        bootstrap_resamples=section["bootstrap_resamples"])
    ship, metric = section["ship"], section["select_metric"]
    if ship != AUTO and ship not in names:
        raise ConfigError(f"the variants {list(names)} leave out {ship!r}, the variant this recipe ships")
    if metric not in METRICS:
        raise ConfigError(f"[{profile.name}.dtc] select_metric {metric!r} is not one of {list(METRICS)}")
    has_judge = judge_dir is not None and Path(judge_dir, "config.json").is_file()
    if ship == AUTO and metric in JUDGE_METRICS and not has_judge:
        raise ConfigError(f"ship = 'auto' picks the best val {metric!r}, which the judge measures: give --judge")
    perceptual = settings_from_mapping(PerceptualSettings, section["perceptual"], f"{profile.name}.dtc.perceptual")
    return RecipePlan(ablation, perceptual, ship, metric)


def ensure_perceptual_net(run_dir: Path, settings: PerceptualSettings, resolution: int) -> Path:
    """Train the perceptual network once into ``run_dir/perceptual-net``; returns that folder."""
    folder = run_dir / "perceptual-net"
    if not (folder / "config.json").is_file():
        train_perceptual_net(run_dir / "perceptual", settings, resolution=resolution, out_dir=folder)
    return folder


def save_dtc_parts(pipe, out_dir: Path, base_name: str, fusion: str | None, unet_lora: Path | None = None,
                   base_dir: Path | None = None) -> None:
    """Write the reference encoder and hint encoder of ``pipe`` (fp16) and ``dtc.json`` into ``out_dir``:
    the VAE and main U-Net are the base model's, frozen, or with ``unet_lora`` (the LoRA file a run wrote,
    trained on the U-Net of pipeline folder ``base_dir``) fine-tuned by that LoRA, shipped in fp16 as
    ``unet_lora/`` and fused on load."""
    for name in ("image_encoder", "hint_encoder"):
        module = getattr(pipe, name)
        if module is not None:
            module.to(torch.float16).save_pretrained(out_dir / name)
            module.to(torch.float32)
    record = {"base": base_name, "fusion": fusion, "main_unet": "the base model's, frozen",
              "inpaint_rule": pipe.inpaint_rule}
    if unet_lora is not None:
        with safe_open(unet_lora, "pt") as file:
            layers, metadata = {k: file.get_tensor(k).to(torch.float16) for k in file.keys()}, file.metadata()
        (out_dir / DTC_UNET_LORA).mkdir(parents=True)
        save_file(layers, out_dir / DTC_UNET_LORA / LORA_WEIGHTS, metadata=metadata)
        record.update(main_unet=f"the base model's with {DTC_UNET_LORA}/ fused (a LoRA fine-tune)",
                      base_unet_sha256=unet_sha256(base_dir))
    write_json(out_dir / DTC_RECORD, record)


def paper_differences(train: DTCSettings, variant) -> str:
    """What still differs from Seyfioglu et al. 2024 in this recipe, and why, as Markdown."""
    unet = {"full": "all main-U-Net weights fine-tuned, as in the paper",
            "lora": f"the main U-Net fine-tuned through a rank-{train.unet_lora_rank} LoRA (fused), not all its "
                    "weights: the same parameters in every variant, cheaper to keep close to the base",
            "frozen": "the main U-Net frozen (the paper fine-tunes it): only the encoders train"}[train.unet]
    timestep = ("takes the timestep, as the paper's copy of the U-Net encoder does" if variant.hint_timestep else
                "gets no timestep (a learned constant embedding), so its modulation is computed once per image")
    return ("Differences from the paper: a small CNN + transformer reference encoder trained from scratch instead "
            "of a frozen DINOv2 (no DINOv2 weights here); a five-layer self-supervised CNN instead of ImageNet VGG "
            f"for the perceptual loss (independent of the judge); {unet}; the hint encoder {timestep}; a "
            "mini SD-style model on 128 px world renders instead of SD-1.5 on photos.")


def _trained_parts(pipeline_dir: Path, base_pipe, unet_mode: str):
    """The DTCPipeline a run saved in ``pipeline_dir``; for a "lora" or "frozen" recipe only its trained
    encoders are read (around ``base_pipe``'s U-Net and VAE): shipping needs nothing else of it."""
    from diffusers import DDIMScheduler

    from tryon_lab.models.dtc import HintEncoder, ReferenceEncoder
    from tryon_lab.pipelines.dtc import DTCPipeline

    if unet_mode == "full":
        return DTCPipeline.from_pretrained(pipeline_dir, local_files_only=True)
    hint = pipeline_dir / "hint_encoder"
    return DTCPipeline(vae=base_pipe.vae, unet=base_pipe.unet,
                       image_encoder=ReferenceEncoder.from_pretrained(pipeline_dir / "image_encoder"),
                       hint_encoder=HintEncoder.from_pretrained(hint) if hint.is_dir() else None,
                       scheduler=DDIMScheduler.from_config(base_pipe.scheduler.config),
                       inpaint_rule=base_pipe.inpaint_rule)


def _log_names(ablation_dir: Path, ablation: AblationSettings) -> dict[str, Path]:
    """{log name: run folder}: ``<variant>`` for the first seed's run (what notebook 03 plots),
    ``<variant>_seed-<s>`` for the others; "+" written "_"."""
    first = ablation.seeds[0]
    return {(name if seed == first else f"{name}_seed-{seed}").replace("+", "_"): ablation_dir / name / f"seed-{seed}"
            for name, seed in ablation.runs()}


def train_dtc_recipe(profile: Profile, out_dir: str | Path, run_dir: str | Path, *, base: str | Path | None = None,
                     judge_dir: str | Path | None = None, seed: int = 0,
                     variants: Sequence[str] | None = None, jobs: int = 1) -> Path:
    """Run the profile's ``[dtc]`` recipe on top of ``base`` (default: the shipped mini model) and
    ship the chosen variant to ``out_dir`` with a model card, the ablation tables and a sample grid.
    ``variants`` narrows the ablation (default: the profile's list); ``seed``: the world of the
    training pairs and evaluation samples; ``jobs``: ablation runs trained at once. Returns ``out_dir``."""
    from tryon_lab.data.masks import overlay
    from tryon_lab.data.world import World
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_dtc_pipeline, load_inpaint_pipeline
    from tryon_lab.plotting import image_grid
    from tryon_lab.training.pretrain import copy_logs

    plan = recipe_plan(profile, variants, seed, judge_dir)  # every check before any work
    ablation = plan.ablation
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    base_dir = Path(base) if base else shipped_model(SHIPPED_INPAINT)
    base_pipe = load_inpaint_pipeline(base_dir, device="cpu")
    perceptual_dir = None
    if ablation.needs_perceptual():
        perceptual_dir = ensure_perceptual_net(run_dir, plan.perceptual, base_pipe.resolution)
    result = run_ablation(base_dir if jobs > 1 else base_pipe, run_dir / "ablation", ablation,
                          perceptual_dir=perceptual_dir, judge_dir=judge_dir, jobs=jobs)
    hinted = {name: s for name, s in result.scores["val"].items() if ablation.parsed[name].fusion is not None}
    shipped = select_variant(hinted or result.scores["val"], plan.select_metric) if plan.ship == AUTO else plan.ship
    variant = ablation.parsed[shipped]
    run_folder = run_dir / "ablation" / shipped / f"seed-{ablation.seeds[0]}"
    saved = ensure_weights(base_pipe, run_dir / "ablation", ablation, shipped, ablation.seeds[0], perceptual_dir)
    pipe = _trained_parts(saved, base_pipe, ablation.train.unet)
    samples = [World(seed, base_pipe.resolution).sample(i, split="test") for i in range(6)]
    base_name = Path(base).name if base else SHIPPED_INPAINT
    timed = [f for f in ("film", "add") if any(v.fusion == f and v.hint_timestep for v in ablation.parsed.values())]
    step_seconds = {name: round(s, 5) for f in timed for name, s in hint_step_seconds(base_pipe, fusion=f).items()}
    trained = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
               for name in ("unet", "image_encoder", "hint_encoder") if getattr(pipe, name) is not None}
    record = run_record({"component": "dtc", "variant": shipped, "base": base_name, "steps": ablation.train.steps,
                         "unet": ablation.train.unet, "selected_by": plan.select_metric if plan.ship == AUTO else "profile",
                         "train_wall_seconds": {k: round(v, 1) for k, v in result.wall_seconds.items()},
                         "parameters": trained, "hint_step_seconds": step_seconds})
    perceptual_record = (json.loads((perceptual_dir / "training.json").read_text())
                         if perceptual_dir is not None and (perceptual_dir / "training.json").is_file() else None)
    metrics = {f"test_{k}": round(v, 4) for k, v in result.test[shipped].items() if isinstance(v, float)}
    tables = (f"# DTC ablation\n\nTest split: {ablation.eval_samples} try-all pairs whose items, people and rooms no "
              f"training saw; {ablation.sample_steps} DDIM steps, guidance {ablation.guidance_scale}. Values: mean over "
              f"training seeds [95% bootstrap interval] (each seed's value when several).\n\n{ablation_table(result.test)}"
              f"\n\n## Verdicts by factor (test)\n\n{factor_verdicts(result.comparisons)}"
              f"\n\n## Paired differences (test)\n\n{comparisons_table(result.comparisons)}\n\n"
              f"## Selection (val split, {ablation.val_samples} pairs)\n\n{ablation_table(result.scores['val'])}\n\n"
              f"Shipped: `{shipped}` ({SELECTION.format(plan.select_metric) if plan.ship == AUTO else 'named by the profile'}).\n")

    def write(tmp: Path) -> None:
        lora = run_folder / LORA_FOLDER / LORA_WEIGHTS
        if ablation.train.unet == "full":
            pipe.to(torch.float16).save_pretrained(tmp, safe_serialization=True)
        else:
            save_dtc_parts(pipe, tmp, base_name, variant.fusion, lora if ablation.train.unet == "lora" else None,
                           base_dir)
        copy_logs(tmp, **_log_names(run_dir / "ablation", ablation), perceptual_net=run_dir / "perceptual")
        (tmp / ABLATION_FILE).write_text(tables)
        shipped_pipe = load_dtc_pipeline(tmp, base=base_dir, device="cpu")  # the grid shows what ships
        shipped_pipe.set_progress_bar_config(disable=True)
        outputs = shipped_pipe([s.scene for s in samples], [s.shape_mask for s in samples],
                               [s.reference for s in samples], num_inference_steps=ablation.sample_steps,
                               guidance_scale=ablation.guidance_scale, seed=seed).images
        figure = image_grid([img for s, out in zip(samples, outputs)
                             for img in (overlay(s.scene, s.shape_mask), s.reference, out, s.target)],
                            titles=["scene + mask", "reference", "DTC try-on", "ground truth"] * len(samples), ncols=4)
        figure.savefig(tmp / "samples.png", dpi=80, bbox_inches="tight")
        write_json(tmp / TRAINING_RECORD, {**record, "settings": {**profile["dtc"], "plan": asdict(ablation)},
                                           "ablation": result.test, "val": result.scores["val"],
                                           "comparisons": result.comparisons, "perceptual_net": perceptual_record})
        unet_note = ("its main U-Net fine-tuned (" + (f"LoRA rank {ablation.train.unet_lora_rank}, fused" if
                     ablation.train.unet == "lora" else "all weights") + "), as in every variant of the ablation"
                     if ablation.train.unet != "frozen" else f"on top of the frozen `{base_name}` U-Net and VAE")
        write_model_card(
            tmp, f"{out_dir.name}: Diffuse to Choose on `{base_name}`",
            f"Variant `{shipped}`: reference encoder and hint encoder trained {unet_note}. Inputs: a photo, a mask "
            "and one reference image of any catalog item; no text, no per-item training. Perceptual network: "
            f"{(perceptual_record or {}).get('objective', 'none')}. Ablation (test split, intervals, paired "
            f"verdicts): [{ABLATION_FILE}]({ABLATION_FILE}).\n\nWhat the ablation decides (test pairs, paired 95% "
            f"intervals):\n\n{factor_verdicts(result.comparisons)}\n\n{paper_differences(ablation.train, variant)}",
            record, metrics, {**profile["dtc"]["train"], "variant": shipped},
            [(f"tryon-lab train-dtc --profile {profile.name} --base {base or SHIPPED_INPAINT} --judge {judge_dir} "
              f"--out {out_dir}")],
            {f"test pairs ({ablation.sample_steps} DDIM steps, guidance {ablation.guidance_scale})": "samples.png"})

    return save_atomically(out_dir, write)


def dtc_curve_recipe(profile: Profile, run_dir: str | Path, variant: str, steps: int, every: int | None = None, *,
                     base: str | Path | None = None, judge_dir: str | Path, seed: int = 0,
                     into: str | Path | None = None):
    """The learning curve of the profile's ablation run ``variant`` (its first training seed; world
    ``seed``) in ``run_dir``, trained on to ``steps`` and scored on val every ``every`` steps (default:
    the ablation's run length): ``curve.extend_run`` on the base model and perceptual network the
    ablation used, then its figure. ``into``: a DTC folder that ships this variant, which receives
    the curve as ``learning_curve.csv`` / ``.png`` (what ``benchmarks dtc`` reports). Returns (rows,
    the curve's folder)."""
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
    from tryon_lab.training.curve import CURVE_FILE, FIGURE_FILE
    from tryon_lab.training.dtc.curve import SHIPPED_CURVE, SHIPPED_FIGURE, curve_folder, extend_run, write_curve_figure

    ablation, run_dir = recipe_plan(profile, None, seed, judge_dir).ablation, Path(run_dir)
    if variant not in ablation.parsed:
        raise ConfigError(f"{variant!r} is not one of the [{profile.name}.dtc] variants {list(ablation.variants)}")
    if into is not None:
        record = Path(into) / TRAINING_RECORD
        shipped = json.loads(record.read_text()).get("variant") if record.is_file() else None
        if shipped != variant:
            raise ConfigError(f"--into {into} ships {shipped!r}, not {variant!r}: its curve would describe another model")
    every = every or ablation.train.steps
    perceptual = None
    if ablation.parsed[variant].perceptual:
        perceptual = run_dir / "perceptual-net"
        if not (perceptual / "config.json").is_file():
            raise ConfigError(f"{perceptual} is missing: the curve continues a run that train-dtc trained with it")
    base_pipe = load_inpaint_pipeline(Path(base) if base else shipped_model(SHIPPED_INPAINT), device="cpu")
    train_seed = ablation.seeds[0]
    rows = extend_run(base_pipe, run_dir, ablation, variant, train_seed, steps, every,
                      perceptual=perceptual, judge_dir=judge_dir)
    folder = curve_folder(run_dir, variant, train_seed)
    write_curve_figure(folder, rows, f"{variant}, seed {train_seed}: {ablation.val_samples} val pairs, 95% intervals")
    if into is not None:
        for name, shipped_name in ((CURVE_FILE, SHIPPED_CURVE), (FIGURE_FILE, SHIPPED_FIGURE)):
            tmp = Path(into) / f".tmp-{shipped_name}"
            shutil.copyfile(folder / name, tmp)
            tmp.replace(Path(into) / shipped_name)
    return rows, folder
