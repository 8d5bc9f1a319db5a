"""``tryon-lab dreambooth``: one call from command-line arguments to a saved garment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tryon_lab.errors import ConfigError


@dataclass
class DreamBoothRun:
    """What ``run_dreambooth`` made: the output folder, the training result, a one-paragraph summary."""

    out_dir: Path
    result: object
    summary: str


def run_dreambooth(profile, out_dir: str | Path, *, garment: str | None = None, images: str | Path | None = None,
                   token: str = "sks", class_word: str | None = None, lora_rank: int | None = None,
                   train_text_encoder: bool = False, steps: int | None = None, base: str | Path | None = None,
                   run_dir: str | Path | None = None, seed: int = 0) -> DreamBoothRun:
    """Build the instance set (``garment`` id or ``images`` folder), train with the profile's
    ``dreambooth`` settings (``lora_rank`` 0/None = full), save to ``out_dir``; resumes from ``run_dir``
    (default ``runs/<profile>/dreambooth/<run_name>``: adapter name, mode, settings hash)."""
    from tryon_lab.data.world import World
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT
    from tryon_lab.training.dreambooth.instances import folder_instances, item_from_id, world_instances
    from tryon_lab.training.dreambooth.train import (
        DreamBoothSettings,
        folder_size,
        run_name,
        save_dreambooth,
        train_dreambooth,
    )

    if (garment is None) == (images is None):
        raise ConfigError("give exactly one of a catalog garment id or a folder of photos")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    base_dir = Path(base) if base is not None else shipped_model(SHIPPED_INPAINT)
    if not (base_dir / "model_index.json").is_file():
        raise ConfigError(f"--base {base_dir} is not a diffusers pipeline folder (no model_index.json)")
    settings = DreamBoothSettings.from_profile(profile, lora_rank=lora_rank or None, steps=steps, lora_steps=steps,
                                               train_text_encoder=train_text_encoder or None)
    settings.check()
    resolution = _resolution(base_dir)
    if garment is not None:
        instances = world_instances(World(seed, resolution), item_from_id(garment), settings.n_people, token=token,
                                    class_word=class_word, mask_kinds=settings.mask_kinds,
                                    n_scenes=settings.num_class_images)
    else:
        instances = folder_instances(images, resolution, token=token, class_word=class_word)
    run_dir = Path(run_dir) if run_dir else Path("runs") / profile.name / "dreambooth" / run_name(instances, settings)
    result = train_dreambooth(base_dir, instances, run_dir, settings, seed=seed)
    out = save_dreambooth(result, out_dir)
    kind = f"LoRA rank {settings.lora_rank}" if settings.lora_rank else "full U-Net" + (
        " + text encoder" if settings.train_text_encoder else "")
    summary = (f"saved {kind} fine-tune of {instances.source} to {out} ({folder_size(out) / 2**20:.2f} MB)\n"
               f"  trainable parameters {result.trainable_parameters:,} of {result.total_parameters:,}; "
               f"{result.steps} steps, {result.steps_per_second:.2f} steps/s\n"
               f"  prompt: {instances.instance_prompt!r}")
    return DreamBoothRun(out, result, summary)


def base_model_dir(model: str, build: str | Path) -> Path:
    """The pipeline folder a profile's ``model`` names: ``"shipped"`` (the mini model in data/models;
    ``ConfigError`` if missing), ``"random:<config>"`` (random weights, written once to
    ``build/random-<config>``) or a folder path. Training loads fresh copies from it."""
    from tryon_lab.models.tiny import make_random_pipeline
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT

    if model == "shipped":
        return shipped_model(SHIPPED_INPAINT)
    if model.startswith("random:"):
        config = model.split(":", 1)[1]
        folder = Path(build) / f"random-{config}"
        if not (folder / "model_index.json").is_file():
            make_random_pipeline(config, folder)
        return folder
    folder = Path(model)
    if not (folder / "model_index.json").is_file():
        raise ConfigError(f"model {model!r} is not 'shipped', 'random:<config>' or a diffusers pipeline folder")
    return folder


def _resolution(base_dir: Path) -> int:
    """The square side a pipeline folder works at, read from its configs (no weights loaded)."""
    import json

    try:
        unet = json.loads((base_dir / "unet" / "config.json").read_text())
        vae = json.loads((base_dir / "vae" / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{base_dir}: cannot read unet/vae config.json ({err})") from None
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
