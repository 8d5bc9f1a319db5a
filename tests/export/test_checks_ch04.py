"""Chapter 04 checks: right answers pass; wrong ones fail with a message that does not give the answer."""

import numpy as np
import pytest

from tryon_lab.checks.ch04 import check_balanced_cuts, check_kmeans_palette
from tryon_lab.checks.core import ExerciseError


def kmeans_palette(weights, nbits):
    if nbits < 1:
        raise ValueError("nbits must be >= 1")
    flat = weights.ravel().astype(np.float64)
    lut = np.linspace(flat.min(), flat.max(), 2**nbits)
    for _ in range(30):
        indices = np.abs(flat[:, None] - lut).argmin(1)
        for j in range(lut.size):
            if (indices == j).any():
                lut[j] = flat[indices == j].mean()
    indices = np.abs(flat[:, None] - lut).argmin(1)
    return lut.astype(np.float32), indices.reshape(weights.shape)


def balanced_cuts(sizes, n_chunks):
    if n_chunks > len(sizes):
        raise ValueError("more chunks than layers")
    running, cuts = np.cumsum(sizes), []
    for k in range(1, n_chunks):
        first = cuts[-1] + 1 if cuts else 0
        allowed = range(first, len(sizes) - (n_chunks - k))
        cuts.append(min(allowed, key=lambda i: abs(running[i] - running[-1] * k / n_chunks)))
    return cuts


def test_right_answers_pass():
    assert check_kmeans_palette(kmeans_palette)
    assert check_balanced_cuts(balanced_cuts)


def test_a_uniform_palette_is_not_k_means():
    def uniform(weights, nbits):
        if nbits < 1:
            raise ValueError
        lut = np.linspace(weights.min(), weights.max(), 2**nbits).astype(np.float32)
        return lut, np.abs(weights[..., None] - lut).argmin(-1)

    with pytest.raises(ExerciseError, match="not clearly below") as info:
        check_kmeans_palette(uniform)
    assert "lut" not in str(info.value).split(":", 2)[-1]


def test_wrong_palette_shapes_and_missing_errors_are_explained():
    with pytest.raises(ExerciseError, match="indices must be integers shaped like"):
        check_kmeans_palette(lambda w, n: (np.zeros(2, np.float32), np.zeros(3, int)))
    with pytest.raises(ExerciseError, match="should raise ValueError"):
        check_kmeans_palette(lambda w, n: kmeans_palette(w, max(n, 1)))


def test_even_cuts_by_layer_count_are_not_balanced():
    def by_count(sizes, n_chunks):
        if n_chunks > len(sizes):
            raise ValueError
        return [len(sizes) * k // n_chunks - 1 for k in range(1, n_chunks)]

    with pytest.raises(ExerciseError, match="running total") as info:
        check_balanced_cuts(by_count)
    assert "[" not in str(info.value).split(":", 2)[-1]  # no list of expected cuts


def test_wrong_cut_counts_are_explained():
    with pytest.raises(ExerciseError, match="2 chunks need 1 cuts, you gave 0"):
        check_balanced_cuts(lambda sizes, n: [])
