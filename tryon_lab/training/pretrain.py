"""``tryon-lab pretrain vae|encoder|unet``: the recipes behind the shipped checkpoints.

Each function trains (resuming from ``run_dir``), evaluates on held-out world samples, and saves
a finished folder atomically with ``training.json`` (what ran, how long, what it scored) and,
for shipped models, a ``MODEL_CARD.md``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tryon_lab.data.attributes import N_MOTIFS
from tryon_lab.models.config import load_model_config
from tryon_lab.paths import sha256_file
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE
from tryon_lab.profiles import Profile
from tryon_lab.training.common import run_record, save_atomically, write_json
from tryon_lab.training.curve import CURVE_FILE
from tryon_lab.training.model_card import write_model_card

TRAINING_RECORD = "training.json"
LOGS = "logs"
UNET_FILE = "unet/diffusion_pytorch_model.safetensors"


def copy_logs(target: Path, **runs: str | Path) -> None:
    """Copy each run's losses to ``target/logs/<name>_losses.csv`` (the log a card cites), and its
    learning curve (``tryon-lab curve``), when it has one, to ``<name>_curve.csv``.

    A run is a run folder (its ``losses.csv`` and ``curve.csv``) or a CSV file (a log an earlier card
    already cites).
    """
    (target / LOGS).mkdir(exist_ok=True)
    for name, run in runs.items():
        run = Path(run)
        sources = {"losses": run} if run.suffix == ".csv" else {"losses": run / "losses.csv", "curve": run / CURVE_FILE}
        for kind, source in sources.items():
            if source.is_file():
                shutil.copyfile(source, target / LOGS / f"{name}_{kind}.csv")


def read_record(folder: str | Path) -> dict:
    """The ``training.json`` of a trained folder ({} when it has none)."""
    path = Path(folder) / TRAINING_RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def _reproduce(component: str, profile: Profile, out_dir: Path, extra: str = "") -> list[str]:
    return [f"tryon-lab pretrain {component} --profile {profile.name}{extra} --out {out_dir}"]


def vae_heldout_psnrs(vae, world, samples: int) -> list[float]:
    """PSNR (dB) of the VAE reconstruction (mode of the posterior) of each of the first ``samples`` test-split targets."""
    from tryon_lab.metrics.baselines import vae_round_trip
    from tryon_lab.metrics.image import psnr

    targets = [world.sample(i, split="test").target for i in range(samples)]
    return [psnr(recon, target) for recon, target in zip(vae_round_trip(vae, targets, batch_size=16), targets)]


def vae_heldout_psnr(vae, world, samples: int) -> float:
    """Mean PSNR (dB) of VAE reconstructions of the first ``samples`` full test-split targets."""
    return float(np.mean(vae_heldout_psnrs(vae, world, samples)))


def pretrain_vae(profile: Profile, run_dir: str | Path, out_dir: str | Path, seed: int = 0,
                 init_dir: str | Path | None = None, only: list[str] | None = None,
                 judge_dir: str | Path | None = None) -> Path:
    """Train the VAE of the profile's model config; save it to ``out_dir``; returns ``out_dir``.

    ``init_dir`` and ``only`` continue a finished VAE with some of the recipe's phases (train_vae).
    With the judge in ``judge_dir`` the record also gets the judge's identity accuracy after the VAE's
    round trip (``decoder_ceiling``) on the profile's ``judge_samples`` val and test renderings.
    """
    from tryon_lab.data.world import World
    from tryon_lab.training.vae import VAESettings, selected_phases, train_vae

    section = profile["pretrain"]
    config = load_model_config(section["model"])
    settings = VAESettings(**section["vae"])
    vae, wall = train_vae(config, run_dir, out_dir, settings, seed=seed, init_dir=init_dir, only=only)
    metrics = {"vae_heldout_psnr_db": vae_heldout_psnr(vae, World(seed, config.resolution), section["eval_samples"]),
               "scaling_factor": vae.config.scaling_factor}
    if judge_dir:
        from tryon_lab.metrics.baselines import decoder_ceiling
        from tryon_lab.metrics.judge import WorldJudge

        judge = WorldJudge.load(judge_dir)
        for split in ("val", "test"):
            ceiling = decoder_ceiling(vae, judge, section["judge_samples"], split=split, seed=seed, truth=False)
            metrics[f"{split}_round_trip_identity"] = str(ceiling["round_trip"])
    run = selected_phases(settings, config.resolution, only)
    runs = {"vae" if phase.name == "vae" else f"vae_{phase.name}": str(phase.run_dir(run_dir)) for phase in run}
    write_json(Path(out_dir) / TRAINING_RECORD, run_record({
        "component": "vae", "model_config": config.name, "settings": settings.__dict__, "init": str(init_dir) if init_dir else None,
        "phases": [phase.name for phase in run], "wall_seconds": wall, "metrics": metrics, "runs": runs}))
    return Path(out_dir)


def pretrain_encoder(profile: Profile, run_dir: str | Path, out_dir: str | Path, seed: int = 0,
                     init_dir: str | Path | None = None) -> Path:
    """Train the world encoder (with ``init_dir``: continue that judge's motif network, its
    attribute network frozen); save it with test-split accuracies and a model card; returns ``out_dir``.

    Reported on test items no training saw: attribute accuracy of item crops and catalog shots,
    and the identity ceiling, the identity accuracy of ground-truth renderings (the best a
    try-on can score), each with its 95% bootstrap interval.
    """
    from tryon_lab.data.datasets import ItemCropDataset
    from tryon_lab.data.world import World
    from tryon_lab.training.world_encoder import (
        EncoderSettings,
        attribute_accuracy,
        train_world_encoder,
    )

    section = profile["pretrain"]
    config = load_model_config(section["model"])
    recipe = dict(section["encoder"])
    continued = {"steps": recipe.pop("init_steps"), "learning_rate": recipe.pop("init_learning_rate")}
    settings = EncoderSettings(**{**recipe, **(continued if init_dir else {})})
    began = time.perf_counter()
    encoder = train_world_encoder(run_dir, settings, resolution=config.resolution, seed=seed, init=init_dir)
    wall = time.perf_counter() - began
    world = World(seed, config.resolution)
    heldout = ItemCropDataset(world, split="test", length=max(64, section["eval_samples"] * 4), evaluation=True)
    accuracy = attribute_accuracy(encoder, heldout)
    metrics = {f"heldout_accuracy_{name}": f"{value:.3f}" for name, value in accuracy.items()}
    metrics["heldout_crops"] = len(heldout)
    ceiling = identity_ceiling(encoder, world, section["judge_samples"])
    metrics.update({"val_identity_ceiling": str(identity_ceiling(encoder, world, section["judge_samples"], "val")),
                    "test_identity_ceiling": str(ceiling), "test_identity_samples": section["judge_samples"],
                    "identity_chance": f"{1 / N_MOTIFS:.3f}"})
    origin, origin_log = _attribute_origin(init_dir) if init_dir else (None, None)
    record = run_record({"component": "world-encoder", "steps": settings.steps, "wall_seconds": round(wall, 1),
                         "init": origin, "motif_init": _judge_named(init_dir) if init_dir else None})
    earlier = ({"attribute_network": origin_log, "motif_network_start": Path(init_dir, LOGS, "encoder_losses.csv")}
               if init_dir else {})

    def write(tmp: Path) -> None:
        encoder.save_pretrained(tmp)
        copy_logs(tmp, encoder=run_dir, **earlier)
        write_json(tmp / TRAINING_RECORD, {**record, "settings": settings.__dict__, "metrics": metrics})
        write_model_card(
            tmp, "world-encoder: the course's judge",
            "A small CNN that names an item's category, colour and pattern from a 64x64 crop (attribute network), "
            "and reads the motif that tells an item from its caption twins, items with the same caption that differ "
            "only in their motif (motif network: the motif's shape, fill and inner colour). It scores generated "
            "try-ons: attribute accuracy, identity accuracy (top-1 retrieval among the twins' catalog shots by the "
            "motif read on each; chance 1/4), reference similarity, and KID/FID on world-encoder (attribute network) "
            "features. Trained on train-split items, people and rooms only, with attribute labels, and with each "
            "item wearing a motif drawn at random (never a val or test item's design), so that the motif network "
            "learns to read motifs rather than recall those of train items; every metric here is measured on the "
            "test split (the val ceiling is the one recipes were chosen on). No model is trained against it."
            + (f" The attribute network was kept, frozen, from {record['init']}; this run continued the motif "
               f"network of {record['motif_init']} (its loss log: logs/motif_network_start_losses.csv)."
               if init_dir else ""),
            record, metrics, {**settings.__dict__, "architecture": ENCODER_ARCHITECTURE},
            _reproduce("encoder", profile, Path(out_dir), f" --init {init_dir}" if init_dir else ""))

    return save_atomically(out_dir, write)


ENCODER_ARCHITECTURE = ("attribute network: 4 conv stages (32-64-128-128), GroupNorm, SiLU, average pool, 128-d "
                        "embedding, 3 linear heads; motif network: its own 4 conv stages (32-64-128-128), max and "
                        "average pool, 256 hidden, 3 linear heads (shape, fill, inner colour); identity embedding: "
                        "the square roots of the 3 motif distributions")


def _attribute_origin(init_dir: str | Path) -> tuple[str, Path]:
    """Where a judge's kept attribute network came from, and the loss log of the run that trained
    it: ``init_dir``'s own, or, when ``init_dir`` kept it from a judge before, that one's."""
    record = read_record(init_dir)
    logs = Path(init_dir) / LOGS
    if record.get("init"):
        return record["init"], logs / "attribute_network_losses.csv"
    return _judge_named(init_dir), logs / "encoder_losses.csv"


def _judge_named(folder: str | Path) -> str:
    """A saved judge as a record names it: its folder, weights hash and the command that trained it."""
    from diffusers.utils import SAFETENSORS_WEIGHTS_NAME

    weights = sha256_file(Path(folder, SAFETENSORS_WEIGHTS_NAME))[:16]
    return f"{folder} (weights sha256 {weights}, trained by `{read_record(folder).get('command', '?')}`)"


def pretrain_component(component: str, profile: Profile, out_dir: str | Path, run_dir: str | Path | None = None, *,
                       vae_dir: str | Path | None = None, judge_dir: str | Path | None = None,
                       init_dir: str | Path | None = None, phases: list[str] | None = None,
                       into: str | Path | None = None, seed: int = 0, minutes: float | None = None,
                       log: Callable[[str], None] = print) -> Path:
    """Train ``component`` ("vae", "encoder" or "unet") with its recipe into ``out_dir``; return the folder it saved.

    A U-Net may start from the finished pipeline in ``init_dir`` and stop (resumably) after ``minutes``.

    ``run_dir`` defaults to ``runs/<profile>/<component>``. A VAE may start from ``init_dir`` and run
    only some ``phases``; with ``into`` it then goes into that finished pipeline (``swap_vae``), whose
    folder is returned. The U-Net trains on the VAE in ``vae_dir``. Arguments are checked before any
    training (``ConfigError``); ``log`` gets a line for every folder saved but the returned one.
    """
    from tryon_lab.errors import ConfigError

    run_dir = Path(run_dir or Path("runs") / profile.name / component)
    if minutes is not None and (component != "unet" or minutes <= 0):
        raise ConfigError(f"--minutes applies to the U-Net only and must be positive; got {minutes} for {component}")
    if component == "vae":
        if init_dir and not Path(init_dir, "config.json").is_file():
            raise ConfigError(f"--init must name a saved VAE folder (with config.json); got {str(init_dir)!r}")
        if into and (phases is None or "vae" in phases):
            # refused before hours of training, not after: phase 1 retrains the encoder
            raise ConfigError("--into ships a retrained decoder only, and phase 'vae' retrains the encoder: "
                              "choose decoder phases with --phases (e.g. --phases polish)")
        out = pretrain_vae(profile, run_dir, out_dir, seed=seed, init_dir=init_dir, only=phases, judge_dir=judge_dir)
        if not into:
            return out
        log(f"saved vae to {out}")
        return swap_vae(profile, out, into, judge_dir=judge_dir, seed=seed)
    if component == "encoder":
        if init_dir and not Path(init_dir, "config.json").is_file():
            raise ConfigError(f"--init must name a saved world encoder (with config.json); got {str(init_dir)!r}")
        return pretrain_encoder(profile, run_dir, out_dir, seed=seed, init_dir=init_dir)
    if component == "unet":
        if not vae_dir or not Path(vae_dir, "config.json").is_file():
            raise ConfigError(f"--vae must name a trained VAE folder (with config.json); got {vae_dir!r}")
        if init_dir and not Path(init_dir, UNET_FILE).is_file():
            raise ConfigError(f"--init must name a finished pipeline folder (with {UNET_FILE}); got {str(init_dir)!r}")
        return pretrain_unet(profile, run_dir, vae_dir, out_dir, judge_dir=judge_dir, seed=seed, init_dir=init_dir,
                             minutes=minutes)
    raise ConfigError(f"unknown component {component!r}: choose vae, encoder or unet")


def identity_ceiling(encoder, world, samples: int, split: str = "test"):
    """Identity accuracy of the ground-truth targets of the first ``samples`` samples of ``split``
    (crops at their items' masks, as try-ons are judged), with its bootstrap interval (a stats.Interval)."""
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.metrics.stats import bootstrap

    judge = WorldJudge(encoder.eval())
    hits = []
    for start in range(0, samples, 64):
        batch = [world.sample(i, split=split) for i in range(start, min(samples, start + 64))]
        hits.append(judge.identity_hits([s.target for s in batch], [s.item_mask for s in batch],
                                        [s.item for s in batch], world))
    return bootstrap(np.mean, np.concatenate(hits).astype(float))


def sample_rows(pipe, samples, steps: int = 25, guidance_scale: float = TEXT_GUIDANCE, seed: int = 0) -> list[list]:
    """Rows of (scene, mask overlay, try-on, ground truth) for held-out samples, for grids and cards."""
    from tryon_lab.data.masks import overlay

    result = pipe([s.scene for s in samples], [s.shape_mask for s in samples], [s.caption for s in samples],
                  num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed)
    return [[s.scene, overlay(s.scene, s.shape_mask), out, s.target] for s, out in zip(samples, result.images)]


def save_pipeline(model, out_dir: Path, dtype: torch.dtype = torch.float16) -> None:
    """Save a pipeline (or one of its models) in diffusers layout with weights in ``dtype``.

    fp16 halves the shipped size; the model in memory stays float32.
    """
    model.to(dtype)
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    finally:
        model.to(torch.float32)


def pretrain_unet(profile: Profile, run_dir: str | Path, vae_dir: str | Path, out_dir: str | Path,
                  judge_dir: str | Path | None = None, seed: int = 0, init_dir: str | Path | None = None,
                  minutes: float | None = None) -> Path:
    """Train tokenizer, text encoder and U-Net on top of the VAE in ``vae_dir`` (from the pipeline in
    ``init_dir`` if given, for at most ``minutes`` if given); ship the pipeline.

    Evaluates on held-out samples (masked PSNR; with a judge, attribute accuracy) and writes the
    pipeline folder with MODEL_CARD.md, training.json and samples.png to ``out_dir``.
    """
    from tryon_lab.training.inpaint import LATENT_LAYERS, InpaintSettings, train_inpainting

    section = profile["pretrain"]
    config = load_model_config(section["model"])
    settings = InpaintSettings(**section["unet"], max_minutes=minutes)
    pipe, result = train_inpainting(config, run_dir, vae_dir, settings, seed=seed, init_dir=init_dir)
    vae_record = read_record(vae_dir)
    params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "text_encoder", "vae")}
    start = {"init": str(init_dir), "init_unet_sha256": sha256_file(Path(init_dir) / UNET_FILE)} if init_dir else {}
    init_config = json.loads((Path(init_dir) / "unet" / "config.json").read_text()) if init_dir else {}
    if init_config and init_config["in_channels"] != config.unet["in_channels"]:
        start["init_new_layers"] = list(LATENT_LAYERS)  # a transplant onto another latent width
    record = run_record({"component": "mini-sd-inpaint", "unet_steps": result.steps, **start,
                         "unet_wall_seconds": round(result.wall_seconds, 1),
                         "vae_steps": vae_record.get("settings", {}).get("steps"),
                         "vae_wall_seconds": vae_record.get("wall_seconds"),
                         "parameters": params})
    logs = {"unet": run_dir, **{name: Path(path) for name, path in vae_record.get("runs", {}).items()}}
    return ship_pipeline(pipe, profile, out_dir, judge_dir, {**record, "settings": settings.__dict__},
                         vae_record, logs, vae_dir, seed)


def swap_vae(profile: Profile, vae_dir: str | Path, pipeline_dir: str | Path, judge_dir: str | Path | None = None,
             seed: int = 0) -> Path:
    """Put the VAE in ``vae_dir`` into the finished pipeline ``pipeline_dir``; re-score and re-write its card.

    This ships a retrained decoder without retraining the U-Net, which is sound only while the
    latent space is the one the U-Net learnt: the VAE must have the pipeline's encoder weights and
    scaling factor, else ConfigError. Returns ``pipeline_dir``.
    """
    from diffusers import AutoencoderKL

    from tryon_lab.errors import ConfigError
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(pipeline_dir, device="cpu")
    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32)
    changed = latent_space_changes(pipe.vae, vae)
    if changed:
        raise ConfigError(f"{vae_dir} encodes into another latent space than {pipeline_dir} ({changed}); "
                          "its U-Net would need retraining: use `tryon-lab pretrain unet --vae ...`")
    pipe.register_modules(vae=vae)
    old, vae_record = read_record(pipeline_dir), read_record(vae_dir)
    # vae_wall_seconds stays the recipe run's: adding the update's would count it again at every re-run
    record = {**{key: value for key, value in old.items() if key != "metrics"},
              "vae_update": {key: vae_record.get(key) for key in ("command", "init", "phases", "wall_seconds")}}
    logs = {path.stem.removesuffix("_losses"): path for path in sorted(Path(pipeline_dir, LOGS).glob("*.csv"))}
    logs.update({name: Path(path) for name, path in vae_record.get("runs", {}).items()})

    def save_new_vae(pipe, tmp: Path) -> None:
        # every other component byte for byte: re-saving would rewrite their configs with new defaults
        shutil.copytree(pipeline_dir, tmp)
        shutil.rmtree(tmp / "vae")
        save_pipeline(pipe.vae, tmp / "vae")

    return ship_pipeline(pipe, profile, pipeline_dir, judge_dir, record, vae_record, logs, vae_dir, seed,
                         save=save_new_vae)


def latent_space_changes(before, after) -> str:
    """What differs between two AutoencoderKLs' encoders, quant convs and scaling factors ('' if nothing).

    Weights are compared at fp16, the precision pipelines ship in.
    """
    if before.config.scaling_factor != after.config.scaling_factor:
        return f"scaling factor {before.config.scaling_factor} -> {after.config.scaling_factor}"
    old, new = before.state_dict(), after.state_dict()
    encoding = [name for name in old if name.startswith(("encoder.", "quant_conv."))]
    differ = [name for name in encoding if name not in new or old[name].shape != new[name].shape
              or not torch.equal(old[name].half(), new[name].half())]
    return f"{len(differ)} of {len(encoding)} encoder weights differ, first {differ[0]}" if differ else ""


def continued(record: dict) -> str:
    """The ``--init``/``--minutes`` options of a U-Net run record ('' for a run from scratch without a budget)."""
    minutes = record.get("settings", {}).get("max_minutes")
    return (f" --init {record['init']}" if record.get("init") else "") + (f" --minutes {minutes:g}" if minutes else "")


def ship_pipeline(pipe, profile: Profile, out_dir: str | Path, judge_dir: str | Path | None, record: dict,
                  vae_record: dict, logs: dict[str, Path], vae_dir: str | Path, seed: int = 0,
                  save: Callable[..., None] | None = None) -> Path:
    """Score ``pipe`` on test-split samples (means and 95% intervals) and write it to ``out_dir`` with
    logs, samples.png and its card.

    ``record`` is the run record (with the U-Net ``settings``); ``vae_record`` the VAE's training.json;
    ``logs`` name -> run folder or CSV for the card; ``save(pipe, folder)`` writes the weights
    (default: save_pipeline). Returns ``out_dir``.
    """
    from tryon_lab.data.world import World
    from tryon_lab.metrics.inpainting import pipeline_method, score_outputs
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.plotting import image_grid

    section = profile["pretrain"]
    config = load_model_config(section["model"])
    pipe.set_progress_bar_config(disable=True)
    world = World(seed, config.resolution)
    heldout = [world.sample(i, split="test") for i in range(section["eval_samples"])]
    judge = WorldJudge.load(judge_dir) if judge_dir and Path(judge_dir, "config.json").is_file() else None
    scores = score_outputs(heldout, pipeline_method(pipe)(heldout), judge, intervals=True, world=world)
    metrics = {f"test_{k}": round(v, 4) for k, v in scores.items()}
    metrics.update(vae_record.get("metrics", {}))
    rows = sample_rows(pipe, heldout[:6])
    figure = image_grid([img for row in rows for img in row],
                        titles=["scene", "mask", "try-on", "ground truth"] * len(rows), ncols=4)
    recipe = {**record.get("settings", {}), "model_config": config.name, "vae_recipe": vae_record.get("settings")}
    run = {key: value for key, value in record.items() if key != "settings"}

    def write(tmp: Path) -> None:
        (save or save_pipeline)(pipe, tmp)
        copy_logs(tmp, **logs)
        figure.savefig(tmp / "samples.png", dpi=80, bbox_inches="tight")
        write_json(tmp / TRAINING_RECORD, {**record, "metrics": metrics})
        write_model_card(
            tmp, f"{Path(out_dir).name}: mini Stable Diffusion inpainting",
            f"A {config.resolution}x{config.resolution} text-guided inpainting model in the SD-1.5-inpainting layout "
            f"(UNet2DConditionModel with {pipe.unet.config.in_channels} input channels on a "
            f"{pipe.vae.config.latent_channels}-channel latent, AutoencoderKL, CLIPTextModel, CLIPTokenizer), "
            + (f"its text encoder and U-Net trained further from those of {record['init']} (U-Net sha256 "
               f"{record['init_unet_sha256'][:16]}) " if record.get("init") else "trained from scratch ")
            + "on the synthetic world. Weights are stored in fp16; load with torch_dtype=torch.float32 on CPU.",
            run, metrics, recipe,
            [f"tryon-lab pretrain vae --profile {profile.name} --out {vae_dir}",
             f"tryon-lab pretrain encoder --profile {profile.name} --out {judge_dir}",
             f"tryon-lab pretrain unet --profile {profile.name} --vae {vae_dir} --judge {judge_dir} --out {out_dir}"
             + continued(record)],
            {"held-out samples (25 DDIM steps, guidance 4)": "samples.png"})

    return save_atomically(out_dir, write)
