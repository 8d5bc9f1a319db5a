"""Drawing primitives shared by the renderers: filled shapes as bool masks, and colour helpers.

All coordinates are pixels (x right, y down) as floats; shapes are hard-edged, so a mask says
exactly which pixels a shape paints.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from tryon_lab.data.attributes import RGB

Point = tuple[float, float]


class MaskPen:
    """Draw filled primitives into one bool mask of ``size`` x ``size`` pixels.

    Shapes are given in the pen's own units: a point (u, v) lands on pixel
    ``origin + scale * (u, v)``, so a renderer can describe a shape once, in a unit box or in
    fractions of the image, and draw it at any place and resolution.
    """

    def __init__(self, size: int, origin: Point = (0.0, 0.0), scale: Point = (1.0, 1.0)) -> None:
        self.size = size
        self.origin = origin
        self.scale = scale
        self._image = Image.new("1", (size, size), 0)
        self._draw = ImageDraw.Draw(self._image)

    def px(self, u: float, v: float) -> Point:
        """Return the pixel position of the point (u, v)."""
        return (self.origin[0] + self.scale[0] * u, self.origin[1] + self.scale[1] * v)

    def polygon(self, points: Sequence[Point]) -> MaskPen:
        """Fill the polygon through ``points``."""
        self._draw.polygon([self.px(u, v) for u, v in points], fill=1)
        return self

    def ellipse(self, cu: float, cv: float, ru: float, rv: float) -> MaskPen:
        """Fill the axis-aligned ellipse centred at (cu, cv) with radii ru, rv."""
        (x0, y0), (x1, y1) = self.px(cu - ru, cv - rv), self.px(cu + ru, cv + rv)
        self._draw.ellipse((x0, y0, x1, y1), fill=1)
        return self

    def rect(self, u0: float, v0: float, u1: float, v1: float) -> MaskPen:
        """Fill the rectangle with corners (u0, v0) and (u1, v1)."""
        (x0, y0), (x1, y1) = self.px(u0, v0), self.px(u1, v1)
        self._draw.rectangle((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), fill=1)
        return self

    def line(self, points: Sequence[Point], width: float) -> MaskPen:
        """Stroke the polyline through ``points`` with a round brush ``width`` units across."""
        w = max(int(round(width * self.scale[0])), 1)
        pixels = [self.px(u, v) for u, v in points]
        self._draw.line(pixels, fill=1, width=w, joint="curve")
        r = (w - 1) / 2
        for x, y in (pixels[0], pixels[-1]):
            self._draw.ellipse((x - r, y - r, x + r, y + r), fill=1)
        return self

    def mask(self) -> np.ndarray:
        """Return what has been drawn as a bool HxW array."""
        return np.array(self._image, dtype=bool)


def outline(mask: np.ndarray) -> np.ndarray:
    """Return the pixels of ``mask`` that touch a pixel outside it (4-neighbourhood)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    """Return the colour ``t`` of the way from ``a`` to ``b``."""
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))  # type: ignore[return-value]


def shade(colour: Sequence[float], factor: float) -> RGB:
    """Return ``colour`` darkened (factor < 1) or lightened towards white (factor > 1)."""
    if factor <= 1:
        return mix((0, 0, 0), colour, factor)
    return mix(colour, (255, 255, 255), factor - 1)


def contrast(colour: Sequence[float]) -> RGB:
    """Return near-black for a light colour and near-white for a dark one."""
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (36, 36, 40) if luminance > 150 else (250, 250, 250)


@lru_cache(maxsize=8)
def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return read-only (ys, xs) float32 HxW arrays of pixel-centre coordinates."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    ys.flags.writeable = False
    xs.flags.writeable = False
    return ys, xs
