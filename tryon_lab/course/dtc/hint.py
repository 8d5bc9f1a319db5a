"""The collage hint (notebook 03): held-out pairs, and the pieces of one DTC input (scene, mask, its
largest rectangle, masked image, reference, hint) as ``DTCPipeline.make_hints`` builds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tryon_lab.data.masks import Box, largest_rectangle, make_collage, overlay
from tryon_lab.data.world import World, WorldSample
from tryon_lab.plotting import NotebookFigure, image_grid

MASKED_GRAY = 128  # masked pixels are 0 in [-1, 1]: what the VAE encodes for the masked image


def heldout_pairs(resolution: int, count: int, seed: int = 0) -> list[WorldSample]:
    """``count`` test-split try-all pairs of the world at ``resolution``, garments and products alternating."""
    world = World(seed=seed, resolution=resolution)
    return [world.sample(i, split="test", kind=("garment", "product")[i % 2]) for i in range(count)]


@dataclass
class HintParts:
    """The pieces of one DTC input: the ``scene``, its ``mask``, the mask's largest rectangle
    ``box`` (top, left, bottom, right), the ``masked`` image the U-Net sees, the ``reference``
    and the ``hint`` (the reference stretched into ``box`` on black)."""

    scene: Image.Image
    mask: np.ndarray
    box: Box
    masked: Image.Image
    reference: Image.Image
    hint: Image.Image

    def images(self) -> list[Image.Image]:
        """Scene, mask with its largest rectangle, masked image, reference, hint."""
        return [self.scene, draw_box(overlay(self.scene, self.mask), self.box), self.masked, self.reference, self.hint]


def hint_parts(scene: Image.Image, mask: np.ndarray, reference: Image.Image) -> HintParts:
    """Build the hint of one (scene, mask, reference) as ``DTCPipeline.make_hints`` does."""
    mask = np.asarray(mask, dtype=bool)
    masked = np.asarray(scene.convert("RGB")).copy()
    masked[mask] = MASKED_GRAY
    return HintParts(scene, mask, largest_rectangle(mask), Image.fromarray(masked), reference,
                     make_collage(reference, mask))


def draw_box(image: Image.Image, box: Box, colour: tuple[int, int, int] = (255, 220, 0)) -> Image.Image:
    """A copy of ``image`` with the (top, left, bottom exclusive, right exclusive) ``box`` outlined."""
    top, left, bottom, right = box
    out = image.convert("RGB").copy()
    ImageDraw.Draw(out).rectangle((left, top, right - 1, bottom - 1), outline=colour, width=1)
    return out


def hint_figure(rows: Mapping[str, HintParts], size: float = 1.9) -> NotebookFigure:
    """One row per labelled ``HintParts``: scene, mask + largest rectangle, masked image, reference, hint."""
    titles = ["scene", "mask + largest rectangle", "masked image (U-Net)", "reference", "hint (collage)"]
    return image_grid([im for parts in rows.values() for im in parts.images()],
                      [f"{label}: {t}" if i == 0 else t for label in rows for i, t in enumerate(titles)],
                      ncols=len(titles), size=size)
