"""Which text inpainting pipeline a notebook uses: the shipped model, random weights, or a folder,
and a sentence saying what its pictures mean."""

from __future__ import annotations

from pathlib import Path

from tryon_lab.models.tiny import make_random_pipeline
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.quiet import library_bars_off


def course_pipeline(model: str, build: str | Path) -> TryOnInpaintPipeline:
    """Return the pipeline a profile names, with its progress bar off.

    ``model`` is ``"shipped"`` (the trained mini model in ``data/models``; ``ConfigError`` if it
    is missing), ``"random:<config>"`` (random weights of a model config, e.g. ``random:tiny``,
    written to ``build/random-<config>``: seconds to make, results meaningless) or the path of a
    diffusers folder (e.g. a local SD-1.5-inpainting copy).
    """
    with library_bars_off():
        if model.startswith("random:"):
            config = model.split(":", 1)[1]
            pipe = make_random_pipeline(config, Path(build) / f"random-{config}")
        elif model == "shipped":
            pipe = load_inpaint_pipeline()
        else:
            pipe = load_inpaint_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_note(model: str, pipe: TryOnInpaintPipeline) -> str:
    """Return a Markdown paragraph saying which model the notebook runs and what its pictures mean."""
    size = pipe.unet.config.sample_size
    shape = f"{pipe.resolution}x{pipe.resolution} images, latents {pipe.unet.config.out_channels}x{size}x{size}"
    if model.startswith("random:"):
        return (
            f"**Note: this profile runs a `{model.split(':', 1)[1]}` model with random weights** ({shape}). "
            "It checks that every cell runs in seconds; its pictures are noise and its numbers "
            "mean nothing. Run the `quick` profile to see what a trained model does."
        )
    where = "the shipped mini model (`data/models/mini-sd-inpaint`)" if model == "shipped" else f"`{model}`"
    return f"This run uses {where}: {shape}, trained on the synthetic world."
