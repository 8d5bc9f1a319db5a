"""Mask tools on bool HxW numpy arrays: brush strokes, boxes, morphology, feathering,
the largest inscribed rectangle, and the Diffuse-to-Choose collage hint (in either ``HINT_LAYOUTS``).

Conventions: ``size`` is (width, height) like PIL; boxes are (top, left, bottom, right) with
bottom and right exclusive, like numpy slices; pixel (row y, column x) has its centre at (x, y).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from tryon_lab.data.io import fit_image, load_image
from tryon_lab.errors import MaskError, TryOnInputError

Box = tuple[int, int, int, int]
Points = Iterable[Sequence[float]]

# Where the collage puts the reference: "rectangle" (the paper's) fits the whole reference into the
# mask's largest inscribed rectangle; "box" stretches the reference's content box over the mask's
# bounding box, so a worn item's details land about where and about as large as on the target.
HINT_LAYOUTS = ("rectangle", "box")


def check_hint_layout(layout: str) -> str:
    """Return ``layout`` if it is one of ``HINT_LAYOUTS``; else raise ``TryOnInputError`` naming them."""
    if layout not in HINT_LAYOUTS:
        raise TryOnInputError(f"unknown hint_layout {layout!r}; choose one of {', '.join(HINT_LAYOUTS)}")
    return layout


def stroke_mask(points: Points, radius: float, size: tuple[int, int]) -> np.ndarray:
    """Rasterise a polyline of (x, y) points with a round brush of ``radius`` px.

    ``size`` is (w, h). Returns a bool HxW mask where a pixel is True when its centre lies
    within ``radius`` of the polyline; a single point gives a disc; points outside the image
    are allowed (the stroke is clipped). Raises ``TryOnInputError`` for radius <= 0.
    """
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    add_stroke(mask, points, radius)
    return mask


def add_stroke(mask: np.ndarray, points: Points, radius: float, value: bool = True) -> None:
    """Paint a stroke (see ``stroke_mask``) into ``mask`` in place: ``value=False`` erases."""
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.ndim != 2:
        raise TryOnInputError("add_stroke: mask must be a bool HxW numpy array")
    if not radius > 0:
        raise TryOnInputError(f"brush radius must be > 0, got {radius}")
    pts = _points(points)
    height, width = mask.shape
    segments = zip(pts[:-1], pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]
    for start, end in segments:
        low = np.minimum(start, end) - radius
        high = np.maximum(start, end) + radius
        x0, y0 = max(math.ceil(low[0]), 0), max(math.ceil(low[1]), 0)
        x1, y1 = min(math.floor(high[0]), width - 1), min(math.floor(high[1]), height - 1)
        if x0 > x1 or y0 > y1:
            continue  # this segment's brush lies entirely outside the image
        ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
        near = _distance_sq_to_segment(xs, ys, start, end) <= radius * radius
        mask[y0 : y1 + 1, x0 : x1 + 1][near] = value


def box_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    """Return a bool HxW mask (``size`` = (w, h)), True inside ``box`` clipped to the image."""
    top, left, bottom, right = (int(v) for v in box)
    if bottom < top or right < left:
        raise TryOnInputError(f"box {box} must satisfy top <= bottom and left <= right")
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    mask[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = True
    return mask


def bounding_box(mask: np.ndarray) -> Box:
    """Return the tightest (top, left, bottom, right) box around the True pixels.

    Raises ``MaskError`` for an empty mask.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise MaskError("the mask is empty, so it has no bounding box")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def dilate(mask: np.ndarray, px: float) -> np.ndarray:
    """Grow a bool mask by a disc of radius ``px``: True where some True pixel is within ``px``."""
    _check_radius(px)
    return _distance_to(mask) <= px


def erode(mask: np.ndarray, px: float) -> np.ndarray:
    """Shrink a bool mask by a disc of radius ``px``: True where no False pixel is within ``px``.

    Outside the image counts as True, so a mask is not eaten away where it touches the border.
    """
    _check_radius(px)
    return _distance_to(~np.asarray(mask, dtype=bool)) > px


def feather(mask: np.ndarray, px: float) -> np.ndarray:
    """Soften a bool mask's edge: float32 HxW in [0, 1], a linear ramp 2 * ``px`` wide
    centred on the edge (1 from ``px`` inside it, 0 from ``px`` outside).
    ``feather(m, 0)`` is ``m`` as float.
    """
    _check_radius(px)
    mask = np.asarray(mask, dtype=bool)
    if px == 0:
        return mask.astype(np.float32)
    # The edge lies half a pixel beyond the last True pixel centre, hence the 0.5 offsets.
    signed = np.where(mask, _distance_to(~mask) - 0.5, 0.5 - _distance_to(mask))
    return np.clip(0.5 + signed / (2.0 * px), 0.0, 1.0).astype(np.float32)


def largest_rectangle(mask: np.ndarray) -> Box:
    """Return the largest-area (top, left, bottom, right) rectangle of True pixels.

    Runs in O(HW): for each row, the heights of True columns ending there form a histogram
    whose largest rectangle is found with a stack. Raises ``MaskError`` for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise MaskError("the mask is empty, so it contains no rectangle")
    best_area, best = 0, (0, 0, 0, 0)
    heights = np.zeros(mask.shape[1], dtype=np.int64)
    for row, line in enumerate(mask):
        heights = np.where(line, heights + 1, 0)
        area, left, right, height = _largest_in_histogram(heights.tolist())
        if area > best_area:
            best_area, best = area, (row + 1 - height, left, row + 1, right)
    return best


def content_box(image: Image.Image, tolerance: int = 24) -> Box:
    """Return the (top, left, bottom, right) box of ``image``'s content: the pixels differing by more
    than ``tolerance`` (0-255) in some channel from the median of its four corners (a catalog shot's
    backdrop). The whole image when no pixel does, or when the corners show no common backdrop."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    whole = (0, 0, *pixels.shape[:2])
    corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
    backdrop = np.median(corners, axis=0)
    if np.abs(corners - backdrop).max() > tolerance:
        return whole
    content = np.abs(pixels - backdrop).max(axis=-1) > tolerance
    return bounding_box(content) if content.any() else whole


def make_collage(
    reference: Image.Image,
    mask: np.ndarray,
    *,
    background: tuple[int, int, int] = (0, 0, 0),
    keep_aspect: bool = False,
    layout: str = "rectangle",
) -> Image.Image:
    """Build the Diffuse-to-Choose hint: an RGB image the size of ``mask``, ``background``
    everywhere except one box holding ``reference`` resized into it (stretched, or with
    ``keep_aspect`` padded with ``background``). ``layout`` (``HINT_LAYOUTS``) picks the box and
    what fills it: "rectangle", the whole reference in ``largest_rectangle(mask)`` (the paper's);
    "box", the reference's ``content_box`` over ``bounding_box(mask)``.
    Raises ``MaskError`` for an empty mask, ``TryOnInputError`` for an unknown layout.
    """
    check_hint_layout(layout)
    mask = np.asarray(mask, dtype=bool)
    image = load_image(reference, min_side=1)
    if layout == "box":
        top, left, bottom, right = bounding_box(mask)
        crop_top, crop_left, crop_bottom, crop_right = content_box(image)
        image = image.crop((crop_left, crop_top, crop_right, crop_bottom))
    else:
        top, left, bottom, right = largest_rectangle(mask)
    if keep_aspect:
        pasted = fit_image(image, (right - left, bottom - top), mode="pad", fill=background)
    else:
        pasted = image.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    collage = Image.new("RGB", (mask.shape[1], mask.shape[0]), background)
    collage.paste(pasted, (left, top))
    return collage


def mask_to_image(mask: np.ndarray) -> Image.Image:
    """Return a bool mask as a PIL 'L' image (True -> 255, False -> 0)."""
    return Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255)


def overlay(
    image: Image.Image,
    mask: np.ndarray,
    colour: tuple[int, int, int] = (255, 0, 80),
    alpha: float = 0.45,
) -> Image.Image:
    """Return an RGB copy of ``image`` with ``colour`` blended at ``alpha`` over the True pixels."""
    mask = np.asarray(mask, dtype=bool)
    rgb = image.convert("RGB")
    if mask.shape != (rgb.height, rgb.width):
        raise MaskError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {rgb.width}x{rgb.height}"
        )
    pixels = np.asarray(rgb, dtype=np.float32)
    pixels[mask] = (1.0 - alpha) * pixels[mask] + alpha * np.asarray(colour, dtype=np.float32)
    return Image.fromarray(np.rint(pixels).astype(np.uint8))


def _points(points: Iterable[Sequence[float]]) -> np.ndarray:
    pts = np.asarray(list(points), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise TryOnInputError("a stroke needs at least one (x, y) point")
    if not np.isfinite(pts).all():
        raise TryOnInputError("stroke points must be finite numbers")
    return pts


def _distance_sq_to_segment(
    xs: np.ndarray, ys: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    dx, dy = end - start
    length_sq = dx * dx + dy * dy
    if length_sq == 0:
        t = 0.0
    else:
        t = np.clip(((xs - start[0]) * dx + (ys - start[1]) * dy) / length_sq, 0.0, 1.0)
    return (xs - start[0] - t * dx) ** 2 + (ys - start[1] - t * dy) ** 2


def _check_radius(px: float) -> None:
    if not px >= 0:
        raise TryOnInputError(f"radius must be >= 0 px, got {px}")


def _distance_to(target: np.ndarray) -> np.ndarray:
    """Euclidean distance from each pixel centre to the nearest True pixel of ``target``."""
    target = np.asarray(target, dtype=bool)
    if not target.any():
        return np.full(target.shape, np.inf)
    # float64 exact distances keep dilate/erode identical to a disc structuring element.
    return ndimage.distance_transform_edt(~target)


def _largest_in_histogram(heights: list[int]) -> tuple[int, int, int, int]:
    """(area, left, right exclusive, height) of the largest rectangle under a histogram."""
    best = (0, 0, 0, 0)
    stack: list[int] = []  # column indices with increasing heights
    for col, h in enumerate([*heights, 0]):
        while stack and heights[stack[-1]] >= h:
            top = heights[stack.pop()]
            left = stack[-1] + 1 if stack else 0
            if top * (col - left) > best[0]:
                best = (top * (col - left), left, col, top)
        stack.append(col)
    return best
