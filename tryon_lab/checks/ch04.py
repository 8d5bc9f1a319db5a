"""Chapter 04 exercises: a k-means palette, and balanced chunk cuts.

``kmeans_palette(weights, nbits) -> (lut, indices)``: a table of at most ``2**nbits`` values and,
per weight, the index of its entry, so that ``lut[indices]`` approximates ``weights``. The judge
checks the shapes, that every weight uses its nearest entry (what a converged k-means does) and
that the error closes at least half the gap between an evenly spaced palette of the same size
and k-means.

``balanced_cuts(sizes, n_chunks) -> cuts``: the ``n_chunks - 1`` layer indices after which to cut
a list of layer sizes, each where the running total comes closest to k/N of the total (leaving
every chunk at least one layer). The judge
checks each cut against the running totals themselves, never by quoting the expected cuts.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np

from tryon_lab.checks.core import Case, check_function, describe

PALETTE_EXERCISE = "kmeans_palette"
CUTS_EXERCISE = "balanced_cuts"


def check_kmeans_palette(fn) -> bool:
    """Test the student's ``kmeans_palette`` on fixed weight tensors; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return check_function(PALETTE_EXERCISE, fn, palette_cases(), judge_palette)


@lru_cache(maxsize=1)
def palette_cases() -> tuple[Case, ...]:
    """Gaussian conv-like weights at 4 and 2 bits, a two-peaked layer, a tensor with only three
    distinct values, one bit, and an invalid bit count (which must raise ValueError)."""
    rng = np.random.default_rng(4)
    conv = (rng.standard_normal((16, 8, 3, 3)) * 0.05).astype(np.float32)
    bimodal = np.concatenate([rng.normal(-0.3, 0.02, 500), rng.normal(0.4, 0.05, 300)]).astype(np.float32)
    few = np.tile(np.array([-1.0, 0.0, 2.5], dtype=np.float32), 40).reshape(12, 10)
    return (
        Case("a 16x8x3x3 conv weight at 4 bits", (conv, 4)),
        Case("the same conv weight at 2 bits", (conv, 2)),
        Case("a two-peaked layer of 800 weights at 3 bits", (bimodal, 3)),
        Case("a 12x10 tensor holding only three distinct values, at 2 bits", (few, 2)),
        Case("a two-peaked layer at 1 bit", (bimodal, 1)),
        Case("0 bits", (conv, 0), raises=ValueError),
    )


def judge_palette(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as a palette of ``case``'s weights, or None."""
    weights, nbits = case.args
    if not isinstance(result, tuple) or len(result) != 2:
        return f"expected a tuple (lut, indices), got {describe(result)}"
    lut, indices = (np.asarray(v) for v in result)
    if lut.ndim != 1 or not 1 <= lut.size <= 2**nbits or lut.dtype.kind != "f":
        return f"lut must be a 1-D float array of at most 2**{nbits} = {2**nbits} values, got {describe(lut)}"
    if indices.shape != weights.shape or indices.dtype.kind not in "iu":
        return f"indices must be integers shaped like the weights {weights.shape}, got {describe(indices)}"
    if indices.min() < 0 or indices.max() >= lut.size:
        return f"indices must lie in [0, {lut.size}) to pick a lut entry; yours span [{indices.min()}, {indices.max()}]"
    distance = np.abs(weights[..., None].astype(np.float64) - lut.astype(np.float64))
    chosen = np.take_along_axis(distance, indices[..., None].astype(np.int64), -1)[..., 0]
    far = int((chosen > distance.min(-1) + 1e-6).sum())
    if far:
        return f"{far} of {weights.size} weights do not use their nearest lut entry"
    error = float(np.mean((lut[indices].astype(np.float64) - weights) ** 2))
    uniform, converged = _palette_errors(weights, nbits)
    if error > converged + 0.5 * (uniform - converged) + 1e-12:
        return (f"your palette's mean squared error {error:.3g} is not clearly below {uniform:.3g}, that of "
                f"{2**nbits} evenly spaced values; move each entry to the mean of the weights it serves, "
                "and repeat until the entries stop moving")
    return None


def _palette_errors(weights: np.ndarray, nbits: int, rounds: int = 50) -> tuple[float, float]:
    """Mean squared errors of an evenly spaced palette and of Lloyd's k-means started from it."""
    flat = weights.ravel().astype(np.float64)
    lut = np.linspace(flat.min(), flat.max(), 2**nbits)
    errors = []
    for _ in range(rounds):
        nearest = np.abs(flat[:, None] - lut).argmin(1)
        errors.append(float(np.mean((lut[nearest] - flat) ** 2)))
        for j in np.unique(nearest):
            lut[j] = flat[nearest == j].mean()
    return errors[0], errors[-1]


def check_balanced_cuts(fn) -> bool:
    """Test the student's ``balanced_cuts`` on fixed layer-size lists; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return check_function(CUTS_EXERCISE, fn, cut_cases(), judge_cuts)


@lru_cache(maxsize=1)
def cut_cases() -> tuple[Case, ...]:
    """U-Net-like layer sizes into 2 and 3 chunks, equal layers, one chunk, one chunk per layer,
    and more chunks than layers (which must raise ValueError)."""
    unet = [2304, 4608, 9216, 16384, 9216, 36864, 73728, 36864, 18432, 9216, 4608, 2304]
    return (
        Case("twelve U-Net layers into 2 chunks", (unet, 2)),
        Case("twelve U-Net layers into 3 chunks", (unet, 3)),
        Case("eight equal layers into 4 chunks", ([1000] * 8, 4)),
        Case("five layers into 1 chunk", ([5, 1, 4, 2, 3], 1)),
        Case("four layers into 4 chunks", ([10, 20, 30, 40], 4)),
        Case("three layers into 5 chunks", ([1, 2, 3], 5), raises=ValueError),
    )


def judge_cuts(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the cuts of ``case``'s layers, or None."""
    sizes, n_chunks = case.args
    if not isinstance(result, (list, tuple)) or not all(isinstance(c, numbers.Integral) for c in result):
        return f"expected a list of layer indices, got {describe(result)}"
    cuts = [int(c) for c in result]
    if len(cuts) != n_chunks - 1:
        return f"{n_chunks} chunks need {n_chunks - 1} cuts, you gave {len(cuts)}"
    if any(not 0 <= c < len(sizes) - 1 for c in cuts) or cuts != sorted(set(cuts)):
        return f"cuts must be increasing indices in [0, {len(sizes) - 1}) so that no chunk is empty; got {cuts}"
    running = np.cumsum(sizes)
    total = float(running[-1])
    previous = -1
    for k, cut in enumerate(cuts, start=1):
        goal = total * k / n_chunks
        best = min(abs(running[i] - goal) for i in range(previous + 1, len(sizes) - (n_chunks - k)))
        if abs(running[cut] - goal) > best + 1e-9:
            return (f"after cut {k} the running total is {abs(running[cut] - goal):.0f} away from {k}/{n_chunks} "
                    f"of the total; another layer gets within {best:.0f}")
        previous = cut
    return None
