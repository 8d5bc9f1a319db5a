"""Chapter 00 exercise: the bounding box of a mask.

The student writes ``box_from_mask(mask) -> (top, left, bottom, right)``: the tightest box
around the True pixels of a bool HxW mask, with ``bottom`` and ``right`` exclusive (so
``mask[top:bottom, left:right]`` holds every True pixel), raising ``ValueError`` for an empty
mask. The judge checks the box against the mask itself, so its messages describe which mask
pixels the box misses or which of its edges is loose, never the box it expected.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np

from tryon_lab.course.exercises.core import Case, describe, run_exercise

EXERCISE = "box_from_mask"


def exercise_box_from_mask(fn) -> bool:
    """Test the student's ``box_from_mask`` on fixed world masks and edge cases; return True
    (printing "✓ ... passed") or raise ``ExerciseError`` saying what is wrong."""
    __tracebackhide__ = True
    return run_exercise(EXERCISE, fn, box_cases(), judge_box)


@lru_cache(maxsize=1)
def box_cases() -> tuple[Case, ...]:
    """Return the fixed inputs: world masks, masks cut to touch the image border, single
    pixels, two separate blobs, a full mask, and an empty mask (which must raise ValueError)."""
    from tryon_lab.data.world import World

    world = World(seed=0, resolution=128)
    garment = world.sample(0, kind="garment").shape_mask
    product = world.sample(1, kind="product")
    row, col = (int(v) for v in np.argwhere(garment).mean(axis=0))
    corner = np.zeros((128, 128), dtype=bool)
    corner[127, 127] = True
    pixel = np.zeros((40, 70), dtype=bool)
    pixel[13, 52] = True
    empty = np.zeros((64, 64), dtype=bool)
    return (
        Case("a garment's shape mask (world sample 0)", (garment,)),
        Case("a product's shape mask (world sample 1)", (product.shape_mask,)),
        Case("a product's box mask (world sample 1)", (product.box_mask,)),
        Case("a garment mask cut to touch the top and left borders", (garment[row:, col:],)),
        Case("a garment mask cut to touch the bottom and right borders", (garment[: row + 1, : col + 1],)),
        Case("a single pixel in the bottom-right corner", (corner,)),
        Case("a single pixel in a 40x70 (non-square) mask", (pixel,)),
        Case("two separate items in one mask", (garment | product.shape_mask,)),
        Case("a mask with every pixel set", (np.ones((48, 80), dtype=bool),)),
        Case("an empty mask", (empty,), raises=ValueError),
    )


def judge_box(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the box of ``case``'s mask, or None if it is right."""
    mask = case.args[0]
    if not isinstance(result, (tuple, list, np.ndarray)) or len(result) != 4:
        return f"expected 4 numbers (top, left, bottom, right), got {describe(result)}"
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in result):
        kinds = ", ".join(type(v).__name__ for v in result)
        return f"the 4 values must be integer pixel indices, got types ({kinds})"
    top, left, bottom, right = (int(v) for v in result)
    height, width = mask.shape
    for name, low, high, size, axis in (
        ("top/bottom", top, bottom, height, "rows"),
        ("left/right", left, right, width, "columns"),
    ):
        if not 0 <= low < high <= size:
            return (
                f"your {name} = {low}/{high} do not satisfy 0 <= {name.replace('/', ' < ')} <= {size} "
                f"(the mask has {size} {axis}; the end is exclusive)"
            )
    return _missed_pixels(mask, top, left, bottom, right) or _loose_edge(mask, top, left, bottom, right)


def _missed_pixels(mask: np.ndarray, top: int, left: int, bottom: int, right: int) -> str | None:
    missed = int(mask.sum() - mask[top:bottom, left:right].sum())
    if not missed:
        return None
    sides = [
        (int(mask[:top].sum()), "above your top edge"),
        (int(mask[bottom:].sum()), f"in or below row {bottom}, your (exclusive) bottom"),
        (int(mask[:, :left].sum()), "left of your left edge"),
        (int(mask[:, right:].sum()), f"in or right of column {right}, your (exclusive) right"),
    ]
    where = "; ".join(f"{count} {place}" for count, place in sides if count)
    return f"your box leaves {missed} of the mask's {int(mask.sum())} pixels outside it (by side: {where})"


def _loose_edge(mask: np.ndarray, top: int, left: int, bottom: int, right: int) -> str | None:
    inside = mask[top:bottom, left:right]
    edges = [
        (inside[0].any(), f"its top row ({top})"),
        (inside[-1].any(), f"its last row (bottom - 1 = {bottom - 1})"),
        (inside[:, 0].any(), f"its left column ({left})"),
        (inside[:, -1].any(), f"its last column (right - 1 = {right - 1})"),
    ]
    empty = [edge for has_pixels, edge in edges if not has_pixels]
    if not empty:
        return None
    verb = "contains" if len(empty) == 1 else "contain"
    return f"your box is not the tightest one: {' and '.join(empty)} {verb} no mask pixels"
