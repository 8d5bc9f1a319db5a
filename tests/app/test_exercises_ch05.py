"""Chapter 05's exercise: right answers pass, each typical mistake gets its own message."""

import numpy as np
import pytest

from tryon_lab.course.exercises import ExerciseError
from tryon_lab.course.exercises.ch05 import exercise_events_to_mask
from tryon_lab.data.masks import add_stroke


def right(events, radius, size):
    mask = np.zeros((size[1], size[0]), dtype=bool)
    points = None
    for kind, x, y in events:
        if kind == "down":
            points = [(x, y)]
        elif kind == "move" and points is not None:
            points.append((x, y))
        elif kind == "up" and points is not None:
            add_stroke(mask, points, radius)
            points = None
    return mask


def right_with_own_discs(events, radius, size):
    """A correct answer without add_stroke: dense discs along each segment, strict < edge."""
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    mask = np.zeros((size[1], size[0]), dtype=bool)
    last = None
    for kind, x, y in events:
        if kind == "up":
            last = None
        elif kind == "down" or (kind == "move" and last is not None):
            start = last or (x, y)
            for t in np.linspace(0, 1, 200):
                cx, cy = start[0] + t * (x - start[0]), start[1] + t * (y - start[1])
                mask |= (xs - cx) ** 2 + (ys - cy) ** 2 < radius**2
            last = (x, y)
    return mask


def dots_only(events, radius, size):
    mask = np.zeros((size[1], size[0]), dtype=bool)
    pressed = False
    for kind, x, y in events:
        pressed = kind in ("down", "move") and (pressed or kind == "down")
        if pressed:
            add_stroke(mask, [(x, y)], radius)
    return mask


def paints_hover(events, radius, size):
    mask = np.zeros((size[1], size[0]), dtype=bool)
    add_stroke(mask, [(x, y) for _, x, y in events], radius)
    return mask


def swapped_xy(events, radius, size):
    return right([(kind, y, x) for kind, x, y in events], radius, size)


def width_by_height(events, radius, size):
    return right(events, radius, size).T.copy()


@pytest.mark.parametrize("answer", [right, right_with_own_discs])
def test_right_answers_pass(answer, capsys):
    assert exercise_events_to_mask(answer)
    assert "✓ events_to_mask passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (dots_only, "between the points of moves"),
    (paints_hover, "moves made while the button was up"),
    (swapped_xy, "column, row"),
    (width_by_height, "shape \\(height, width\\)"),
    (lambda e, r, s: right(e, r, s).astype(np.uint8), "bool mask"),
])
def test_mistakes_are_described(answer, message):
    with pytest.raises(ExerciseError, match=message):
        exercise_events_to_mask(answer)
