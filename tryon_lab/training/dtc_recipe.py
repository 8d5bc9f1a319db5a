"""``tryon-lab train-dtc``: the recipe behind the shipped ``data/models/dtc``.

Three stages, each resumable: the perceptual network (``train_perceptual_net``), the paper's
ablation (``run_ablation``: every variant trained and scored on the same held-out pairs), and
shipping the profile's chosen variant. The shipped folder holds only what DTC adds to the base
model (reference encoder and hint encoder, fp16) plus ``dtc.json`` naming the base, because
the recipe keeps the main U-Net frozen: the course's weight budget (40 MB for every shipped
model) has no room for a second U-Net and VAE. ``load_dtc_pipeline`` puts the two together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.loading import DTC_RECORD
from tryon_lab.profiles import Profile
from tryon_lab.training.common import run_record, save_atomically, write_json
from tryon_lab.training.dtc import (
    AblationSettings,
    DTCSettings,
    PerceptualSettings,
    ablation_table,
    run_ablation,
    train_perceptual_net,
)
from tryon_lab.training.model_card import write_model_card
from tryon_lab.training.pretrain import TRAINING_RECORD

ABLATION_FILE = "ablation.md"


def ensure_perceptual_net(run_dir: Path, settings: PerceptualSettings, resolution: int) -> Path:
    """Train the perceptual network once into ``run_dir/perceptual-net``; returns that folder."""
    folder = run_dir / "perceptual-net"
    if not (folder / "config.json").is_file():
        train_perceptual_net(run_dir / "perceptual", settings, resolution=resolution, out_dir=folder)
    return folder


def save_dtc_parts(pipe, out_dir: Path, base_name: str, fusion: str | None) -> None:
    """Write the reference encoder and hint encoder of ``pipe`` (fp16) and ``dtc.json`` into ``out_dir``."""
    for name in ("image_encoder", "hint_encoder"):
        module = getattr(pipe, name)
        if module is not None:
            module.to(torch.float16).save_pretrained(out_dir / name)
            module.to(torch.float32)
    write_json(out_dir / DTC_RECORD, {"base": base_name, "fusion": fusion, "main_unet": "the base model's, frozen",
                                      "inpaint_rule": pipe.inpaint_rule})


def train_dtc_recipe(profile: Profile, out_dir: str | Path, run_dir: str | Path, *, base: str | Path | None = None,
                     judge_dir: str | Path | None = None, seed: int = 0,
                     variants: Sequence[str] | None = None) -> Path:
    """Run the profile's ``[dtc]`` recipe on top of ``base`` (default: the shipped mini model) and
    ship its ``ship`` variant to ``out_dir`` with a model card, the ablation table and sample grid.
    ``variants`` narrows the ablation (default: the profile's list). Returns ``out_dir``."""
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
    from tryon_lab.plotting import image_grid
    from tryon_lab.training.pretrain import copy_logs

    section = profile["dtc"]
    variants = tuple(variants or section["variants"])
    if section["ship"] not in variants:
        raise ConfigError(f"the variants {list(variants)} leave out {section['ship']!r}, the variant this recipe ships")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    base_pipe = load_inpaint_pipeline(base, device="cpu")
    resolution = base_pipe.unet.config.sample_size * 2 ** (len(base_pipe.vae.config.block_out_channels) - 1)
    perceptual_dir = ensure_perceptual_net(run_dir, PerceptualSettings(**section["perceptual"]), resolution)
    train = DTCSettings(**section["train"])
    ablation = AblationSettings(train=train, variants=variants, eval_samples=section["eval_samples"],
                                sample_steps=section["sample_steps"], guidance_scale=section["guidance_scale"], seed=seed)
    results = run_ablation(base_pipe, run_dir / "ablation", ablation, perceptual_dir=perceptual_dir, judge_dir=judge_dir)
    shipped = section["ship"]
    variant_dir = run_dir / "ablation" / shipped
    pipe = DTCPipeline.from_pretrained(variant_dir / "pipeline", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    world = World(seed, resolution)
    samples = [world.sample(i, split="test") for i in range(6)]
    outputs = pipe([s.scene for s in samples], [s.shape_mask for s in samples], [s.reference for s in samples],
                   num_inference_steps=ablation.sample_steps, guidance_scale=ablation.guidance_scale, seed=seed).images
    from tryon_lab.data.masks import overlay

    figure = image_grid([img for s, out in zip(samples, outputs)
                         for img in (overlay(s.scene, s.shape_mask), s.reference, out, s.target)],
                        titles=["scene + mask", "reference", "DTC try-on", "ground truth"] * len(samples), ncols=4)
    table = ablation_table(results)
    base_name = Path(base).name if base else SHIPPED_INPAINT
    trained = {name: sum(p.numel() for p in getattr(pipe, name).parameters())
               for name in ("image_encoder", "hint_encoder") if getattr(pipe, name) is not None}
    record = run_record({"component": "dtc", "variant": shipped, "base": base_name, "steps": train.steps,
                         "wall_seconds_per_variant": {k: round(v.get("train_wall_seconds", 0.0), 1) for k, v in results.items()},
                         "trained_parameters": trained})
    metrics = {f"heldout_{k}": round(v, 4) for k, v in results[shipped].items() if k != "train_wall_seconds"}

    def write(tmp: Path) -> None:
        save_dtc_parts(pipe, tmp, base_name, json.loads((variant_dir / "pipeline" / "training.json").read_text())["fusion"])
        copy_logs(tmp, **{name.replace("+", "_"): run_dir / "ablation" / name for name in results},
                  perceptual_net=run_dir / "perceptual")
        (tmp / ABLATION_FILE).write_text(f"# DTC ablation ({len(results)} variants, {ablation.eval_samples} held-out pairs)\n\n{table}\n")
        figure.savefig(tmp / "samples.png", dpi=80, bbox_inches="tight")
        write_json(tmp / TRAINING_RECORD, {**record, "settings": section, "ablation": results})
        write_model_card(
            tmp, f"{out_dir.name}: Diffuse to Choose on the mini model",
            f"Reference encoder and FiLM hint encoder trained on top of the frozen `{base_name}` (its U-Net and VAE "
            "are reused; load with `tryon_lab.pipelines.loading.load_dtc_pipeline`). Inputs: a photo, a mask and one "
            f"reference image of any catalog item; no text, no per-item training. Ablation on held-out pairs: "
            f"[{ABLATION_FILE}]({ABLATION_FILE}).",
            record, metrics, {**section["train"], "variant": shipped},
            [f"tryon-lab train-dtc --profile {profile.name} --judge {judge_dir} --out {out_dir}"],
            {f"held-out pairs ({ablation.sample_steps} DDIM steps, guidance {ablation.guidance_scale})": "samples.png"})

    return save_atomically(out_dir, write)
