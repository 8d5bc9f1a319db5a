"""Backgrounds: behind people (plain, gradient, wall with floor, striped wallpaper), rooms with a
table or shelf where a product stands, and the busy backdrop of some catalog shots.

Room decor stays beside the product spot, so the product is never hidden.
"""

from __future__ import annotations

import numpy as np

from tryon_lab.data.attributes import BACKGROUNDS, COLOURS, FLOOR_TONES, RGB, SPOTS, WALL_TONES, RoomSpec
from tryon_lab.data.render.draw import MaskPen, mix, pixel_grid, shade
from tryon_lab.errors import WorldError

TABLE_RGB: RGB = (150, 104, 70)
FRAME_RGB: RGB = (240, 240, 236)
SKY_RGB: RGB = (176, 212, 236)
CURTAIN_RGB: RGB = (188, 140, 150)
CABINET_RGB: RGB = (232, 230, 222)
BOOK_RGBS: tuple[RGB, ...] = ((150, 70, 60), (70, 100, 130), (200, 180, 120), (90, 120, 80), (120, 90, 130))
# (floor line, surface top) as fractions of the image height
SURFACE_LEVELS = {"table": (0.6, 0.76), "shelf": (0.86, 0.7)}
PRODUCT_BOX = (0.48, 0.58)  # width, height as fractions of the image side


def person_background(kind: str, tone: RGB, size: int) -> np.ndarray:
    """Return a ``size`` x ``size`` x 3 uint8 backdrop of ``kind`` (one of ``BACKGROUNDS``) in
    the colour ``tone``."""
    ys, xs = pixel_grid(size)
    base = np.array(tone, dtype=np.float32)
    if kind == "solid":
        image = np.broadcast_to(base, (size, size, 3))
    elif kind == "gradient":
        t = ys[..., None] / size
        image = (1.1 - 0.25 * t) * base
    elif kind == "wall-with-floor":
        floor = np.array(shade(tone, 0.72), dtype=np.float32)
        image = np.where((ys >= 0.8 * size)[..., None], floor, base)
    elif kind == "stripes-wallpaper":
        band = (xs / (0.125 * size)) % 1.0 < 0.5
        image = np.where(band[..., None], base * 0.92, base)
    else:
        raise WorldError(f"unknown background {kind!r}; choose one of {BACKGROUNDS}")
    return np.clip(image, 0, 255).astype(np.uint8)


def product_box(room: RoomSpec, size: int) -> tuple[float, float, float, float]:
    """Return the (x0, y0, x1, y1) px box a product fills in ``room``: on the surface, at the spot."""
    width, height = PRODUCT_BOX
    surface = SURFACE_LEVELS[room.surface][1]
    cx = SPOTS[room.spot]
    return ((cx - width / 2) * size, (surface - height) * size, (cx + width / 2) * size, surface * size)


def room_background(room: RoomSpec, size: int) -> np.ndarray:
    """Return the empty ``room`` (wall, floor, decor, surface) as a ``size`` x ``size`` x 3 uint8 image."""
    floor_y, surface_y = SURFACE_LEVELS[room.surface]
    wall = WALL_TONES[room.wall]
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = wall
    canvas[int(round(floor_y * size)) :] = FLOOR_TONES[room.floor]
    side = (0.74, 0.95) if room.spot == 0 else (0.05, 0.26)  # decor goes away from the product
    for mask, rgb in _DECOR[room.room](size, side, surface_y, wall):
        canvas[mask] = rgb
    for mask, rgb in _surface(size, room.surface, surface_y):
        canvas[mask] = rgb
    return canvas


def busy_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a cluttered backdrop: a random gradient under a dozen random rectangles and
    discs in the world's colours, drawn from ``rng``."""
    ys, _ = pixel_grid(size)
    top, bottom = rng.integers(60, 240, size=(2, 3))
    t = (ys / size)[..., None]
    canvas = ((1 - t) * top + t * bottom).astype(np.uint8)
    palette = list(COLOURS.values())
    for _ in range(12):
        x0, y0 = rng.uniform(-0.1, 0.9, size=2)
        w, h = rng.uniform(0.1, 0.4, size=2)
        pen = _pen(size)
        shape = pen.rect(x0, y0, x0 + w, y0 + h) if rng.random() < 0.5 else pen.ellipse(x0, y0, w / 2, h / 2)
        canvas[shape.mask()] = mix(palette[rng.integers(len(palette))], (128, 128, 128), 0.35)
    return canvas


def _pen(size: int) -> MaskPen:
    """A mask pen whose units are fractions of the image side."""
    return MaskPen(size, scale=(size, size))


def _surface(size: int, surface: str, y: float):
    top = _pen(size)
    legs = _pen(size)
    if surface == "table":
        top.rect(0.04, y, 0.96, y + 0.04)
        legs.rect(0.08, y + 0.04, 0.12, 1.0).rect(0.88, y + 0.04, 0.92, 1.0)
    else:
        top.rect(0.03, y, 0.97, y + 0.03)
        legs.polygon([(0.12, y + 0.03), (0.16, y + 0.03), (0.12, y + 0.1)])
        legs.polygon([(0.88, y + 0.03), (0.84, y + 0.03), (0.88, y + 0.1)])
    return [(top.mask(), TABLE_RGB), (legs.mask(), shade(TABLE_RGB, 0.7))]


def _window(size: int, side: tuple[float, float], top: float = 0.1, bottom: float = 0.42):
    x0, x1 = side
    frame = _pen(size).rect(x0, top, x1, bottom).mask()
    pane = _pen(size).rect(x0 + 0.02, top + 0.02, x1 - 0.02, bottom - 0.02)
    mid_x, mid_y = (x0 + x1) / 2, (top + bottom) / 2
    bars = _pen(size).rect(mid_x - 0.008, top, mid_x + 0.008, bottom)
    bars.rect(x0, mid_y - 0.008, x1, mid_y + 0.008)
    return [(frame, FRAME_RGB), (pane.mask() & ~bars.mask(), SKY_RGB)]


def _living_room(size, side, surface_y, wall):
    return _window(size, side)


def _bedroom(size, side, surface_y, wall):
    x0, x1 = side
    curtains = _pen(size).rect(x0 - 0.03, 0.06, x0 + 0.03, 0.5).rect(x1 - 0.03, 0.06, x1 + 0.03, 0.5)
    return _window(size, side) + [(curtains.mask(), CURTAIN_RGB)]


def _kitchen(size, side, surface_y, wall):
    cabinets = _pen(size).rect(0, 0, 1, 0.15).mask()
    seams = _pen(size)
    for x in np.arange(0.25, 1.0, 0.25):
        seams.rect(x - 0.004, 0, x + 0.004, 0.15)
    handles = _pen(size)
    for x in np.arange(0.25, 1.0, 0.25):
        handles.rect(x - 0.04, 0.11, x - 0.02, 0.125).rect(x + 0.02, 0.11, x + 0.04, 0.125)
    tiles = _pen(size)
    for y in np.arange(surface_y - 0.24, surface_y, 0.08):
        tiles.rect(0, y - 0.003, 1, y + 0.003)
    for x in np.arange(0.04, 1.0, 0.08):
        tiles.rect(x - 0.003, surface_y - 0.24, x + 0.003, surface_y)
    return [
        (cabinets, CABINET_RGB),
        (seams.mask() | handles.mask(), shade(CABINET_RGB, 0.75)),
        (tiles.mask(), shade(wall, 0.88)),
    ]


def _office(size, side, surface_y, wall):
    x0, x1 = side
    case = _pen(size).rect(x0, 0.08, x1, surface_y).mask()
    layers = [(case, shade(TABLE_RGB, 0.8))]
    shelves = np.linspace(0.08, surface_y, 4)
    for k, (top, bottom) in enumerate(zip(shelves[:-1], shelves[1:])):
        x = x0 + 0.015
        for j, width in enumerate((0.03, 0.025, 0.035, 0.02, 0.03, 0.025)):
            if x + width > x1 - 0.015:
                break
            book = _pen(size).rect(x, top + 0.02 + 0.01 * ((j + k) % 3), x + width - 0.004, bottom - 0.012)
            layers.append((book.mask(), BOOK_RGBS[(j + 2 * k) % len(BOOK_RGBS)]))
            x += width
    return layers


_DECOR = {"living room": _living_room, "kitchen": _kitchen, "bedroom": _bedroom, "office": _office}
