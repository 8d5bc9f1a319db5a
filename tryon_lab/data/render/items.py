"""Items as shapes and paint: the ``ItemShape`` of every product type, the colour-and-pattern
fill shared by garments and products, and the routine that paints a shape onto an image.

A shape is a ``main`` region that carries the item's colour and pattern plus ``parts`` painted
on top (a mug's handle, a lamp's stem, a jacket's inner shirt) in a shade of the item's colour
or a fixed colour. Garment shapes come from ``people.garment_shape``; product shapes from
``product_shape`` below. A ``Motif`` (a small two-colour emblem beside the anchor) tells apart
items that share a caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tryon_lab.data.attributes import COLOURS, N_MOTIFS, PATTERNS, RGB, ItemSpec
from tryon_lab.data.render.draw import MaskPen, contrast, mix, outline, pixel_grid, shade
from tryon_lab.errors import WorldError

# Pattern sizes as fractions of the image side: at 128 px stripes and dots repeat every 13 px
# and checks every 16 px, coarse enough to survive a factor-8 VAE.
STRIPE_PERIOD = 0.1
CHECK_CELL = 0.0625
DOT_PERIOD = 0.1
EMBLEMS = ("star", "ring", "diamond")
WORDS = ("TRY", "FIT", "LAB", "YES")
MOTIF_SHAPES = ("disc", "square", "triangle", "diamond", "cross", "hexagon")
# Motif centres, in anchor sizes from the anchor: diagonal, so that a motif clears the logo or
# word printed at the anchor; the twins of one caption start from different corners.
MOTIF_CORNERS = ((-0.62, -0.62), (0.62, -0.62), (-0.62, 0.62), (0.62, 0.62))
MOTIF_RADIUS = 0.38  # in anchor sizes: about 16 px across on a 128 px person, small beside the item
# Where a corner falls off the item (a neckline, a narrow product, an arm in front), the motif
# tries these (scale of x, scale of y) of its offset in turn, until it is this much visible:
# nearer, then the corner mirrored top to bottom, and only then towards the anchor's print.
MOTIF_MOVES = ((1.0, 1.0), (0.8, 0.8), (1.0, -1.0), (0.8, -0.8), (0.6, 0.6), (0.4, 0.4), (0.2, 0.2), (0.0, 0.0))
MOTIF_VISIBLE = 0.9
MIN_COLOUR_DISTANCE = 120.0  # RGB distance that keeps a motif colour visible on the one under it


@dataclass(frozen=True)
class Part:
    """A region painted over an item's main region: ``tone`` is a factor applied to the item's
    colour (see ``draw.shade``) or a fixed RGB colour."""

    mask: np.ndarray
    tone: float | RGB = 1.0


@dataclass(frozen=True)
class ItemShape:
    """Where an item's pixels are: ``main`` (colour + pattern), ``parts`` on top, and the
    ``anchor`` (x, y, size in px) where a logo or text is printed."""

    main: np.ndarray
    parts: tuple[Part, ...]
    anchor: tuple[float, float, float]

    @property
    def mask(self) -> np.ndarray:
        """Every pixel the item paints."""
        union = self.main.copy()
        for part in self.parts:
            union |= part.mask
        return union

    def without(self, occluder: np.ndarray) -> ItemShape:
        """Return the shape with the pixels of ``occluder`` (things in front of it) removed."""
        keep = ~occluder
        return replace(
            self,
            main=self.main & keep,
            parts=tuple(replace(p, mask=p.mask & keep) for p in self.parts),
        )

    def shifted(self, dx: int, dy: int) -> ItemShape:
        """Return the shape moved by (dx, dy) px; callers keep it inside the image."""

        def move(mask: np.ndarray) -> np.ndarray:
            return np.roll(mask, (dy, dx), axis=(0, 1))

        x, y, size = self.anchor
        return ItemShape(
            move(self.main), tuple(replace(p, mask=move(p.mask)) for p in self.parts), (x + dx, y + dy, size)
        )


def pattern_fill(
    shape_mask: np.ndarray,
    colour: str | RGB,
    pattern: str,
    rng: np.random.Generator,
    anchor: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Fill ``shape_mask`` (bool HxW) with ``colour`` (a name or RGB) in ``pattern``.

    Periodic patterns are laid out from the ``anchor`` (x, y, size; by default the centre of the
    mask's bounding box), so they move with the item; a logo or text is printed at the anchor,
    ``size`` px across. ``rng`` picks the pattern's phase, emblem and word. Returns an HxWx3
    uint8 array that is zero outside the mask.
    """
    out = np.zeros((*shape_mask.shape, 3), dtype=np.uint8)
    out[shape_mask] = _pattern_pixels(shape_mask, colour, pattern, rng, anchor)
    return out


def _pattern_pixels(shape_mask, colour, pattern, rng, anchor) -> np.ndarray:
    """The (N, 3) colours of the N True pixels of ``shape_mask``, in row-major order."""
    if pattern not in PATTERNS:
        raise WorldError(f"unknown pattern {pattern!r}; choose one of {PATTERNS}")
    rgb = np.array(COLOURS[colour] if isinstance(colour, str) else colour, dtype=np.uint8)
    accent_rgb = np.array(contrast(rgb), dtype=np.uint8)
    size = shape_mask.shape[0]
    ax, ay, extent = _default_anchor(shape_mask) if anchor is None else anchor
    # Only the masked pixels are computed: an item covers a fraction of the image.
    ys, xs = (grid[shape_mask] for grid in pixel_grid(size))
    phase_x, phase_y = rng.uniform(0.0, 1.0, size=2)
    if pattern == "solid":
        accent = None
    elif pattern == "stripes":
        accent = ((ys - ay) / (STRIPE_PERIOD * size) + phase_y) % 1.0 < 0.35
    elif pattern == "checks":
        cell = CHECK_CELL * size
        accent = (np.floor((xs - ax) / cell + phase_x) + np.floor((ys - ay) / cell + phase_y)) % 2 == 1
        accent_rgb = np.array(mix(rgb, accent_rgb, 0.45), dtype=np.uint8)
    elif pattern == "dots":
        period = DOT_PERIOD * size
        row = np.floor((ys - ay) / period + phase_y)
        # Odd rows shift by half a period: a hexagonal layout reads as "dots", a square one as a grid.
        fx = ((xs - ax) / period + phase_x + 0.5 * (row % 2)) % 1.0 - 0.5
        fy = ((ys - ay) / period + phase_y) % 1.0 - 0.5
        accent = fx * fx + fy * fy < 0.27**2
    elif pattern == "logo":
        accent = _emblem(size, ax, ay, extent, EMBLEMS[rng.integers(len(EMBLEMS))])[shape_mask]
    else:
        accent = _word(size, ax, ay, extent, WORDS[rng.integers(len(WORDS))])[shape_mask]
    pixels = np.broadcast_to(rgb, (ys.size, 3)).copy()
    if accent is not None:
        pixels[accent] = accent_rgb
    return pixels


@dataclass(frozen=True)
class Motif:
    """An item's emblem: a ``shape`` of ``MOTIF_SHAPES`` in ``fill`` with a half-size copy in
    ``inner`` at its centre, placed at ``MOTIF_CORNERS[corner]`` around the item's anchor."""

    shape: str
    corner: int
    fill: RGB
    inner: RGB


MOTIF_FACTORS = ("shape", "fill", "inner")


def motif_labels(motif: Motif) -> dict[str, int]:
    """Return the class index of each of ``motif``'s ``MOTIF_FACTORS``: its shape in
    ``MOTIF_SHAPES``, its fill and inner colours in ``COLOURS``."""
    colours = list(COLOURS.values())
    return {"shape": MOTIF_SHAPES.index(motif.shape), "fill": colours.index(tuple(motif.fill)),
            "inner": colours.index(tuple(motif.inner))}


def motif_designs(colour: str, rng: np.random.Generator) -> tuple[Motif, ...]:
    """Return the ``N_MOTIFS`` motifs of the caption twins of an item in ``colour``: each twin
    has its own shape and corner (so twins always differ), and colours that stand out."""
    shapes = rng.permutation(len(MOTIF_SHAPES))
    corners = rng.permutation(len(MOTIF_CORNERS))
    return tuple(Motif(MOTIF_SHAPES[shapes[k]], int(corners[k]), *_motif_colours(colour, rng)) for k in range(N_MOTIFS))


def random_motif(colour: str, rng: np.random.Generator) -> Motif:
    """Return one motif for an item in ``colour``, drawn afresh: any shape and corner, colours
    that stand out as ``motif_designs`` picks them (for training a motif reader)."""
    shape, corner = MOTIF_SHAPES[int(rng.integers(len(MOTIF_SHAPES)))], int(rng.integers(len(MOTIF_CORNERS)))
    return Motif(shape, corner, *_motif_colours(colour, rng))


def _motif_colours(colour: str, rng: np.random.Generator) -> tuple[RGB, RGB]:
    fill = _distant_colour(COLOURS[colour], rng)
    return fill, _distant_colour(fill, rng)


def _distant_colour(rgb: RGB, rng: np.random.Generator) -> RGB:
    choices = [c for c in COLOURS.values() if np.linalg.norm(np.subtract(c, rgb)) > MIN_COLOUR_DISTANCE]
    return choices[rng.integers(len(choices))]


def motif_masks(shape: ItemShape, motif: Motif) -> tuple[np.ndarray, np.ndarray]:
    """Return the (outer, inner) bool masks of ``motif`` on ``shape``: at its corner of the
    anchor, or moved (``MOTIF_MOVES``) until it lies on the main region's visible pixels."""
    size = shape.main.shape[0]
    x, y, extent = shape.anchor
    du, dv = MOTIF_CORNERS[motif.corner]
    radius = _quarter(MOTIF_RADIUS * extent)
    # Drawn in a window around the motif, at quarter-pixel positions, so that a few hundred
    # cached stencils serve every sample: drawing each try afresh would cost more than the item.
    side = min(int(math.ceil(2 * radius)) + 2, size)
    for sx, sy in MOTIF_MOVES:
        cx, cy = x + sx * du * extent, y + sy * dv * extent
        top = min(max(int(cy - side / 2), 0), size - side)
        left = min(max(int(cx - side / 2), 0), size - side)
        window = (slice(top, top + side), slice(left, left + side))
        visible = shape.main[window].copy()
        for part in shape.parts:
            visible &= ~part.mask[window]
        local = (_quarter(cx - left), _quarter(cy - top))
        outer = _motif_shape(side, local, radius, motif.shape)
        if np.count_nonzero(outer & visible) >= MOTIF_VISIBLE * np.count_nonzero(outer):
            break
    masks = np.zeros((2, size, size), dtype=bool)
    masks[0][window] = outer & visible
    masks[1][window] = _motif_shape(side, local, radius / 2, motif.shape) & visible
    return masks[0], masks[1]


def _quarter(value: float) -> float:
    return round(value * 4) / 4


@lru_cache(maxsize=4096)
def _motif_shape(side: int, centre: tuple[float, float], radius: float, shape: str) -> np.ndarray:
    pen = MaskPen(side, origin=centre, scale=(radius, radius))
    if shape == "disc":
        pen.ellipse(0, 0, 1, 1)
    elif shape == "square":
        pen.rect(-0.85, -0.85, 0.85, 0.85)
    elif shape == "cross":
        pen.rect(-1, -0.38, 1, 0.38).rect(-0.38, -1, 0.38, 1)
    else:
        corners = {"triangle": 3, "diamond": 4, "hexagon": 6}[shape]
        angles = [-math.pi / 2 + 2 * math.pi * k / corners for k in range(corners)]
        pen.polygon([(math.cos(a), math.sin(a)) for a in angles])
    stencil = pen.mask()
    stencil.flags.writeable = False
    return stencil


def paint_item(
    canvas: np.ndarray, shape: ItemShape, spec: ItemSpec, rng: np.random.Generator, motif: Motif | None = None
) -> np.ndarray:
    """Return a copy of ``canvas`` (HxWx3 uint8) with the item ``spec`` painted in ``shape``:
    the patterned main region, its ``motif``, the parts, and a darker outline around the whole
    item."""
    rgb = COLOURS[spec.colour]
    out = canvas.copy()
    out[shape.main] = _pattern_pixels(shape.main, rgb, spec.pattern, rng, shape.anchor)
    if motif is not None:
        outer, inner = motif_masks(shape, motif)
        out[outer] = motif.fill
        out[inner] = motif.inner
    for part in shape.parts:
        out[part.mask] = shade(rgb, part.tone) if isinstance(part.tone, float) else part.tone
    out[outline(shape.mask)] = shade(rgb, 0.55) if spec.colour != "black" else (90, 90, 96)
    return out


def product_shape(category: str, box: tuple[float, float, float, float], size: int) -> ItemShape:
    """Return the shape of a product of ``category`` standing on the bottom edge of ``box``
    (x0, y0, x1, y1 in px) in a ``size`` x ``size`` image; it fills the box's width or height."""
    try:
        draw = _PRODUCTS[category]
    except KeyError:
        raise WorldError(f"unknown product category {category!r}; choose one of {tuple(_PRODUCTS)}") from None
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def pen() -> MaskPen:
        return MaskPen(size, origin=(x0, y0), scale=(w, h))

    main, parts, (au, av, asize) = draw(pen)
    return ItemShape(main, tuple(parts), (x0 + au * w, y0 + av * h, asize * w))


# Each product is drawn in a unit box: u from 0 (left) to 1 (right), v from 0 (top) to 1 (the
# surface it stands on). A drawer returns (main mask, parts, anchor (u, v, size in widths)).


def _mug(pen):
    body = pen().rect(0.1, 0.3, 0.7, 0.98).ellipse(0.4, 0.97, 0.3, 0.03).mask()
    handle = pen().ellipse(0.72, 0.62, 0.2, 0.22).mask() & ~pen().ellipse(0.72, 0.62, 0.11, 0.13).mask()
    mouth = pen().ellipse(0.4, 0.3, 0.3, 0.045).mask()
    return body, [Part(handle & ~body), Part(mouth, 0.4)], (0.4, 0.64, 0.42)


def _lamp(pen):
    lampshade = pen().polygon([(0.3, 0.02), (0.7, 0.02), (0.92, 0.5), (0.08, 0.5)]).mask()
    stem = pen().rect(0.46, 0.5, 0.54, 0.93).mask()
    base = pen().ellipse(0.5, 0.95, 0.24, 0.05).mask()
    return lampshade, [Part(stem, 0.6), Part(base, 0.8)], (0.5, 0.28, 0.4)


def _vase(pen):
    v = np.linspace(0.0, 1.0, 21)
    half = np.interp(v, [0.0, 0.1, 0.28, 0.6, 0.85, 1.0], [0.16, 0.11, 0.17, 0.38, 0.34, 0.2])
    right = [(0.5 + hw, vv) for vv, hw in zip(v, half)]
    body = pen().polygon(right + [(1.0 - u, vv) for u, vv in reversed(right)]).mask()
    mouth = pen().ellipse(0.5, 0.02, 0.14, 0.025).mask()
    return body, [Part(mouth, 0.4)], (0.5, 0.62, 0.42)


def _plant(pen):
    pot = pen().polygon([(0.2, 0.58), (0.8, 0.58), (0.7, 1.0), (0.3, 1.0)]).mask()
    rim = pen().rect(0.15, 0.54, 0.85, 0.64).mask()
    leaves = pen()
    for angle, length in zip((-64, -32, 0, 32, 64), (0.34, 0.44, 0.52, 0.44, 0.34)):
        leaves.polygon(_leaf((0.5, 0.58), length, 0.1, math.radians(angle)))
    leaf_mask = leaves.mask() & ~pot & ~rim
    return pot, [Part(rim, 0.8), Part(leaf_mask, (38, 112, 52))], (0.5, 0.81, 0.34)


def _bag(pen):
    body = pen().polygon([(0.14, 0.38), (0.86, 0.38), (0.97, 1.0), (0.03, 1.0)]).mask()
    handle = pen().ellipse(0.5, 0.38, 0.28, 0.3).mask() & ~pen().ellipse(0.5, 0.38, 0.2, 0.23).mask()
    clasp = pen().rect(0.44, 0.45, 0.56, 0.54).mask()
    return body, [Part(handle & ~body, 0.7), Part(clasp, 0.45)], (0.5, 0.74, 0.44)


def _shoe(pen):
    upper = pen().polygon(
        [(0.1, 0.3), (0.44, 0.3), (0.5, 0.6), (0.8, 0.68), (0.95, 0.8), (0.95, 0.92), (0.06, 0.92),
         (0.08, 0.6)]
    ).mask()
    collar = pen().rect(0.1, 0.3, 0.44, 0.37).mask()
    sole = pen().rect(0.04, 0.9, 0.97, 1.0).mask()
    return upper, [Part(collar, 0.7), Part(sole, (58, 52, 48))], (0.33, 0.62, 0.36)


def _frame(pen):
    frame = pen().rect(0.08, 0.08, 0.92, 0.94).mask()
    picture = pen().rect(0.3, 0.24, 0.7, 0.6).mask()
    hill = pen().ellipse(0.5, 0.66, 0.34, 0.2).mask() & picture
    feet = pen().rect(0.18, 0.94, 0.3, 1.0).rect(0.7, 0.94, 0.82, 1.0).mask()
    parts = [Part(picture, (170, 208, 232)), Part(hill, (96, 160, 88)), Part(feet, 0.6)]
    return frame, parts, (0.5, 0.77, 0.26)


def _chair(pen):
    back = pen().rect(0.2, 0.06, 0.8, 0.52).ellipse(0.5, 0.08, 0.3, 0.07).mask()
    seat = pen().rect(0.1, 0.5, 0.9, 0.64).mask()
    legs = pen().rect(0.14, 0.64, 0.23, 1.0).rect(0.77, 0.64, 0.86, 1.0).mask()
    return back | seat, [Part(legs, 0.55)], (0.5, 0.3, 0.4)


_PRODUCTS = {
    "mug": _mug,
    "lamp": _lamp,
    "vase": _vase,
    "plant": _plant,
    "bag": _bag,
    "shoe": _shoe,
    "frame": _frame,
    "chair": _chair,
}


def _leaf(base: tuple[float, float], length: float, width: float, angle: float) -> list[tuple[float, float]]:
    """A pointed ellipse from ``base`` leaning ``angle`` radians from vertical."""
    t = np.linspace(0.0, math.pi, 9)
    along = np.concatenate([length * (1 - np.cos(t)) / 2, length * (1 - np.cos(t[::-1])) / 2])
    across = np.concatenate([width * np.sin(t) / 2, -width * np.sin(t[::-1]) / 2])
    sin, cos = math.sin(angle), math.cos(angle)
    return [(base[0] + a * sin + c * cos, base[1] - a * cos + c * sin) for a, c in zip(along, across)]


def _default_anchor(mask: np.ndarray) -> tuple[float, float, float]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0.0, 0.0, 1.0)
    height, width = rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    return ((cols[0] + cols[-1] + 1) / 2, (rows[0] + rows[-1] + 1) / 2, 0.45 * min(height, width))


def _emblem(size: int, x: float, y: float, extent: float, kind: str) -> np.ndarray:
    """A filled star, ring or diamond ``extent`` px across, centred at (x, y)."""

    def pen() -> MaskPen:
        return MaskPen(size, origin=(x, y), scale=(extent / 2, extent / 2))

    if kind == "star":
        corners = [math.pi / 2 + k * math.pi / 5 for k in range(10)]
        radii = [1.0 if k % 2 == 0 else 0.45 for k in range(10)]
        return pen().polygon([(r * math.cos(a), -r * math.sin(a)) for r, a in zip(radii, corners)]).mask()
    if kind == "ring":
        return pen().ellipse(0, 0, 1, 1).mask() & ~pen().ellipse(0, 0, 0.55, 0.55).mask()
    return pen().polygon([(0, -1), (0.75, 0), (0, 1), (-0.75, 0)]).mask()


def _word(size: int, x: float, y: float, extent: float, word: str) -> np.ndarray:
    image = Image.new("1", (size, size), 0)
    font = _font(max(int(round(extent * 0.5)), 4))
    ImageDraw.Draw(image).text((x, y), word, fill=1, font=font, anchor="mm")
    return np.array(image, dtype=bool)


@lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font (no files needed), bold enough to survive downsampling."""
    return ImageFont.load_default(size=px)
