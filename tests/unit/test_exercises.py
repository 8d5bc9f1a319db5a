"""The exercise verifier: correct answers pass, wrong ones fail with a message that says what is
wrong without giving the answer away."""

import numpy as np
import pytest

from tryon_lab.course.exercises import Case, ExerciseError, run_exercise, run_value_exercise
from tryon_lab.course.exercises.ch00 import box_cases, exercise_box_from_mask
from tryon_lab.data.masks import bounding_box


def correct(mask):
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("empty mask")
    return rows[0], cols[0], rows[-1] + 1, cols[-1] + 1


def inclusive_end(mask):
    top, left, bottom, right = correct(mask)
    return top, left, bottom - 1, right - 1


def rows_and_columns_swapped(mask):
    top, left, bottom, right = correct(mask)
    return left, top, right, bottom


def one_row_too_many(mask):
    top, left, bottom, right = correct(mask)
    return max(top - 1, 0), left, bottom, right


def empty_gives_zeros(mask):
    return correct(mask) if mask.any() else (0, 0, 0, 0)


def returns_floats(mask):
    return tuple(float(v) for v in correct(mask))


def returns_three(mask):
    return correct(mask)[:3]


def clears_the_mask(mask):
    box = correct(mask)
    mask[:] = False
    return box


def crashes(mask):
    return np.argwhere(mask)[10_000]


def not_written(mask):
    raise NotImplementedError


def test_correct_solution_passes(capsys):
    assert exercise_box_from_mask(correct) is True
    assert "✓ box_from_mask passed" in capsys.readouterr().out


def test_the_package_bounding_box_passes():
    assert exercise_box_from_mask(bounding_box)


def test_cases_cover_border_single_pixel_and_empty_masks():
    cases = box_cases()
    touching = [c for c in cases if c.raises is None and (c.args[0][-1].any() and c.args[0][:, -1].any())]
    assert touching, "a mask touching the bottom-right border catches end-exclusive mistakes"
    assert any(c.raises is None and c.args[0].sum() == 1 for c in cases)
    assert any(c.raises is ValueError and not c.args[0].any() for c in cases)
    assert any(c.args[0].shape[0] != c.args[0].shape[1] for c in cases)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (inclusive_end, "exclusive"),
        (rows_and_columns_swapped, "outside"),
        (one_row_too_many, "not the tightest"),
        (empty_gives_zeros, "should raise ValueError"),
        (returns_floats, "integer"),
        (returns_three, "4 numbers"),
        (clears_the_mask, "changed its input"),
        (crashes, "raised IndexError"),
        (not_written, "not written yet"),
        (42, "expected a function"),
    ],
)
def test_wrong_solutions_fail_without_revealing_the_answer(wrong, says):
    with pytest.raises(ExerciseError) as info:
        exercise_box_from_mask(wrong)
    message = str(info.value)
    assert says in message
    for case in box_cases():
        if case.raises is None:
            expected = bounding_box(case.args[0])
            assert str(expected) not in message
            assert str(list(expected)) not in message


def test_exercise_error_is_an_assertion_error():
    assert issubclass(ExerciseError, AssertionError)


def test_run_exercise_names_the_failing_case():
    cases = [Case("two plus two", (2, 2)), Case("one plus one", (1, 1))]

    def judge(result, case):
        return None if result == sum(case.args) else "the sum is off"

    assert run_exercise("add", lambda a, b: a + b, cases, judge)
    with pytest.raises(ExerciseError, match="on one plus one: the sum is off"):
        run_exercise("add", lambda a, b: 4, cases, judge)


def test_run_value_exercise(capsys):
    def judge(value):
        return None if value > 0 else f"the value must be positive, yours is {value}"

    assert run_value_exercise("positive", 3, judge)
    assert "✓ positive passed" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="must be positive"):
        run_value_exercise("positive", -1, judge)
