"""Chapter 03 exercises: FiLM at a skip connection, the hint's rectangle, the predicted clean latent.

1. ``film(skip, params)``: a skip tensor (B, C, h, w) and the fusion layer's output (B, 2C, h, w)
   or (B, 2C, 1, 1), whose first C channels are the scale change and last C the shift ->
   ``skip * (1 + scale change) + shift``, as ``tryon_lab.models.dtc.HintEncoder`` does: all-zero
   parameters (a fresh, zero-initialised fusion layer) leave the skip unchanged.
2. ``largest_rectangle(mask)``: a bool HxW mask -> (top, left, bottom, right), bottom and right
   exclusive, of a largest-area rectangle of masked pixels (where DTC pastes the reference);
   ValueError for an empty mask. Any rectangle of the largest area passes.
3. ``predicted_x0(noisy, noise_pred, alpha_bar)``: latents x_t (B, 4, h, w), the U-Net's noise
   prediction and ᾱ_t per sample (B,) -> the clean latent each implies, which the perceptual
   loss decodes.

Judges compare with the right answer internally and describe what is wrong (which part of the
parameters, how many pixels, which sample), never the expected values. Inputs are numpy arrays;
exercises 1 and 3 receive them as torch tensors sharing their memory.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np

from tryon_lab.course.exercises.core import Case, describe, fail, passed, run_exercise
from tryon_lab.course.exercises.tensors import as_torch, max_error, tensor_problem

FILM = "film"
RECTANGLE = "largest_rectangle"
X0 = "predicted_x0"
RANKING = "predicted_ranking"
_TOLERANCE = 1e-5


# --- exercise 1: FiLM ----------------------------------------------------------------------------


def exercise_film(fn) -> bool:
    """Test the student's ``film(skip, params)`` on fixed skips and FiLM parameters; return True
    (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(FILM, as_torch(fn), film_cases(), judge_film)


@lru_cache(maxsize=1)
def film_cases() -> tuple[Case, ...]:
    """Fixed inputs: all-zero parameters, a spatial batch of two, channel-wise (1x1) parameters,
    a non-square map, and a scale change of -1 (the skip switched off)."""
    rng = np.random.default_rng(30)

    def skip(*shape):
        return (rng.standard_normal(shape) * 2.0 + 0.5).astype(np.float32)

    def params(b, c, h, w, scale=0.3):
        return (rng.standard_normal((b, 2 * c, h, w)) * scale).astype(np.float32)

    off = params(1, 3, 4, 4)
    off[:, :3] = -1.0
    return (
        Case("all-zero parameters (a freshly initialised fusion layer)",
             (skip(1, 4, 4, 4), np.zeros((1, 8, 4, 4), np.float32))),
        Case("spatial FiLM on a batch of two", (skip(2, 3, 5, 5), params(2, 3, 5, 5))),
        Case("channel-wise FiLM (parameters of shape (B, 2C, 1, 1))", (skip(2, 4, 6, 6), params(2, 4, 1, 1))),
        Case("a non-square 3x7 feature map", (skip(1, 2, 3, 7), params(1, 2, 3, 7))),
        Case("a scale change of -1 everywhere (the skip switched off)", (skip(1, 3, 4, 4), off)),
    )


def _film(skip: np.ndarray, scale_change: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return skip.astype(np.float64) * (1.0 + scale_change) + shift


def judge_film(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as FiLM of ``case``'s skip, or None if it is right."""
    skip, params = case.args
    problem = tensor_problem(result, skip.shape, "a tensor shaped like the skip")
    if problem:
        return problem
    c = skip.shape[1]
    first, second = params[:, :c].astype(np.float64), params[:, c:].astype(np.float64)
    if max_error(result, _film(skip, first, second)) <= _TOLERANCE:
        return None
    mistakes = {
        "you multiply the skip by the scale change itself; a zero-initialised fusion layer must leave the "
        "skip unchanged, so the scale is one plus the change": skip * first + second,
        "you take the scale change from the last C channels and the shift from the first C; the fusion layer "
        "puts the scale change first": _film(skip, second, first),
        "you split the parameters into alternating channels; they are two blocks of C channels one after the "
        "other": _film(skip, params[:, 0::2], params[:, 1::2]),
        "your result ignores the scale change (the first C channels)": skip + second,
        "your result ignores the shift (the last C channels)": _film(skip, first, 0.0),
    }
    for message, wrong in mistakes.items():
        if max_error(result, np.asarray(wrong, dtype=np.float64)) <= _TOLERANCE:
            return message
    error = max_error(result, _film(skip, first, second))
    if not params.any():
        return (f"all-zero parameters must give back the skip itself, yours differs from it by up to {error:.3g}: "
                "a new DTC model would not start from the base model's behaviour")
    return f"your result is off by up to {error:.3g}"


# --- exercise 2: the rectangle the hint fills ----------------------------------------------------


def exercise_largest_rectangle(fn) -> bool:
    """Test the student's ``largest_rectangle(mask)`` on fixed masks; return True (printing
    "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(RECTANGLE, fn, rectangle_cases(), judge_rectangle)


@lru_cache(maxsize=1)
def rectangle_cases() -> tuple[Case, ...]:
    """Fixed masks: a world garment and a world product (128x128), an L shape whose bounding box
    is mostly empty, two blobs of different sizes on a non-square image, a single pixel, a full
    mask, and an empty mask (which must raise ValueError)."""
    from tryon_lab.data.world import World

    world = World(seed=0, resolution=128)
    garment = world.sample(5, split="test", kind="garment").shape_mask
    product = world.sample(2, split="test", kind="product").shape_mask
    ell = np.zeros((40, 40), dtype=bool)
    ell[4:36, 4:12] = True
    ell[28:36, 4:38] = True
    blobs = np.zeros((30, 50), dtype=bool)
    blobs[3:9, 2:10] = True
    blobs[10:27, 20:47] = True
    blobs[12:14, 47:49] = True
    dot = np.zeros((9, 9), dtype=bool)
    dot[6, 2] = True
    return (
        Case("a world garment's shape mask (128x128)", (garment,)),
        Case("a world product's shape mask (128x128)", (product,)),
        Case("an L-shaped mask", (ell,)),
        Case("two blobs of different sizes on a 30x50 image", (blobs,)),
        Case("a single masked pixel", (dot,)),
        Case("a full 20x30 mask", (np.ones((20, 30), dtype=bool),)),
        Case("an empty mask", (np.zeros((16, 16), dtype=bool),), raises=ValueError),
    )


def _best_area(mask: np.ndarray) -> int:
    from tryon_lab.data.masks import largest_rectangle

    top, left, bottom, right = largest_rectangle(mask)
    return (bottom - top) * (right - left)


def _is_best(box: tuple[int, ...], mask: np.ndarray, best: int) -> bool:
    top, left, bottom, right = box
    height, width = mask.shape
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        return False
    return bool(mask[top:bottom, left:right].all()) and (bottom - top) * (right - left) == best


def judge_rectangle(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the largest rectangle of ``case``'s mask, or None."""
    (mask,) = case.args
    if not (isinstance(result, (tuple, list)) and len(result) == 4
            and all(isinstance(v, numbers.Integral) for v in result)):
        return f"expected a tuple of four integers (top, left, bottom, right), got {describe(result)}"
    top, left, bottom, right = (int(v) for v in result)
    best = _best_area(mask)
    if _is_best((top, left, bottom, right), mask, best):
        return None
    if _is_best((left, top, right, bottom), mask, best):
        return "you return (left, top, right, bottom); the convention is (top, left, bottom, right), rows first"
    if _is_best((top, left, bottom + 1, right + 1), mask, best):
        return "bottom and right are exclusive, like numpy slices: the rectangle is mask[top:bottom, left:right]"
    height, width = mask.shape
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        return (f"a rectangle needs 0 <= top < bottom <= {height} and 0 <= left < right <= {width} on this "
                f"{height}x{width} mask; yours is {(top, left, bottom, right)}")
    outside = int((~mask[top:bottom, left:right]).sum())
    if outside:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if (top, left, bottom, right) == (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1):
            return (f"that is the mask's bounding box: {outside} of its pixels are not masked, and the "
                    "reference pasted there would spill outside the region being repainted")
        return f"{outside} pixel(s) inside your rectangle are not masked; every pixel of it must be"
    return (f"your rectangle covers {(bottom - top) * (right - left)} masked pixels, but a larger rectangle "
            "fits inside the mask")


# --- exercise 3: the predicted clean latent ------------------------------------------------------


def exercise_predicted_x0(fn) -> bool:
    """Test the student's ``predicted_x0(noisy, noise_pred, alpha_bar)`` on fixed latents; return
    True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(X0, as_torch(fn), x0_cases(), judge_x0)


@lru_cache(maxsize=1)
def x0_cases() -> tuple[Case, ...]:
    """Fixed inputs built as x_t = sqrt(ᾱ) x0 + sqrt(1-ᾱ) eps: a batch of three timesteps,
    ᾱ = 1 (no noise), a batch of four 4x4 latents (so a per-sample ᾱ broadcast along the width still runs)
    and ᾱ near 0 (t close to 999)."""
    rng = np.random.default_rng(31)

    def case(alpha_bar, h, w):
        alpha = np.asarray(alpha_bar, dtype=np.float32)
        shape = (len(alpha), 4, h, w)
        x0 = rng.standard_normal(shape).astype(np.float32)
        eps = rng.standard_normal(shape).astype(np.float32)
        a = alpha[:, None, None, None]
        noisy = (np.sqrt(a) * x0 + np.sqrt(1 - a) * eps).astype(np.float32)
        # the "prediction" is the true noise plus an error, as a real U-Net's would be
        return noisy, (eps + 0.1 * rng.standard_normal(shape)).astype(np.float32), alpha

    return (
        Case("three latents at alpha_bar 0.9, 0.5 and 0.05", case([0.9, 0.5, 0.05], 8, 8)),
        Case("one latent at alpha_bar 1 (no noise)", case([1.0], 8, 8)),
        Case("four 4x4 latents, each at its own alpha_bar", case([0.95, 0.6, 0.3, 0.1], 4, 4)),
        Case("two latents at alpha_bar near 0 (t close to 999)", case([0.0047, 0.02], 6, 6)),
    )


def _x0(noisy: np.ndarray, eps: np.ndarray, a: np.ndarray) -> np.ndarray:
    return (noisy.astype(np.float64) - np.sqrt(1 - a) * eps) / np.sqrt(a)


def judge_x0(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the predicted clean latents of ``case``, or None."""
    noisy, eps, alpha = case.args
    problem = tensor_problem(result, noisy.shape, "a tensor shaped like the noisy latents")
    if problem:
        return problem
    a = alpha.astype(np.float64)[:, None, None, None]
    expected = _x0(noisy, eps, a)
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    if max_error(result, expected) <= tolerance:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        mistakes = _x0_mistakes(noisy, eps, alpha)
    for message, wrong in mistakes.items():
        if max_error(result, wrong) <= tolerance:
            return message
    per_sample = [max_error(result[i:i + 1], expected[i:i + 1]) for i in range(len(alpha))]
    wrong_samples = [i for i, e in enumerate(per_sample) if e > tolerance]
    return (f"sample(s) {wrong_samples} are off by up to {max(per_sample):.3g}; x_t = sqrt(alpha_bar) x0 + "
            "sqrt(1 - alpha_bar) eps, solved for x0, with each sample's own alpha_bar")


def _x0_mistakes(noisy: np.ndarray, eps: np.ndarray, alpha: np.ndarray) -> dict[str, np.ndarray]:
    """Typical wrong answers, keyed by what to tell the student."""
    a = alpha.astype(np.float64)[:, None, None, None]
    mistakes = {
        "you use alpha_bar where its square root belongs: x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps":
            (noisy - (1 - a) * eps) / a,
        "you remove the noise but do not undo the scaling of x0 by sqrt(alpha_bar)": noisy - np.sqrt(1 - a) * eps,
        "the predicted noise must be taken away from x_t, not added": (noisy + np.sqrt(1 - a) * eps) / np.sqrt(a),
        "you swapped the roles of alpha_bar and 1 - alpha_bar": (noisy - np.sqrt(a) * eps) / np.sqrt(1 - a),
    }
    if len(alpha) == noisy.shape[-1]:
        along_width = alpha.astype(np.float64)[None, None, None, :]
        mistakes["each sample has its own alpha_bar, but yours is spread along the latent's width; "
                 "give it one value per sample, shape (B, 1, 1, 1)"] = _x0(noisy, eps, along_width)
    return mistakes


# --- exercise 4: predict, then check ----------------------------------------------------------------


def exercise_ranking(prediction, ablation, comparisons, metric: str = "identity_acc") -> str:
    """Check a student's ``prediction`` (variant names, best first by ``metric``) against the
    recorded ``ablation`` ({variant: scores}) and its paired ``comparisons`` (rows with a, b, metric,
    difference, lo, hi). Returns Markdown: for every pair of predicted variants the recipe compared,
    whether its paired 95% interval confirms the predicted order, reverses it, or cannot tell.
    ``ExerciseError`` unless the prediction names recorded variants, each once."""
    __tracebackhide__ = True
    names = [n for n, scores in ablation.items() if metric in scores]
    if not isinstance(prediction, (list, tuple)) or not prediction:
        fail(RANKING, f"write your ranking first: a list of variant names, best first, from {names}")
    unknown = [n for n in prediction if n not in names]
    if unknown:
        fail(RANKING, f"{describe(unknown)} are not variants with a recorded {metric}; choose from {names}")
    if len(set(prediction)) != len(prediction):
        fail(RANKING, "your ranking names a variant twice")
    rank = {name: i for i, name in enumerate(prediction)}
    lines = [f"| you said | measured {metric}: A − B [95% interval] | |", "|---|---|---|"]
    tally = {"confirmed": 0, "reversed": 0, "cannot tell": 0}
    for row in comparisons:
        if row["metric"] != metric or row["a"] not in rank or row["b"] not in rank:
            continue
        better, worse = (row["a"], row["b"]) if rank[row["a"]] < rank[row["b"]] else (row["b"], row["a"])
        sign = 1 if better == row["a"] else -1
        lo, hi = sorted((sign * row["lo"], sign * row["hi"]))
        outcome = "confirmed" if lo > 0 else "reversed" if hi < 0 else "cannot tell"
        tally[outcome] += 1
        lines.append(f"| {better} above {worse} | {sign * row['difference']:.3f} [{lo:.3f}, {hi:.3f}] | {outcome} |")
    if len(lines) == 2:
        passed(RANKING, f"the recipe compared none of the pairs you ranked on {metric}")
        return ""
    passed(RANKING, ", ".join(f"{count} {outcome}" for outcome, count in tally.items()))
    return "\n".join(lines)
