"""A try-on of one photo from files: the photo, a mask (a file or the category's suggested region), and
a prompt or a reference picture, on the shipped or a local model."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tryon_lab.data.domain import is_shipped_model, looks_like_world_render, outside_world_note
from tryon_lab.data.io import load_image, load_mask
from tryon_lab.errors import ConfigError
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.loading import SHIPPED_DTC, SHIPPED_INPAINT, load_dtc_pipeline, load_inpaint_pipeline
from tryon_lab.pipelines.samplers import DTC_GUIDANCE, LCM_GUIDANCE, TEXT_GUIDANCE, check_sampler, load_lcm, use_sampler

AUTO_MASK = "auto"


@dataclass(frozen=True)
class PhotoTryOn:
    """A finished try-on: the ``image`` (the photo's size), the ``photo`` it was painted on and the
    ``seconds`` the denoising took (loading aside)."""

    image: Image.Image
    photo: Image.Image
    seconds: float


def tryon_photo(person: str | Path, mask: str | Path, *, prompt: str | None = None, reference: str | Path | None = None,
                category: str | None = None, model: str | Path | None = None, sampler: str = "ddim",
                steps: int | None = None, guidance: float | None = None, seed: int = 0,
                note: Callable[[str], None] | None = None) -> PhotoTryOn:
    """Paint ``prompt`` (a text model) or the item pictured in ``reference`` (Diffuse to Choose) into the
    photo ``person`` where ``mask`` is white; ``mask="auto"`` suggests the usual region of ``category``.

    ``model`` defaults to the shipped text model, or the shipped DTC model with ``reference``;
    ``sampler`` is one of ``pipelines.samplers.SAMPLERS`` (``lcm`` needs the model's LCM LoRA);
    ``steps`` defaults to the sampler's; ``guidance`` to 4 with a prompt, 5 with a reference, 1 (none)
    with lcm. ``note`` gets a line when a shipped model
    meets a photo that does not look like a world render. Typed errors (``TryOnInputError``) for bad
    files or arguments, before the model runs.
    """
    if (prompt is None) == (reference is None):
        raise ConfigError("give a prompt or a reference picture, not both and not neither")
    chosen = check_sampler(sampler)
    steps = chosen.steps if steps is None else steps
    if sampler == "lcm" and guidance not in (None, LCM_GUIDANCE):
        raise ConfigError(f"the lcm sampler runs without guidance (it is distilled in); drop --guidance {guidance}")
    photo = load_image(person)
    if mask == AUTO_MASK:
        from tryon_lab.data.suggest import suggest_mask

        if not category:
            raise ConfigError("--mask auto needs --category (e.g. tee, dress, mug) to know where the item goes")
        region = suggest_mask(photo, category)
    else:
        region = load_mask(mask, image=photo)
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if reference is not None:
        condition = load_image(reference, min_side=1)
        pipe, default_guidance = load_dtc_pipeline(model), DTC_GUIDANCE
    else:
        condition = prompt
        pipe, default_guidance = load_inpaint_pipeline(model), TEXT_GUIDANCE
    if sampler == "lcm":
        folder = Path(model) if model is not None else shipped_model(SHIPPED_DTC if reference else SHIPPED_INPAINT)
        if not load_lcm(pipe, folder):
            raise ConfigError(f"{folder} has no LCM LoRA (lcm/) for the lcm sampler; distil one with "
                              f"`tryon-lab distill --base {folder}`")
        default_guidance = chosen.guidance_scale
    use_sampler(pipe, sampler)
    if note is not None and (model is None or is_shipped_model(model)) and not looks_like_world_render(photo):
        note(outside_world_note(person))
    began = time.perf_counter()
    result = pipe(photo, region, condition, num_inference_steps=steps,
                  guidance_scale=guidance if guidance is not None else default_guidance, seed=seed)
    return PhotoTryOn(result.images[0], photo, time.perf_counter() - began)
