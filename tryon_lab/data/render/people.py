"""Frontal figures: a person's geometry and skin/hair/shorts layers, and the region each
garment category covers on that figure.

Geometry is in fractions of the image side (x right, y down); a ``Figure`` carries the
transform to pixels, so the same description renders a person at any resolution, or a bigger,
person-less flat-lay garment for the catalog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tryon_lab.data.attributes import HAIR_COLOURS, RGB, SHORTS_COLOURS, SKIN_TONES, PersonSpec
from tryon_lab.data.render.draw import MaskPen, outline
from tryon_lab.data.render.items import ItemShape, Part
from tryon_lab.errors import WorldError

Point = tuple[float, float]

CX = 0.5
HEAD = (0.118, 0.068)  # centre y, radius
NECK_HALF = 0.03
SHOULDER_Y = 0.215
WAIST_Y = 0.49
HEM_Y = 0.585
SHORTS_Y = 0.68
KNEE_Y = 0.77
ANKLE_Y = 0.9
UPPER_ARM, FOREARM = 0.15, 0.14
# People are drawn this much larger than the layout above, about the chest: the layout leaves
# a margin for raised and outstretched arms, the scale spends most of it on the garment.
PERSON_SCALE = 1.08

# (shoulder half-width, waist half-width, arm width, leg width): wider than life, so that a
# garment covers 15-35% of the image.
BODY_SIZES = {
    "slim": (0.16, 0.135, 0.058, 0.075),
    "regular": (0.185, 0.155, 0.066, 0.085),
    "broad": (0.21, 0.18, 0.075, 0.095),
}
# (upper arm, forearm) angle in degrees from hanging straight down, positive away from the body.
ARM_ANGLES = {
    "down": (10.0, 4.0),
    "raised": (95.0, 172.0),
    "out": (52.0, 58.0),
    "hip": (44.0, -42.0),
    "flat": (38.0, 30.0),  # how a garment lies in a flat-lay catalog shot
}
SHOE_RGB: RGB = (52, 48, 46)
EYE_RGB: RGB = (40, 32, 30)
INNER_SHIRT_RGB: RGB = (165, 165, 170)
SEAM_TONE = 0.55


@dataclass(frozen=True)
class Figure:
    """Joint positions of one figure. ``arms`` holds (shoulder, elbow, wrist) for the arm on
    the image's left, then the right; ``origin`` and ``scale`` map fractions to pixels."""

    size: int
    origin: Point
    scale: float
    shoulder_half: float
    waist_half: float
    arm_width: float
    leg_width: float
    arms: tuple[tuple[Point, Point, Point], ...]

    @property
    def hip_half(self) -> float:
        return self.waist_half + 0.016

    def pen(self) -> MaskPen:
        """Return an empty mask pen in this figure's coordinates."""
        return MaskPen(self.size, self.origin, (self.scale, self.scale))


@dataclass(frozen=True)
class Body:
    """A rendered person without a garment: ``layers`` (mask, colour) back to front, and the
    masks of what a garment is worn under: the ``head`` (with hair) and the bare ``arms``."""

    layers: tuple[tuple[np.ndarray, RGB], ...]
    head: np.ndarray
    arms: np.ndarray


def figure(body: str, pose: str, size: int, scale: float = PERSON_SCALE) -> Figure:
    """Return the geometry of a ``body`` shape in arm ``pose`` for a ``size`` px image, drawn
    ``scale`` times the size of the layout, about the chest."""
    shoulder, waist, arm_w, leg_w = BODY_SIZES[body]
    upper, fore = (math.radians(a) for a in ARM_ANGLES[pose])
    arms = []
    for side in (-1, 1):
        s = (CX + side * (shoulder - 0.55 * arm_w), SHOULDER_Y + 0.03)
        e = (s[0] + side * UPPER_ARM * math.sin(upper), s[1] + UPPER_ARM * math.cos(upper))
        w = (e[0] + side * FOREARM * math.sin(fore), e[1] + FOREARM * math.cos(fore))
        arms.append((s, e, w))
    centre = np.array([0.5, 0.45])
    origin = tuple(size * centre * (1 - scale))
    return Figure(size, origin, size * scale, shoulder, waist, arm_w, leg_w, tuple(arms))


def build_body(person: PersonSpec, fig: Figure) -> Body:
    """Return the layers of ``person`` drawn on ``fig`` (skin, hair, shorts, shoes, face)."""
    skin, hair = SKIN_TONES[person.skin], HAIR_COLOURS[person.hair]
    head_y, r = HEAD
    hh = fig.hip_half
    legs, shoes, eyes = fig.pen(), fig.pen(), fig.pen()
    for side in (-1, 1):
        x = CX + side * hh * 0.5
        legs.line([(x, WAIST_Y + 0.06), (x, ANKLE_Y)], fig.leg_width)
        shoes.ellipse(x + side * 0.012, ANKLE_Y + 0.024, fig.leg_width * 0.75, 0.026)
        eyes.ellipse(CX + side * 0.38 * r, head_y + 0.1 * r, 0.1 * r, 0.12 * r)
    shorts = fig.pen().polygon(
        _mirrored([(CX - fig.waist_half, WAIST_Y), (CX - hh - 0.012, SHORTS_Y), (CX - 0.008, SHORTS_Y),
                   (CX, SHORTS_Y - 0.07)])
    )
    torso = fig.pen().polygon(_torso_outline(fig, depth=0.0))
    neck = fig.pen().rect(CX - NECK_HALF, head_y + 0.5 * r, CX + NECK_HALF, SHOULDER_Y + 0.02)
    face = fig.pen().ellipse(CX, head_y, r * 0.92, r).mask()
    below_hairline = fig.pen().rect(0, head_y - 0.3 * r, 1, 1).mask()
    cap = fig.pen().ellipse(CX, head_y - 0.1 * r, r * 1.02, r).mask() & ~below_hairline
    back_hair = fig.pen()
    if person.hair_style == "long":
        back_hair.ellipse(CX, head_y, 1.1 * r, 1.05 * r)
        back_hair.rect(CX - 1.1 * r, head_y, CX + 1.1 * r, SHOULDER_Y + 0.05)
    arms = fig.pen()
    for s, e, w in fig.arms:
        arms.line([s, e, w], fig.arm_width).ellipse(*w, 0.62 * fig.arm_width, 0.62 * fig.arm_width)
    arm_mask = arms.mask()
    layers = (
        (back_hair.mask(), hair),
        (legs.mask(), skin),
        (shoes.mask(), SHOE_RGB),
        (shorts.mask(), SHORTS_COLOURS[person.shorts]),
        (torso.mask() | neck.mask(), skin),
        (face, skin),
        (cap, hair),
        (eyes.mask(), EYE_RGB),
        (arm_mask, skin),
    )
    return Body(layers, face | cap, arm_mask)


def render_body(body: Body, background: np.ndarray) -> np.ndarray:
    """Return ``background`` (HxWx3 uint8, not modified) with the body's layers painted on."""
    canvas = background.copy()
    for mask, rgb in body.layers:
        canvas[mask] = rgb
    return canvas


def garment_shape(fig: Figure, category: str, body: Body | None = None) -> ItemShape:
    """Return the region a garment of ``category`` covers on ``fig``; with a ``body``, the parts
    of the garment hidden behind the head and bare arms are removed."""
    try:
        torso_kind, sleeves, extras = _GARMENTS[category]
    except KeyError:
        raise WorldError(f"unknown garment category {category!r}; choose one of {tuple(_GARMENTS)}") from None
    sleeve_mask = _sleeves(fig, sleeves)
    torso = fig.pen().polygon(_torso_outline(fig, **torso_kind)).mask()
    main, parts, (ax, ay, asize) = extras(fig, torso | sleeve_mask)
    # A seam where a sleeve lies over the torso keeps arms readable when they hang at the sides.
    seam = Part(outline(sleeve_mask) & torso, SEAM_TONE)
    x, y = fig.pen().px(ax, ay)
    shape = ItemShape(main, (seam, *parts), (x, y, asize * fig.scale))
    if body is None:
        return shape
    return shape.without(body.head | (body.arms & ~sleeve_mask))


def _torso_outline(fig: Figure, depth: float, strap: float | None = None, skirt: bool = False) -> list[Point]:
    """Outline of a top from the neckline (``depth`` deep) round the body to the hem; ``strap``
    (a width) cuts armholes for sleeveless tops; ``skirt`` extends the hem to the knees."""
    sh, ww, hh = fig.shoulder_half, fig.waist_half, fig.hip_half
    nw = NECK_HALF + 0.02
    t = np.linspace(0.0, math.pi, 9)
    neckline = [(CX + nw * math.cos(a), SHOULDER_Y + depth * math.sin(a)) for a in t]
    if strap is None:
        shoulder = [(CX - sh + 0.02, SHOULDER_Y + 0.008), (CX - sh, SHOULDER_Y + 0.045)]
    else:
        shoulder = [(CX - nw - strap, SHOULDER_Y), (CX - nw - strap - 0.012, SHOULDER_Y + 0.06),
                    (CX - 0.88 * sh, SHOULDER_Y + 0.11)]
    hem = [(CX - hh - 0.1, KNEE_Y)] if skirt else [(CX - hh, HEM_Y)]
    return neckline + _mirrored(shoulder + [(CX - ww - 0.004, WAIST_Y)] + hem)


def _mirrored(left: list[Point]) -> list[Point]:
    """Close a left-right symmetric outline: ``left`` top to bottom, then its mirror image."""
    return left + [(2 * CX - x, y) for x, y in reversed(left)]


def _sleeves(fig: Figure, length: str | None) -> np.ndarray:
    pen = fig.pen()
    for s, e, w in fig.arms:
        if length == "short":
            pen.line([s, _lerp(s, e, 0.55)], fig.arm_width + 0.024)
        elif length == "long":
            pen.line([s, e, _lerp(e, w, 0.88)], fig.arm_width + 0.018)
    return pen.mask()


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


# Details that tell categories apart: each takes the main region and returns it (possibly
# extended), the parts on top, and the logo anchor (x, y, size).


def _plain(fig: Figure, main: np.ndarray):
    return main, [], (CX, SHOULDER_Y + 0.13, 0.16)


def _dress(fig: Figure, main: np.ndarray):
    belt = fig.pen().rect(0, WAIST_Y - 0.012, 1, WAIST_Y + 0.014).mask() & main
    return main, [Part(belt, 0.7)], (CX, SHOULDER_Y + 0.14, 0.14)


def _jacket(fig: Figure, main: np.ndarray):
    inner = fig.pen().polygon(_mirrored([(CX - 0.045, SHOULDER_Y), (CX - 0.035, HEM_Y)]))
    lapels = fig.pen()
    for side in (-1, 1):
        corners = ((0.04, -0.005), (0.1, 0.01), (0.04, 0.15))
        lapels.polygon([(CX + side * x, SHOULDER_Y + y) for x, y in corners])
    parts = [Part(inner.mask() & main, INNER_SHIRT_RGB), Part(lapels.mask() & main, 0.72)]
    return main, parts, (CX - 0.11, SHOULDER_Y + 0.19, 0.11)


def _hoodie(fig: Figure, main: np.ndarray):
    hood = fig.pen().ellipse(CX, SHOULDER_Y + 0.005, 0.1, 0.055).mask()
    opening = fig.pen().ellipse(CX, SHOULDER_Y - 0.004, 0.05, 0.032).mask()
    strings = fig.pen()
    for side in (-1, 1):
        strings.line([(CX + side * 0.022, SHOULDER_Y + 0.04), (CX + side * 0.026, SHOULDER_Y + 0.1)], 0.012)
    pocket = fig.pen().polygon(_mirrored([(CX - 0.08, 0.44), (CX - 0.105, 0.545)]))
    band = fig.pen().rect(0, HEM_Y - 0.022, 1, HEM_Y).mask() & main
    parts = [Part(opening, 0.4), Part(strings.mask(), 0.55), Part(pocket.mask(), 0.8), Part(band, 0.8)]
    return main | hood, parts, (CX, SHOULDER_Y + 0.165, 0.12)


# category -> (torso outline options, sleeve length, details)
_GARMENTS = {
    "tee": ({"depth": 0.035}, "short", _plain),
    "longsleeve": ({"depth": 0.035}, "long", _plain),
    "tank": ({"depth": 0.075, "strap": 0.026}, None, _plain),
    "dress": ({"depth": 0.06, "strap": 0.04, "skirt": True}, None, _dress),
    "jacket": ({"depth": 0.02}, "long", _jacket),
    "hoodie": ({"depth": 0.02}, "long", _hoodie),
}
