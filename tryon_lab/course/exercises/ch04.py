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

``greedy_allocation(layers, budget) -> {name: bits}``: the mixed-bit allocator. ``layers`` maps a
layer's name to ``{"elements": n, "noise": {bits: noise power}}`` (the output noise power that
palettizing that layer alone at that width adds; 16 bits, fp16, adds none). Every layer starts at
16; repeatedly, among the moves that take one layer to its next narrower width, the one adding the
least noise per bit saved (noise added / (bits saved x elements)) that keeps the summed noise within
``budget`` is made; ties go to the layer whose name sorts first; it stops when no move fits. The
judge checks the budget, then compares with the rule and names the typical mistakes (cost without
the layer's size or without the bits saved, stopping at the first move that does not fit, a move
that overshoots the budget) without quoting the expected allocation.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np

from tryon_lab.course.exercises.core import Case, describe, run_exercise

PALETTE_EXERCISE = "kmeans_palette"
CUTS_EXERCISE = "balanced_cuts"
ALLOCATION_EXERCISE = "greedy_allocation"
FP16 = 16


def exercise_kmeans_palette(fn) -> bool:
    """Test the student's ``kmeans_palette`` on fixed weight tensors; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(PALETTE_EXERCISE, fn, palette_cases(), judge_palette)


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


def exercise_balanced_cuts(fn) -> bool:
    """Test the student's ``balanced_cuts`` on fixed layer-size lists; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(CUTS_EXERCISE, fn, cut_cases(), judge_cuts)


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


# --- exercise 3: the greedy mixed-bit allocator ---------------------------------------------------------


def exercise_greedy_allocation(fn) -> bool:
    """Test the student's ``greedy_allocation(layers, budget)`` on fixed layer tables; return True or
    raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(ALLOCATION_EXERCISE, fn, allocation_cases(), judge_allocation)


def _layer(elements: int, gain: float, widths=(8, 6, 4, 3, 2)) -> dict:
    # k-means noise falls about 4x per bit: the noise a layer adds at b bits ~ gain * 4**-b
    return {"elements": elements, "noise": {b: gain * 4.0 ** -b for b in widths}}


@lru_cache(maxsize=1)
def allocation_cases() -> tuple[Case, ...]:
    """Three layers by hand; a U-Net-like table of twelve layers of mixed sizes and sensitivities at two
    budgets; layers offering different widths; a zero budget; a budget that fits everything."""
    rng = np.random.default_rng(8)
    names = [f"{kind}_{i}" for i, kind in enumerate(["conv_in", "down0", "down0_attn", "down1", "down1_attn", "mid",
                                                      "mid_attn", "up1", "up1_attn", "up0", "up0_attn", "conv_out"])]
    unet = {name: _layer(int(rng.choice([2304, 9216, 36864, 147456, 589824])), float(10 ** rng.uniform(-1, 2)))
            for name in names}
    unet_noise = sum(layer["noise"][4] for layer in unet.values())
    three = {"big": _layer(100_000, 1.0), "small": _layer(1_000, 30.0), "medium": _layer(20_000, 5.0)}
    uneven = {"a": {"elements": 5000, "noise": {8: 0.0001, 6: 0.001, 4: 0.05}},
              "b": {"elements": 5000, "noise": {8: 0.0004, 4: 0.004, 2: 0.3}},
              "c": {"elements": 60000, "noise": {6: 0.002, 3: 0.02}}}
    return (
        Case("three layers (big and robust, small and sensitive, in between)", (three, 0.01)),
        Case("twelve U-Net-like layers, budget = their noise at 4 bits", (unet, unet_noise)),
        Case("the same twelve layers, a tighter budget", (unet, unet_noise / 8)),
        Case("layers offering different widths", (uneven, 0.03)),
        Case("a budget of zero (nothing may be palettized)", (three, 0.0)),
        Case("a budget every width fits in", (three, 1e9)),
    )


def reference_allocation(layers: dict, budget: float, mistake: str | None = None) -> dict[str, int]:
    """The greedy rule, or the rule with one of ``ALLOCATION_MISTAKES`` made on purpose."""
    allocation = {name: FP16 for name in layers}

    def noise(name: str, bits: int) -> float:
        return 0.0 if bits == FP16 else layers[name]["noise"][bits]

    total = 0.0
    while True:
        moves = []
        for name, layer in layers.items():
            narrower = [b for b in layer["noise"] if b < allocation[name]]
            if not narrower:
                continue
            bits = max(narrower)
            added = noise(name, bits) - noise(name, allocation[name])
            saved = allocation[name] - bits
            cost = {"ignores size": added / saved, "ignores bits saved": added / layer["elements"],
                    "noise only": added}.get(mistake, added / (saved * layer["elements"]))
            moves.append((cost, name, bits, added))
        made = False
        for _, name, bits, added in sorted(moves):
            if total + added <= budget * (1 + 1e-12) or mistake == "overshoots":
                allocation[name], total, made = bits, total + added, True
                break
            if mistake == "stops at the first misfit":
                return allocation
        if not made or (mistake == "overshoots" and total > budget):
            return allocation


ALLOCATION_MISTAKES = {
    "ignores size": "your allocation is what the rule gives when a move's cost ignores the layer's size; "
                    "the cost is noise added per bit saved over all of the layer's elements",
    "ignores bits saved": "your allocation is what the rule gives when a move's cost ignores how many bits it "
                          "saves per element (8 -> 6 saves two, 4 -> 3 only one)",
    "noise only": "your allocation is what the rule gives when moves are ranked by the noise they add alone; "
                  "rank them by noise added per bit saved (bits saved x elements)",
    "stops at the first misfit": "your allocation stops as soon as the cheapest move does not fit the budget; "
                                 "a dearer move may still fit, so try the moves in order of cost",
}


def judge_allocation(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the greedy allocation of ``case``, or None."""
    layers, budget = case.args
    if not isinstance(result, dict):
        return f"expected a dict {{layer name: bits}}, got {describe(result)}"
    if set(result) != set(layers):
        missing, extra = sorted(set(layers) - set(result)), sorted(set(result) - set(layers))
        return f"expected one width per layer; missing {missing}, unknown {extra}"
    for name, bits in result.items():
        if not isinstance(bits, numbers.Integral) or (bits != FP16 and bits not in layers[name]["noise"]):
            return f"layer {name!r} gets {bits!r} bits, which is neither 16 nor one of its widths {sorted(layers[name]['noise'])}"
    total = sum(layers[name]["noise"][bits] for name, bits in result.items() if bits != FP16)
    if total > budget * (1 + 1e-9):
        return (f"your allocation adds {total / budget if budget else float('inf'):.3g} times the noise budget; "
                "make a move only when the summed noise stays within it")
    right = reference_allocation(layers, budget)
    if dict(result) == right:
        return None
    for mistake, message in ALLOCATION_MISTAKES.items():
        if dict(result) == reference_allocation(layers, budget, mistake):
            return message
    spent = sum(layers[name]["elements"] * bits for name, bits in result.items())
    best = sum(layers[name]["elements"] * bits for name, bits in right.items())
    if spent > best:
        return ("your allocation stays within the budget but stops while some layer could still go narrower "
                "(keep making moves until none fits)")
    return ("your allocation differs from the greedy rule's: start every layer at 16 bits, and at each round "
            "make the cheapest move that fits (noise added per bit saved per element; ties by layer name)")
