"""Automatic mask suggestion: where an item of a category usually goes, learned from the world.

For each category the world's own renderings give a prior map (the fraction of people or rooms
whose item covers each pixel); thresholding it gives a starting mask that the user then edits
with the brush. It assumes a roughly centred, full-body framing, as the world and most catalog
photos have; it is a suggestion, not a segmentation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from tryon_lab.data.attributes import CATEGORIES, COLOURS, GARMENT_CATEGORIES, ItemSpec
from tryon_lab.data.io import content_box, load_image
from tryon_lab.data.world import World
from tryon_lab.errors import TryOnInputError

PRIOR_SAMPLES = 24
PRIOR_RESOLUTION = 128


@lru_cache(maxsize=len(CATEGORIES))
def category_prior(category: str) -> np.ndarray:
    """Float32 HxW (128x128) in [0, 1]: how often an item of ``category`` covers each pixel."""
    if category not in CATEGORIES:
        raise TryOnInputError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    kind = "garment" if category in GARMENT_CATEGORIES else "product"
    item = ItemSpec(kind, category, next(iter(COLOURS)), "solid")
    samples = World(seed=0, resolution=PRIOR_RESOLUTION).instance_samples(item, PRIOR_SAMPLES)
    return np.mean([s.item_mask for s in samples], axis=0).astype(np.float32)


def suggest_mask(image, category: str, threshold: float = 0.3) -> np.ndarray:
    """Suggest a bool mask (the image's size) for placing an item of ``category`` on ``image``.

    ``image``: anything ``load_image`` reads; the prior is laid over the image as
    ``fit_image(mode="pad")`` would place it, so non-square photos keep their framing.
    """
    picture = load_image(image)
    prior = category_prior(category)
    left, top, right, bottom = content_box(picture.size, PRIOR_RESOLUTION)
    window = Image.fromarray(prior[top:bottom, left:right])
    resized = np.asarray(window.resize(picture.size, Image.Resampling.BILINEAR))
    mask = resized >= threshold
    if not mask.any():
        mask = resized >= resized.max() * 0.5
    return mask
