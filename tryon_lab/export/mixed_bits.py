"""Mixed-bit palettization: each layer gets its own width, chosen from measured sensitivity.

``layer_sensitivity`` estimates, for every weight and every width of ``MIXED_BITS`` (2, 3, 4, 6
and 8 bits), the output PSNR when only that weight is palettized: the program runs once per
weight with it palettized at ``probe_bits``, which measures how strongly the weight's error
reaches the output (its *gain*); a weight's error at any other width is its own k-means error
(``kmeans_1d``, seconds for a whole U-Net), and the output noise scales with it. ``allocate_bits``
then picks widths on the rule that independent errors add in power, so a PSNR target is a noise
budget spent where bits buy the most (or a size target is met with the least noise);
``mixed_bit_palettize`` applies the allocation with coremltools' k-means, measures the real
program and tightens the target until it holds. This is Apple's mixed-bit recipe with a greedy
allocator in place of a threshold sweep. Calibrate on other inputs than those you report on: the
allocation is tuned to its inputs, so a PSNR measured on them is optimistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tryon_lab.export.compare import signal_psnr
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.mil import MILExecutor
from tryon_lab.export.palettize import PaletteSettings

MIXED_BITS = (8, 6, 4, 3, 2)  # the widths a layer may get (coremltools palettizes 1, 2, 3, 4, 6 and 8 bits)
PROBE_BITS = 4  # the width each weight is palettized at to measure its gain
KMEANS_ITERATIONS = 20


@dataclass(frozen=True)
class Sensitivity:
    """One layer's ``psnr`` (dB, per bit width) of the program output when only it is palettized."""

    name: str
    elements: int
    psnr: dict[int, float] = field(default_factory=dict)


def kmeans_1d(values: np.ndarray, nbits: int, iterations: int = KMEANS_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of 1-D ``values`` into at most 2**``nbits`` centres, started at evenly spaced
    quantiles; returns (sorted centres, index of each value's centre). Sorted values make each
    iteration a search and a cumulative sum, so a U-Net's worth of palettes takes seconds."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    k = min(2 ** nbits, len(np.unique(ordered)))
    centres = np.unique(np.quantile(ordered, (np.arange(k) + 0.5) / k))
    sums = np.concatenate([[0.0], np.cumsum(ordered)])
    for _ in range(iterations):
        edges = np.searchsorted(ordered, (centres[1:] + centres[:-1]) / 2)  # first value of each next cluster
        starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(ordered)]])
        counts = ends - starts
        moved = np.where(counts > 0, (sums[ends] - sums[starts]) / np.maximum(counts, 1), centres)
        if np.array_equal(moved, centres):
            break
        centres = np.unique(moved)
    indices = np.empty(len(flat), dtype=np.int64)
    indices[order] = np.searchsorted((centres[1:] + centres[:-1]) / 2, ordered)
    return centres, indices.reshape(np.shape(values))


def palettizable_weights(model, settings: PaletteSettings = PaletteSettings()) -> dict[str, int]:
    """{weight op name: output channels per palette} of the weights palettization touches: float
    weights of 2 or more dimensions above ``settings.weight_threshold`` elements, embedding tables
    (read by ``gather``) aside; per tensor, one palette holds every channel."""
    from tryon_lab.export.mil import load_program

    found = {}
    for op in load_program(model).functions["main"].operations:
        value = op.outputs[0].val if op.op_type == "const" else None
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.ndim < 2 \
                or value.size <= settings.weight_threshold or any(c.op_type == "gather" for c in op.outputs[0].child_ops):
            continue
        channels = value.shape[0]
        found[op.name] = math.gcd(channels, settings.group_size) if settings.granularity == "per_grouped_channel" \
            else channels
    return found


def palettized_copy(weight: np.ndarray, nbits: int, group: int) -> np.ndarray:
    """``weight`` with every ``group`` output channels replaced by their k-means palette values
    (``kmeans_1d``): what a palettized program computes with, to within the k-means' difference."""
    weight = np.asarray(weight, dtype=np.float32)
    out = np.empty_like(weight)
    for start in range(0, weight.shape[0], group):
        block = weight[start:start + group]
        centres, indices = kmeans_1d(block, nbits)
        out[start:start + group] = centres[indices]
    return out


def layer_sensitivity(model, inputs: Mapping[str, np.ndarray], bits: Sequence[int] = MIXED_BITS,
                      settings: PaletteSettings = PaletteSettings(), output: str | None = None,
                      probe_bits: int = PROBE_BITS) -> list[Sensitivity]:
    """Return, for every weight palettization would touch, the PSNR of ``output`` (default: the first
    output) against the uncompressed program when only that weight is palettized, at each of ``bits``.

    Measured once per weight, at ``probe_bits``: the output's noise power over the weight's own
    k-means noise power is the weight's gain; at another width the predicted output noise is that
    gain times the weight's k-means noise at that width (errors this small propagate linearly).
    """
    base = MILExecutor(model)
    output = output or base.output_names[0]
    reference = base.predict(inputs)[output]
    results = []
    for name, group in palettizable_weights(model, settings).items():
        weight = base.weight(name).numpy()
        power = float(np.mean(weight.astype(np.float64) ** 2)) or 1.0
        noise = {b: float(np.mean((palettized_copy(weight, b, group) - weight) ** 2)) / power
                 for b in sorted(set(bits) | {probe_bits})}
        probe = palettized_copy(weight, probe_bits, group)
        measured = _noise(signal_psnr(base.predict(inputs, weights={name: probe})[output], reference))
        gain = measured / noise[probe_bits] if noise[probe_bits] > 0 else 0.0
        scores = {b: (math.inf if gain * noise[b] == 0 else -10 * math.log10(gain * noise[b])) for b in bits}
        results.append(Sensitivity(name, int(weight.size), scores))
    return results


def predicted_psnr(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int], base_psnr: float = math.inf) -> float:
    """PSNR predicted for ``allocation`` ({name: bits}, 16 = uncompressed) if the layers' errors add in power.

    ``base_psnr`` is the uncompressed program's own PSNR against the reference (fp16 rounding).
    """
    noise = _noise(base_psnr) + sum(_noise(s.psnr[allocation[s.name]]) for s in sensitivities
                                    if allocation.get(s.name, 16) != 16)
    return math.inf if noise == 0 else -10 * math.log10(noise)


def _noise(psnr: float) -> float:
    """Noise power relative to the peak's for a PSNR (0 for a perfect copy, inf for a broken one)."""
    return 0.0 if psnr == math.inf else math.inf if psnr == -math.inf else 10 ** (-psnr / 10)


def average_bits(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int]) -> float:
    """Bits per element over the layers in ``sensitivities`` under ``allocation``."""
    total = sum(s.elements for s in sensitivities)
    return sum(allocation.get(s.name, 16) * s.elements for s in sensitivities) / max(total, 1)


def allocate_bits(sensitivities: Sequence[Sensitivity], target_psnr: float | None = None,
                  target_bits: float | None = None, base_psnr: float = math.inf) -> dict[str, int]:
    """Return ``{name: bits}``: the fewest bits whose predicted PSNR stays >= ``target_psnr``, or the
    best predicted PSNR at <= ``target_bits`` average bits (give exactly one target).

    Greedy: every layer starts uncompressed (16); repeatedly lower the layer whose next narrower
    width adds the least noise power per bit saved, while the target allows.
    """
    if (target_psnr is None) == (target_bits is None):
        raise ExportInputError("give exactly one of target_psnr and target_bits")
    allocation = {s.name: 16 for s in sensitivities}

    def narrower(s: Sensitivity) -> int | None:
        options = sorted((b for b in s.psnr if b < allocation[s.name]), reverse=True)
        return options[0] if options else None

    def noise(s: Sensitivity, bits: int) -> float:
        return 0.0 if bits == 16 else _noise(s.psnr[bits])

    while True:
        if target_bits is not None and average_bits(sensitivities, allocation) <= target_bits:
            return allocation
        moves = []
        for s in sensitivities:
            bits = narrower(s)
            if bits is not None:
                cost = max(noise(s, bits) - noise(s, allocation[s.name]), 0.0)
                moves.append((cost / ((allocation[s.name] - bits) * s.elements), s.name, bits))
        if not moves:
            return allocation
        for _, name, bits in sorted(moves):
            trial = {**allocation, name: bits}
            if target_psnr is None or predicted_psnr(sensitivities, trial, base_psnr) >= target_psnr:
                allocation = trial
                break
        else:
            return allocation


@dataclass(frozen=True)
class MixedBitResult:
    """A mixed-bit palettized ``model``, its ``allocation``, measured ``psnr`` and the ``sensitivities``."""

    model: Any
    allocation: dict[str, int]
    psnr: float
    sensitivities: list[Sensitivity]


def palettize_allocation(model, allocation: Mapping[str, int], settings: PaletteSettings = PaletteSettings()):
    """Return ``model`` k-means palettized by coremltools with ``allocation`` ({weight op name: bits},
    16 = left fp16, unnamed weights left fp16), at any width coremltools offers (``MIXED_BITS``
    included); a weight whose output channels ``settings.group_size`` does not divide gets the
    largest group size that does (as ``palettize`` does)."""
    import coremltools.optimize.coreml as cto

    from tryon_lab.export.mil import drop_program

    groups = palettizable_weights(model, settings) if settings.granularity == "per_grouped_channel" else {}
    configs = {}
    for name, nbits in allocation.items():
        if nbits == 16:
            configs[name] = None
            continue
        if nbits not in MIXED_BITS:
            raise ExportInputError(f"palettization bits must be one of {MIXED_BITS} (or 16), got {nbits!r} for {name}")
        configs[name] = cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, granularity=settings.granularity,
                                               group_size=groups.get(name, settings.group_size),
                                               weight_threshold=settings.weight_threshold)
    optimization = cto.OptimizationConfig(global_config=None, op_name_configs=configs, op_type_configs={"gather": None})
    return drop_program(cto.palettize_weights(model, optimization))


def mixed_bit_palettize(model, inputs: Mapping[str, np.ndarray], reference: np.ndarray, target_psnr: float | None = None,
                        target_bits: float | None = None, settings: PaletteSettings = PaletteSettings(),
                        bits: Sequence[int] = MIXED_BITS, attempts: int = 3,
                        sensitivities: list[Sensitivity] | None = None) -> MixedBitResult:
    """Palettize ``model`` with per-layer widths (from ``bits``) meeting ``target_psnr`` (dB of the first
    output against ``reference``, e.g. the fp32 PyTorch output on ``inputs``) or ``target_bits``
    (average over the palettized layers). ``inputs`` are the *calibration* inputs: the allocation is
    checked on the compressed program run on them; when it falls short of ``target_psnr`` the target
    is raised by the shortfall and allocation repeats (``attempts`` times). Report quality on other
    inputs. ``sensitivities`` from an earlier ``layer_sensitivity`` call (same settings) skip
    measuring them again.
    """
    base = MILExecutor(model)
    output = base.output_names[0]
    base_psnr = signal_psnr(base.predict(inputs)[output], reference)
    if sensitivities is None:
        sensitivities = layer_sensitivity(model, inputs, bits, settings, output)
    goal = target_psnr
    for _ in range(attempts):
        allocation = allocate_bits(sensitivities, goal, target_bits, base_psnr)
        compressed = palettize_allocation(model, allocation, settings)
        psnr = signal_psnr(MILExecutor(compressed).predict(inputs)[output], reference)
        if target_psnr is None or psnr >= target_psnr:
            break
        goal += target_psnr - psnr + 0.5
    return MixedBitResult(compressed, allocation, psnr, sensitivities)


def allocation_table(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int]) -> list[list[Any]]:
    """Rows [layer, elements, width, predicted PSNR at that width (dB, this layer alone)] in program order."""
    return [[s.name, s.elements, allocation.get(s.name, 16),
             "-" if allocation.get(s.name, 16) == 16 else round(s.psnr[allocation[s.name]], 1)]
            for s in sensitivities]


def allocation_figure(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int]):
    """The width each layer got, one bar per layer in program order (bar width ~ its share of the
    weights), coloured by width: where the allocation spent and saved bits."""
    from tryon_lab.plotting import NotebookFigure

    colours = {16: "#7f7f7f", 8: "#1f77b4", 6: "#2ca02c", 4: "#d62728", 3: "#ff7f0e", 2: "#9467bd"}
    fig = NotebookFigure(figsize=(9, 3))
    ax = fig.subplots()
    total = sum(s.elements for s in sensitivities) or 1
    left = 0.0
    for s in sensitivities:
        width = s.elements / total
        bits = allocation.get(s.name, 16)
        ax.bar(left, bits, width=width, align="edge", color=colours.get(bits, "k"), edgecolor="white", linewidth=0.2)
        left += width
    for bits in sorted(set(allocation.values()), reverse=True):
        ax.bar([], [], color=colours.get(bits, "k"), label="fp16" if bits == 16 else f"{bits} bits")
    ax.set_xlim(0, 1)
    ax.set_xlabel("layers in program order (bar width: share of the weights)")
    ax.set_ylabel("bits per weight")
    ax.legend(fontsize=8, ncol=6)
    fig.tight_layout()
    return fig
