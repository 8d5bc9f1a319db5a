"""Paste-back (notebook 01): how a try-on result is put together from the photo, the model's square
and the seam alpha, and proof that nothing outside the mask changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tryon_lab.data.io import load_image, load_mask
from tryon_lab.errors import TryOnInputError
from tryon_lab.pipelines.compositing import seam_alpha
from tryon_lab.pipelines.inpaint import TryOnPipelineOutput
from tryon_lab.plotting import NotebookFigure, image_grid


@dataclass
class PasteBack:
    """How a try-on result was put together: the user's ``original`` photo, the model's ``raw``
    square, the ``alpha`` seam weights (photo-sized, 0 outside the mask), the pasted-back
    ``result``, ``difference`` = |result - original| (HxW, max over RGB, in 0..255) and
    ``max_outside``, the largest difference at any pixel outside the mask (0 when exact)."""

    original: Image.Image
    raw: Image.Image
    alpha: np.ndarray
    result: Image.Image
    difference: np.ndarray
    max_outside: int

    def figure(self, size: float = 2.4) -> NotebookFigure:
        """One row: original, raw model square, seam alpha, result, and where result differs."""
        images = [self.original, self.raw, self.alpha, self.result, (self.difference > 0).astype(np.float32)]
        titles = ["your photo", "raw model output (its square)", "seam alpha (0 outside the mask)",
                  "pasted back", f"pixels that changed (max change outside the mask: {self.max_outside})"]
        return image_grid(images, titles, ncols=5, size=size)


def outside_mask_difference(original: Any, result: Any, mask: np.ndarray) -> int:
    """The largest per-channel difference (0..255) between two same-size images outside ``mask``."""
    before = np.asarray(load_image(original), dtype=np.int16)
    after = np.asarray(load_image(result), dtype=np.int16)
    if before.shape != after.shape:
        raise TryOnInputError(f"images differ in size: {before.shape[:2]} vs {after.shape[:2]}")
    outside = ~np.asarray(mask, dtype=bool)
    return int(np.abs(after - before)[outside].max(initial=0))


def paste_back_parts(original: Any, output: TryOnPipelineOutput, mask: Any, feather_px: float,
                     index: int = 0) -> PasteBack:
    """Take apart item ``index`` of a pipeline ``output`` made from ``original`` and ``mask`` with
    ``feather_px``: the raw square, the seam alpha, the result, and where it differs from the input."""
    photo = load_image(original)
    pixel_mask = load_mask(mask, image=photo)
    result = output.images[index]
    if not isinstance(result, Image.Image):
        raise TryOnInputError("paste_back_parts needs a pipeline output made with output_type='pil'")
    difference = np.abs(np.asarray(result, dtype=np.int16) - np.asarray(photo, dtype=np.int16)).max(axis=-1)
    return PasteBack(photo, output.raw[index], seam_alpha(pixel_mask, feather_px), result,
                     difference.astype(np.float32), outside_mask_difference(photo, result, pixel_mask))
