"""Leftover: how much of the old garment a try-on leaves behind where the new one shows skin.

When the new item is smaller than the old one (a tank top over a long-sleeved photo), the
ground truth shows skin or background in part of the mask: the *uncovered* pixels, those inside
the shape mask, outside the new item, where the scene (old item) and the target differ. A
try-on that keeps the sleeves paints the old garment's colour there. Leftover is the share of
uncovered pixels whose result is nearer (RGB distance) the scene than the target.
"""

from __future__ import annotations

import numpy as np

from tryon_lab.data.masks import erode

CHANGED = 30.0  # RGB distance above which scene and target differ at a pixel (not rendering noise)
MIN_UNCOVERED = 16  # fewer uncovered pixels than this: the sample says nothing about leftovers


def uncovered_pixels(scene, target, shape_mask: np.ndarray, item_mask: np.ndarray) -> np.ndarray:
    """Bool HxW: inside ``shape_mask``, outside ``item_mask`` grown by a pixel (its anti-aliased
    edge), and where ``scene`` and ``target`` differ by more than ``CHANGED``."""
    scene, target = (np.asarray(image, dtype=np.float32) for image in (scene, target))
    changed = np.linalg.norm(scene - target, axis=-1) > CHANGED
    outside_item = erode(~np.asarray(item_mask, dtype=bool), 1)
    return np.asarray(shape_mask, dtype=bool) & outside_item & changed


def leftover_share(result, scene, target, shape_mask: np.ndarray, item_mask: np.ndarray) -> float:
    """Share (0-1) of the uncovered pixels where ``result`` is nearer ``scene`` than ``target``;
    NaN when the sample has fewer than ``MIN_UNCOVERED`` uncovered pixels. Images: PIL or uint8."""
    where = uncovered_pixels(scene, target, shape_mask, item_mask)
    if where.sum() < MIN_UNCOVERED:
        return float("nan")
    result, scene, target = (np.asarray(image, dtype=np.float32)[where] for image in (result, scene, target))
    keeps_old = np.linalg.norm(result - scene, axis=-1) < np.linalg.norm(result - target, axis=-1)
    return float(keeps_old.mean())
