"""Chapter 04 exercises: right answers pass; wrong ones fail with a message that does not give the answer."""

import numpy as np
import pytest

from tryon_lab.course.exercises.ch04 import exercise_balanced_cuts, exercise_kmeans_palette
from tryon_lab.course.exercises.core import ExerciseError


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
    assert exercise_kmeans_palette(kmeans_palette)
    assert exercise_balanced_cuts(balanced_cuts)


def test_a_uniform_palette_is_not_k_means():
    def uniform(weights, nbits):
        if nbits < 1:
            raise ValueError
        lut = np.linspace(weights.min(), weights.max(), 2**nbits).astype(np.float32)
        return lut, np.abs(weights[..., None] - lut).argmin(-1)

    with pytest.raises(ExerciseError, match="not clearly below") as info:
        exercise_kmeans_palette(uniform)
    assert "lut" not in str(info.value).split(":", 2)[-1]


def test_wrong_palette_shapes_and_missing_errors_are_explained():
    with pytest.raises(ExerciseError, match="indices must be integers shaped like"):
        exercise_kmeans_palette(lambda w, n: (np.zeros(2, np.float32), np.zeros(3, int)))
    with pytest.raises(ExerciseError, match="should raise ValueError"):
        exercise_kmeans_palette(lambda w, n: kmeans_palette(w, max(n, 1)))


def test_even_cuts_by_layer_count_are_not_balanced():
    def by_count(sizes, n_chunks):
        if n_chunks > len(sizes):
            raise ValueError
        return [len(sizes) * k // n_chunks - 1 for k in range(1, n_chunks)]

    with pytest.raises(ExerciseError, match="running total") as info:
        exercise_balanced_cuts(by_count)
    assert "[" not in str(info.value).split(":", 2)[-1]  # no list of expected cuts


def test_wrong_cut_counts_are_explained():
    with pytest.raises(ExerciseError, match="2 chunks need 1 cuts, you gave 0"):
        exercise_balanced_cuts(lambda sizes, n: [])


# --- exercise 3: the greedy mixed-bit allocator -------------------------------------------------------


def greedy_allocation(layers, budget):
    allocation = {name: 16 for name in layers}
    total = 0.0
    while True:
        moves = []
        for name, layer in layers.items():
            narrower = [b for b in layer["noise"] if b < allocation[name]]
            if narrower:
                bits = max(narrower)
                added = layer["noise"][bits] - (0.0 if allocation[name] == 16 else layer["noise"][allocation[name]])
                moves.append((added / ((allocation[name] - bits) * layer["elements"]), name, bits, added))
        for _, name, bits, added in sorted(moves):
            if total + added <= budget:
                allocation[name], total = bits, total + added
                break
        else:
            return allocation


def with_the_package(layers, budget):
    """The package's allocate_bits (PSNR domain) gives the exercise's allocation."""
    import math

    from tryon_lab.export.mixed_bits import Sensitivity, allocate_bits

    sensitivities = [Sensitivity(name, layer["elements"], {b: -10 * math.log10(n) for b, n in layer["noise"].items()})
                     for name, layer in layers.items()]
    target = math.inf if budget == 0 else -10 * math.log10(budget * (1 + 1e-9))
    return allocate_bits(sensitivities, target_psnr=target)


def test_greedy_allocation_right_answers_pass(capsys):
    from tryon_lab.course.exercises.ch04 import exercise_greedy_allocation

    assert exercise_greedy_allocation(greedy_allocation)
    assert exercise_greedy_allocation(with_the_package)
    assert capsys.readouterr().out.count("✓ greedy_allocation passed") == 2


def _mistaken(mistake):
    from tryon_lab.course.exercises.ch04 import reference_allocation

    return lambda layers, budget: reference_allocation(layers, budget, mistake)


@pytest.mark.parametrize("wrong, says", [
    (_mistaken("ignores size"), "ignores the layer's size"),
    (_mistaken("noise only"), "ignores the layer's size|noise they add alone"),
    (_mistaken("ignores bits saved"), "how many bits it saves"),
    (_mistaken("stops at the first misfit"), "try the moves in order of cost"),
    (_mistaken("overshoots"), "times the noise budget"),
    (lambda layers, budget: {name: min(layer["noise"]) for name, layer in layers.items()}, "noise budget"),
    (lambda layers, budget: {name: 16 for name in layers}, "could still go narrower"),
    (lambda layers, budget: {name: 5 for name in layers}, "neither 16 nor one of its widths"),
    (lambda layers, budget: list(layers), "expected a dict"),
    (lambda layers, budget: {}, "missing"),
])
def test_greedy_allocation_mistakes_are_named(wrong, says):
    from tryon_lab.course.exercises.ch04 import exercise_greedy_allocation

    with pytest.raises(ExerciseError, match=says):
        exercise_greedy_allocation(wrong)
