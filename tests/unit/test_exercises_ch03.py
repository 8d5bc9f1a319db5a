"""Chapter 03 exercises: right answers pass (including the package's own code), typical mistakes fail
with a message that says what is wrong, and no message quotes the expected values."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from tryon_lab.course.exercises import ExerciseError
from tryon_lab.course.exercises.ch03 import (
    exercise_film,
    exercise_largest_rectangle,
    exercise_predicted_x0,
    film_cases,
    rectangle_cases,
    x0_cases,
)
from tryon_lab.data.masks import bounding_box
from tryon_lab.data.masks import largest_rectangle as package_rectangle
from tryon_lab.models.dtc import HintEncoder


def _reveals_no_array(message: str) -> None:
    """A message may quote one error size or count, never a run of numbers (an expected tensor)."""
    assert not re.search(r"(-?\d+\.\d+,\s*){3,}", message), message
    assert "tensor(" not in message and "array(" not in message, message


def _fails(check, wrong) -> str:
    with pytest.raises(ExerciseError) as info:
        check(wrong)
    message = str(info.value)
    _reveals_no_array(message)
    return message


def not_written(*args):
    raise NotImplementedError


# --- exercise 1: FiLM -----------------------------------------------------------------------------


def film(skip, params):
    change, shift = params.chunk(2, dim=1)
    return skip * (1 + change) + shift


def film_without_one(skip, params):
    change, shift = params.chunk(2, dim=1)
    return skip * change + shift


def film_halves_swapped(skip, params):
    shift, change = params.chunk(2, dim=1)
    return skip * (1 + change) + shift


def film_interleaved(skip, params):
    return skip * (1 + params[:, 0::2]) + params[:, 1::2]


def film_shift_only(skip, params):
    return skip + params.chunk(2, dim=1)[1]


def film_scale_only(skip, params):
    return skip * (1 + params.chunk(2, dim=1)[0])


def film_pooled(skip, params):
    change, shift = params.mean(dim=(2, 3), keepdim=True).chunk(2, dim=1)
    return skip * (1 + change) + shift


def film_in_place(skip, params):
    change, shift = params.chunk(2, dim=1)
    return skip.mul_(1 + change).add_(shift)


def film_numpy(skip, params):
    return film(skip, params).numpy()


def test_film_right_answers_pass(capsys, tiny_pipeline):
    assert exercise_film(film)
    assert "✓ film passed" in capsys.readouterr().out
    # the package's own FiLM: a real HintEncoder whose fusion layer passes the parameters through
    encoder = HintEncoder.from_unet(tiny_pipeline.unet)
    encoder.fusion_layers = torch.nn.ModuleList([torch.nn.Identity()])

    def film_package(skip, params):
        modulation = encoder.modulation((params,))
        return skip * modulation.scales[0] + modulation.shifts[0]

    assert exercise_film(film_package)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (film_without_one, "scale is one plus the change"),
        (film_halves_swapped, "puts the scale change first"),
        (film_interleaved, "alternating channels"),
        (film_shift_only, "ignores the scale change"),
        (film_scale_only, "ignores the shift"),
        (film_pooled, "off by up to"),
        (film_in_place, "changed its input"),
        (film_numpy, "stay in torch"),
        (not_written, "not written yet"),
        ("film", "expected a function"),
    ],
)
def test_film_mistakes_fail_with_a_reason(wrong, says):
    assert says in _fails(exercise_film, wrong)


def test_film_cases_cover_identity_and_channel_wise_parameters():
    params = [c.args[1] for c in film_cases()]
    assert any(not p.any() for p in params)
    assert any(p.shape[-2:] == (1, 1) for p in params)
    assert any(p.shape[-1] != p.shape[-2] for p in params)


# --- exercise 2: the largest rectangle ------------------------------------------------------------


def rectangle(mask):
    """Row histograms, each solved by brute force over its columns (O(H W^2))."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("empty mask")
    heights = np.zeros(mask.shape[1], dtype=int)
    best, box = 0, None
    for row, line in enumerate(mask):
        heights = np.where(line, heights + 1, 0)
        for left in range(len(heights)):
            low = heights[left]
            for right in range(left, len(heights)):
                low = min(low, heights[right])
                if low == 0:
                    break
                if low * (right - left + 1) > best:
                    best, box = low * (right - left + 1), (row + 1 - low, left, row + 1, right + 1)
    return box


def rectangle_xy(mask):
    top, left, bottom, right = rectangle(mask)
    return left, top, right, bottom


def rectangle_inclusive(mask):
    top, left, bottom, right = rectangle(mask)
    return top, left, bottom - 1, right - 1


def rectangle_bounding_box(mask):
    return bounding_box(mask)


def rectangle_widest_row(mask):
    if not mask.any():
        raise ValueError("empty mask")
    row = int(mask.sum(1).argmax())
    cols = np.flatnonzero(mask[row])
    return row, int(cols[0]), row + 1, int(cols[0]) + 1


def rectangle_no_raise(mask):
    if not mask.any():
        return 0, 0, 0, 0
    return rectangle(mask)


def rectangle_as_array(mask):
    return np.array(rectangle(mask))


def test_rectangle_right_answers_pass():
    assert exercise_largest_rectangle(rectangle)
    assert exercise_largest_rectangle(package_rectangle)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (rectangle_xy, "(left, top, right, bottom)"),
        (rectangle_inclusive, "exclusive"),
        (rectangle_bounding_box, "bounding box"),
        (rectangle_widest_row, "a larger rectangle fits"),
        (rectangle_no_raise, "should raise ValueError"),
        (rectangle_as_array, "a tuple of four integers"),
        (not_written, "not written yet"),
    ],
)
def test_rectangle_mistakes_fail_with_a_reason(wrong, says):
    assert says in _fails(exercise_largest_rectangle, wrong)


def test_rectangle_cases_have_a_misleading_bounding_box_and_an_empty_mask():
    masks = [c.args[0] for c in rectangle_cases()]
    assert any(not m.any() for m in masks)
    holey = [m for m in masks if m.any() and not m[tuple(slice(a, b) for a, b in
                                                        zip(bounding_box(m)[:2], bounding_box(m)[2:]))].all()]
    assert len(holey) >= 3
    assert any(m.shape[0] != m.shape[1] for m in masks)


# --- exercise 3: the predicted clean latent -------------------------------------------------------


def x0(noisy, noise_pred, alpha_bar):
    a = alpha_bar.view(-1, 1, 1, 1)
    return (noisy - (1 - a).sqrt() * noise_pred) / a.sqrt()


def x0_package(noisy, noise_pred, alpha_bar):
    from tryon_lab.course.inpainting.previews import predicted_x0

    return torch.cat([predicted_x0(noisy[i:i + 1], noise_pred[i:i + 1], float(a)) for i, a in enumerate(alpha_bar)])


def x0_no_sqrt(noisy, noise_pred, alpha_bar):
    a = alpha_bar.view(-1, 1, 1, 1)
    return (noisy - (1 - a) * noise_pred) / a


def x0_no_division(noisy, noise_pred, alpha_bar):
    return noisy - (1 - alpha_bar.view(-1, 1, 1, 1)).sqrt() * noise_pred


def x0_plus(noisy, noise_pred, alpha_bar):
    a = alpha_bar.view(-1, 1, 1, 1)
    return (noisy + (1 - a).sqrt() * noise_pred) / a.sqrt()


def x0_swapped(noisy, noise_pred, alpha_bar):
    a = alpha_bar.view(-1, 1, 1, 1)
    return (noisy - a.sqrt() * noise_pred) / (1 - a).sqrt()


def x0_along_width(noisy, noise_pred, alpha_bar):
    return (noisy - (1 - alpha_bar).sqrt() * noise_pred) / alpha_bar.sqrt()


def x0_first_alpha(noisy, noise_pred, alpha_bar):
    a = float(alpha_bar[0])
    return (noisy - (1 - a) ** 0.5 * noise_pred) / a**0.5


def test_x0_right_answers_pass():
    assert exercise_predicted_x0(x0)
    assert exercise_predicted_x0(x0_package)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (x0_no_sqrt, "square root"),
        (x0_no_division, "undo the scaling"),
        (x0_plus, "not added"),
        (x0_swapped, "swapped the roles"),
        (x0_along_width, "raised RuntimeError"),  # the batch of three cannot broadcast along width 8
        (x0_first_alpha, "sample(s) [1, 2] are off"),
        (not_written, "not written yet"),
    ],
)
def test_x0_mistakes_fail_with_a_reason(wrong, says):
    assert says in _fails(exercise_predicted_x0, wrong)


def test_x0_judge_names_a_per_sample_alpha_broadcast_along_the_width():
    from tryon_lab.course.exercises.ch03 import judge_x0

    case = next(c for c in x0_cases() if len(c.args[2]) == c.args[0].shape[-1])
    noisy, eps, alpha = (torch.from_numpy(a) for a in case.args)
    assert "spread along the latent's width" in judge_x0(x0_along_width(noisy, eps, alpha), case)


ABLATION = {"baseline": {"identity_acc": 0.3}, "add": {"identity_acc": 0.5}, "film": {"identity_acc": 0.52}}
COMPARISONS = [
    {"a": "add", "b": "baseline", "metric": "identity_acc", "difference": 0.2, "lo": 0.1, "hi": 0.3},
    {"a": "film", "b": "add", "metric": "identity_acc", "difference": 0.02, "lo": -0.05, "hi": 0.09},
    {"a": "film", "b": "baseline", "metric": "attr_acc_all", "difference": 0.1, "lo": 0.05, "hi": 0.15},
]


def test_a_ranking_is_read_against_the_paired_intervals(capsys):
    from tryon_lab.course.exercises.ch03 import exercise_ranking

    table = exercise_ranking(["baseline", "film", "add"], ABLATION, COMPARISONS)
    assert "| add above baseline | 0.200 [0.100, 0.300] | confirmed |" not in table
    assert "| baseline above add | -0.200 [-0.300, -0.100] | reversed |" in table
    assert "| film above add | 0.020 [-0.050, 0.090] | cannot tell |" in table
    assert "attr_acc_all" not in table  # another metric's comparison is not this ranking's
    assert "0 confirmed, 1 reversed, 1 cannot tell" in capsys.readouterr().out


@pytest.mark.parametrize("prediction, message", [
    ([], "write your ranking first"),
    ("film", "write your ranking first"),
    (["film", "cross-attention"], "cross-attention"),
    (["film", "film"], "twice"),
])
def test_a_ranking_that_is_not_one_is_refused(prediction, message):
    from tryon_lab.course.exercises.ch03 import exercise_ranking
    from tryon_lab.course.exercises.core import ExerciseError

    with pytest.raises(ExerciseError, match=message):
        exercise_ranking(prediction, ABLATION, COMPARISONS)
