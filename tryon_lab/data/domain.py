"""What the shipped models know: renders of the course's synthetic world, and nothing else.

The shipped checkpoints (``data/models/*``) were trained on the world alone; on a real photo the
inpainting model paints a blurry blob. These helpers let the command line and the app say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tryon_lab.paths import data_dir

COLOUR_SHARE_LIMIT = 0.10
"""A world render has fewer distinct colours than this share of its (subsampled) pixels."""

SAMPLE_SIDE = 128
"""Images are subsampled to at most this many pixels a side before their colours are counted."""


def looks_like_world_render(image: Image.Image) -> bool:
    """Whether ``image`` looks like a render of the synthetic world rather than a photo.

    Measures distinct RGB colours as a share of pixels, on the image subsampled (every k-th pixel,
    which invents no colour) to at most ``SAMPLE_SIDE`` px a side, because a photo's share falls
    as it grows (Grace Hopper: 57% at 128 px, 15% at 2048 px) while the subsampled share stays put.
    The world paints flat shapes from a small palette: at most 4.2% at its smallest resolution
    (32 px), under 1% from 128 px up; sensor noise and shading give photos tens of percent (Grace
    Hopper: 57%). ``COLOUR_SHARE_LIMIT`` (10%) leaves a margin on both sides. Lossy compression
    adds colours, so a world render saved as JPEG counts as a photo.
    """
    pixels = np.asarray(image.convert("RGB"))
    step = -(-max(pixels.shape[:2]) // SAMPLE_SIDE)
    codes = pixels[::step, ::step].reshape(-1, 3).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    return len(np.unique(codes)) < COLOUR_SHARE_LIMIT * codes.size


def is_shipped_model(folder: str | Path) -> bool:
    """Whether ``folder`` is one of the shipped checkpoints in ``data/models`` (all trained on the world)."""
    return Path(folder).resolve().parent == (data_dir() / "models").resolve()


def outside_world_note(name: str) -> str:
    """The one-line note for photo ``name`` that is no world render, run on a shipped model."""
    return (f"{name} does not look like a render of the course's synthetic world, the only thing the shipped "
            "model knows: on a real photo it paints a blurry blob. For photos, use a text prompt with --model "
            "set to a local Stable Diffusion 1.5 inpainting folder (see README).")
