"""Chapter 05 exercise: from canvas events to a mask.

The student writes ``events_to_mask(events, radius, size) -> mask``: ``events`` is a list of
``(kind, x, y)`` with ``kind`` one of "down", "move", "up" and (x, y) in pixels; ``size`` is
(width, height). A "down" starts a stroke and paints a disc of ``radius``; each "move" while the
button is down paints the segment from the previous point; "up" ends the stroke; moves while
the button is up paint nothing. The judge compares with a brush of the same radius, allowing
half a pixel either way at the brush's edge, and says which kind of event the answer
mishandled, never the mask it expected.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tryon_lab.course.exercises.core import Case, describe, run_exercise
from tryon_lab.data.masks import add_stroke

EXERCISE = "events_to_mask"
EDGE = 0.5  # pixels of slack at the brush's edge: discs drawn with < or <= both pass


def exercise_events_to_mask(fn) -> bool:
    """Test the student's ``events_to_mask`` on fixed event sequences; return True (printing
    "✓ ... passed") or raise ``ExerciseError`` saying what is wrong."""
    __tracebackhide__ = True
    return run_exercise(EXERCISE, fn, event_cases(), judge_mask)


@lru_cache(maxsize=1)
def event_cases() -> tuple[Case, ...]:
    """Return the fixed inputs: a click, a fast drag, hovering, two strokes, a stroke that leaves
    the image, a non-square canvas, and moves with no button ever pressed."""
    hover_then_drag = [("move", 5, 5), ("move", 30, 8), ("down", 20, 30), ("move", 60, 30), ("up", 60, 30),
                       ("move", 70, 60), ("move", 10, 60)]
    return (
        Case("a single click at (32, 20)", ([("down", 32, 20), ("up", 32, 20)], 6, (64, 48))),
        Case("a fast drag: three moves far apart", ([("down", 8, 8), ("move", 40, 10), ("move", 56, 40),
                                                     ("move", 20, 44), ("up", 20, 44)], 3, (64, 48))),
        Case("hovering before and after a drag", (hover_then_drag, 4, (80, 64))),
        Case("two strokes with a hover between them", ([("down", 10, 10), ("move", 10, 40), ("up", 10, 40),
                                                        ("move", 50, 40), ("down", 50, 10), ("move", 50, 40),
                                                        ("up", 50, 40)], 3, (64, 48))),
        Case("a stroke that leaves the image", ([("down", 30, 20), ("move", 90, -20), ("move", -15, 40),
                                                 ("up", -15, 40)], 5, (48, 32))),
        Case("a tall 24x60 canvas", ([("down", 4, 50), ("move", 20, 6), ("up", 20, 6)], 2.5, (24, 60))),
        Case("moves with no button pressed", ([("move", 10, 10), ("move", 30, 30), ("up", 30, 30)], 4, (40, 40))),
    )


def painted_strokes(events) -> list[list[tuple[float, float]]]:
    """The polylines the brush paints: each from a "down" through the moves until "up"."""
    strokes, current = [], None
    for kind, x, y in events:
        if kind == "down":
            current = [(x, y)]
            strokes.append(current)
        elif kind == "move" and current is not None:
            current.append((x, y))
        elif kind == "up":
            current = None
    return strokes


def _brush(strokes, radius: float, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for stroke in strokes:
        if radius > 0:
            add_stroke(mask, stroke, radius)
    return mask


def judge_mask(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the mask of ``case``'s events, or None."""
    events, radius, size = case.args
    width, height = size
    if not isinstance(result, np.ndarray) or result.shape != (height, width):
        return f"expected a numpy array of shape (height, width) = ({height}, {width}), got {describe(result)}"
    if result.dtype != bool:
        return f"expected a bool mask, got dtype {result.dtype}"
    painted = painted_strokes(events)
    must = _brush(painted, radius - EDGE, size)
    may = _brush(painted, radius + EDGE, size)
    extra = result & ~may
    missing = must & ~result
    if extra.any():
        if not painted:
            return f"no button was ever pressed, yet your mask has {int(extra.sum())} painted pixels"
        every_point = _brush([[(x, y) for _, x, y in events]], radius + EDGE, size)
        cause = ("they lie along moves made while the button was up, which must not paint"
                 if not (extra & ~every_point).any() else "is (x, y) read as (column, row)?")
        return f"{int(extra.sum())} painted pixels lie farther than the radius ({radius} px) from every stroke; {cause}"
    if missing.any():
        dots = _brush([[stroke[0]] for stroke in painted], radius + EDGE, size)
        between = int((missing & ~dots).sum())
        where = (f"{between} of them lie between the points of moves, away from where strokes start"
                 if between else "they lie around the points where strokes start")
        return f"{int(missing.sum())} pixels within the radius of a stroke are not painted; {where}"
    return None
