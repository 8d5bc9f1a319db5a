"""Where model-resolution pixels meet the user's photo: padding to a square and paste-back.

The model sees a square of ``resolution`` pixels; the user's photo has any size. Paste-back
scales the generated square back over the photo and puts it in only inside the mask, so every
pixel outside the mask is returned exactly as it came in.

By default the seam is hard (``SEAM_PX`` = 0). A feathered seam has to lie inside the mask to keep
that promise, and inside a try-on's mask is the old garment: the ramp blends it back in along
the mask's edge, a ghost outline of the old garment's silhouette. Where the new garment shows skin
that the old one covered, most of the uncovered pixels lie within a few pixels of that edge, so the
ghost alone kept the old garment's colour in much of them (``metrics.leftover``; `benchmarks
inpainting` measures both seams side by side). ``feather_px`` still asks for a soft seam, for masks
whose edge runs through content that stays (a scratch on a wall).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from tryon_lab.data.io import content_box, fit_image, fit_mask, load_image, load_mask
from tryon_lab.data.masks import erode, feather
from tryon_lab.errors import TryOnInputError

SEAM_PX = 0.0  # the default seam width: hard (see the module docstring)


def to_model_square(image: Image.Image, mask: np.ndarray, resolution: int) -> tuple[Image.Image, np.ndarray]:
    """Pad-and-resize a photo and its mask to the model's square (mask stays bool)."""
    return fit_image(image, resolution, mode="pad"), fit_mask(mask, resolution, mode="pad")


def seam_alpha(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Return float32 HxW blending weights: 0 outside ``mask``, ramping to 1 inside it."""
    mask = np.asarray(mask, dtype=bool)
    if feather_px <= 0:
        return mask.astype(np.float32)
    core = erode(mask, feather_px)
    if not core.any():  # a mask thinner than the seam: no room to feather
        return mask.astype(np.float32)
    return feather(core, feather_px) * mask


def paste_back(original: Image.Image, generated: Image.Image, mask: np.ndarray, feather_px: float) -> Image.Image:
    """Blend the model-resolution ``generated`` square into ``original`` inside ``mask``.

    Takes the user's photo (any size), the generated square and the photo-sized bool mask;
    returns a photo-sized RGB image equal to ``original`` outside the mask.
    """
    box = content_box(original.size, generated.width)
    resized = generated.crop(box).resize(original.size, Image.Resampling.BICUBIC)
    return blend(original, resized, seam_alpha(mask, feather_px))


def blend(base: Image.Image, top: Image.Image, alpha: np.ndarray) -> Image.Image:
    """Return ``base * (1 - alpha) + top * alpha`` as RGB; pixels where alpha is 0 are ``base``'s exactly."""
    base_px = np.asarray(base.convert("RGB"), dtype=np.float32)
    top_px = np.asarray(top.convert("RGB"), dtype=np.float32)
    weights = alpha[..., None]
    mixed = np.rint(base_px * (1.0 - weights) + top_px * weights).astype(np.uint8)
    return Image.fromarray(mixed, "RGB")


def restore(result, original, restore_mask, feather_px: float = 0.0) -> Image.Image:
    """Paint ``original``'s pixels back over ``result`` where ``restore_mask`` is set (the eraser).

    Takes two same-size images (PIL, array or path) and a mask of that size; returns the result
    with the original's exact pixels inside the restore mask (a soft edge if ``feather_px`` > 0).
    """
    result_img, original_img = load_image(result), load_image(original)
    if result_img.size != original_img.size:
        raise TryOnInputError(f"restore: result is {result_img.size} but original is {original_img.size}")
    mask = load_mask(restore_mask, image=result_img, allow_empty=True)
    alpha = feather(mask, feather_px) if feather_px > 0 else mask.astype(np.float32)
    return blend(result_img, original_img, alpha)
