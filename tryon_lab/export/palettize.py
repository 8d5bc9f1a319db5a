"""Palettization of an ML Program: k-means lookup tables of 8, 6 or 4 bits, uniform or mixed.

A palettized weight stores, per element, an n-bit index into a table of 2**n fp16 values (the
centroids); per-grouped-channel palettization (iOS18) keeps one table per group of output
channels. Mixed-bit palettization gives each layer its own bit width: ``layer_sensitivity``
measures the output PSNR when only that layer is compressed, ``allocate_bits`` then picks widths
on the rule that independent errors add in power, and ``mixed_bit_palettize`` checks the result on
the real program and tightens the target until it holds. Bits are always read back from the
compressed program (``weight_report``), never taken from the request.
Post-training palettization uses ``coremltools.optimize.coreml``; ``finetune_palettized`` is the
training-time alternative (``coremltools.optimize.torch`` DKM), converted like any module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tryon_lab.export.compare import signal_psnr
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.mil import MILExecutor, load_program

PALETTE_BITS = (8, 6, 4)
GRANULARITIES = ("per_tensor", "per_grouped_channel")
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller tensors (norms, biases) stay fp16
PALETTIZED_SUFFIX = "_palettized"  # coremltools names a palettized weight <const name>_palettized


@dataclass(frozen=True)
class PaletteSettings:
    """How to palettize: ``granularity`` (per_tensor or per_grouped_channel), ``group_size`` output
    channels per table, and ``weight_threshold`` (tensors with fewer elements stay fp16)."""

    granularity: str = "per_grouped_channel"
    group_size: int = 16
    weight_threshold: int = WEIGHT_THRESHOLD

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ExportInputError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.group_size < 1 or self.weight_threshold < 0:
            raise ExportInputError("group_size must be >= 1 and weight_threshold >= 0")


def _check_bits(nbits: int) -> int:
    if nbits not in PALETTE_BITS:
        raise ExportInputError(f"palettization bits must be one of {PALETTE_BITS}, got {nbits!r}")
    return nbits


def palettize(model, nbits: int | Mapping[str, int], settings: PaletteSettings = PaletteSettings()):
    """Return a k-means palettized copy of ML Program ``model``.

    ``nbits`` is one width for every weight above the threshold, or ``{weight name: bits}``
    (16 = leave that weight fp16; unnamed weights stay fp16). Embedding tables (``gather``) are
    never palettized.
    """
    import coremltools.optimize.coreml as cto

    def config(bits: int):
        return cto.OpPalettizerConfig(mode="kmeans", nbits=_check_bits(bits), granularity=settings.granularity,
                                      group_size=settings.group_size, weight_threshold=settings.weight_threshold)

    if isinstance(nbits, Mapping):
        names = {name: (None if bits == 16 else config(bits)) for name, bits in nbits.items()}
        optimization = cto.OptimizationConfig(global_config=None, op_name_configs=names, op_type_configs={"gather": None})
    else:
        optimization = cto.OptimizationConfig(global_config=config(nbits), op_type_configs={"gather": None})
    return cto.palettize_weights(model, optimization)


@dataclass(frozen=True)
class WeightInfo:
    """One stored weight: its ``name``, ``elements``, ``bits`` per element and stored ``bytes``."""

    name: str
    elements: int
    bits: int
    bytes: int


@dataclass(frozen=True)
class WeightReport:
    """Every float weight of a program, read from the program itself."""

    weights: tuple[WeightInfo, ...]

    @property
    def elements(self) -> int:
        """Total weight elements."""
        return sum(w.elements for w in self.weights)

    @property
    def bytes(self) -> int:
        """Total stored weight bytes (indices, tables and uncompressed tensors)."""
        return sum(w.bytes for w in self.weights)

    @property
    def average_bits(self) -> float:
        """Bits per weight element over all weights (uncompressed fp16 ones count 16)."""
        return sum(w.bits * w.elements for w in self.weights) / max(self.elements, 1)

    @property
    def histogram(self) -> dict[int, int]:
        """Weight elements per bit width, e.g. ``{6: 190000, 16: 3000}``."""
        counts: dict[int, int] = {}
        for w in self.weights:
            counts[w.bits] = counts.get(w.bits, 0) + w.elements
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        """Return the manifest's ``bits`` entry: average, histogram and totals."""
        return {"average": round(self.average_bits, 4), "histogram": {str(k): v for k, v in self.histogram.items()},
                "weight_elements": self.elements, "weight_bytes": self.bytes}


def _bitwidth(dtype) -> int:
    from coremltools.converters.mil.mil import types

    return int(re.search(r"\d+$", types.builtin_to_string(dtype)).group())  # "uint6" -> 6, "int8" -> 8


def weight_report(model) -> WeightReport:
    """Read every float weight of ML Program ``model`` (MLModel, path or pymil Program): bits and bytes."""
    from coremltools.converters.mil.mil import Program, types

    program = model if isinstance(model, Program) else load_program(model)
    weights = []
    for op in program.functions["main"].operations:
        out = op.outputs[0]
        if op.op_type == "const":
            value = out.val
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size > 1 \
                    and not all(child.op_type.startswith("constexpr_") for child in out.child_ops):
                weights.append(WeightInfo(out.name, int(value.size), value.itemsize * 8, int(value.nbytes)))
        elif op.op_type == "constexpr_lut_to_dense":
            lut = op.lut.val
            entries = lut.shape[0] if lut.ndim == 1 else lut.shape[-2]
            bits = int(round(math.log2(entries)))
            elements = int(np.prod(out.shape))
            weights.append(WeightInfo(out.name, elements, bits, math.ceil(elements * bits / 8) + int(lut.nbytes)))
        elif op.op_type.startswith("constexpr_") and types.is_tensor(out.sym_type):
            data = next(v for v in op.inputs.values() if v.op.op_type == "const" and v.val is not None and v.val.ndim > 0)
            bits = _bitwidth(data.dtype)
            elements = int(np.prod(out.shape))
            weights.append(WeightInfo(out.name, elements, bits, math.ceil(elements * bits / 8)))
    return WeightReport(tuple(weights))


@dataclass(frozen=True)
class Sensitivity:
    """One layer's ``psnr`` (dB, per bit width) of the program output when only it is palettized."""

    name: str
    elements: int
    psnr: dict[int, float] = field(default_factory=dict)


def layer_sensitivity(model, inputs: Mapping[str, np.ndarray], bits: Sequence[int] = PALETTE_BITS,
                      settings: PaletteSettings = PaletteSettings(), output: str | None = None) -> list[Sensitivity]:
    """Return, for every weight palettization would touch, the PSNR of ``output`` (default: the first
    output) against the uncompressed program when only that weight is palettized at each of ``bits``.

    The program is palettized once per width (k-means runs per tensor, so the result for one weight
    does not depend on the others); the executor then swaps one decompressed weight in at a time.
    """
    base = MILExecutor(model)
    output = output or base.output_names[0]
    reference = base.predict(inputs)[output]
    compressed = {b: palettized_weights(palettize(model, b, settings)) for b in bits}
    names = sorted(set().union(*(c.keys() for c in compressed.values())))
    results = []
    for name in names:
        scores = {}
        for b, weights in compressed.items():
            if name in weights:
                scores[b] = signal_psnr(base.predict(inputs, weights={name: weights[name]})[output], reference)
        results.append(Sensitivity(name, int(np.prod(base.constants[name].shape)), scores))
    return results


def palettized_weights(model) -> dict[str, Any]:
    """The decompressed palettized weights of ``model`` (torch tensors), keyed by the name of the
    fp16 weight each replaced."""
    executor = MILExecutor(model)
    return {name[: -len(PALETTIZED_SUFFIX)]: value for name, value in executor.constants.items()
            if name.endswith(PALETTIZED_SUFFIX)}


def predicted_psnr(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int], base_psnr: float = math.inf) -> float:
    """PSNR predicted for ``allocation`` ({name: bits}, 16 = uncompressed) if the layers' errors add in power.

    ``base_psnr`` is the uncompressed program's own PSNR against the reference (fp16 rounding).
    """
    noise = 0.0 if math.isinf(base_psnr) else 10 ** (-base_psnr / 10)
    for s in sensitivities:
        bits = allocation.get(s.name, 16)
        if bits != 16:
            noise += 10 ** (-s.psnr[bits] / 10) if math.isfinite(s.psnr[bits]) else (0.0 if s.psnr[bits] > 0 else math.inf)
    return math.inf if noise == 0 else -10 * math.log10(noise)


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
        return 0.0 if bits == 16 else 10 ** (-s.psnr[bits] / 10) if math.isfinite(s.psnr[bits]) else 0.0

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


def mixed_bit_palettize(model, inputs: Mapping[str, np.ndarray], reference: np.ndarray, target_psnr: float | None = None,
                        target_bits: float | None = None, settings: PaletteSettings = PaletteSettings(),
                        bits: Sequence[int] = PALETTE_BITS, attempts: int = 3,
                        sensitivities: list[Sensitivity] | None = None) -> MixedBitResult:
    """Palettize ``model`` with per-layer widths meeting ``target_psnr`` (dB of the first output
    against ``reference``, e.g. the fp32 PyTorch output) or ``target_bits`` (average over the
    palettized layers). The allocation is checked on the compressed program; when it falls short of
    ``target_psnr`` the target is raised by the shortfall and allocation repeats (``attempts`` times).
    ``sensitivities`` from an earlier ``layer_sensitivity`` call (same settings) skip measuring them again.
    """
    base = MILExecutor(model)
    output = base.output_names[0]
    base_psnr = signal_psnr(base.predict(inputs)[output], reference)
    if sensitivities is None:
        sensitivities = layer_sensitivity(model, inputs, bits, settings, output)
    goal = target_psnr
    for _ in range(attempts):
        allocation = allocate_bits(sensitivities, goal, target_bits, base_psnr)
        compressed = palettize(model, allocation, settings)
        psnr = signal_psnr(MILExecutor(compressed).predict(inputs)[output], reference)
        if target_psnr is None or psnr >= target_psnr:
            break
        goal += target_psnr - psnr + 0.5
    return MixedBitResult(compressed, allocation, psnr, sensitivities)


def finetune_palettized(module, make_inputs: Callable[[int], tuple], nbits: int, steps: int,
                        learning_rate: float = 1e-4, weight_threshold: int = WEIGHT_THRESHOLD):
    """Palettization-aware fine-tuning (DKM, ``coremltools.optimize.torch``) of a copy of ``module``.

    The copy learns to reproduce the original's outputs on ``make_inputs(step)`` (a tuple of input
    tensors) with its weights clustered to ``2**nbits`` values; returns the finalized copy, which
    ``coreml.convert_component`` turns into a palettized program directly.
    """
    import copy

    import torch
    from coremltools.optimize.torch.palettization import DKMPalettizer, DKMPalettizerConfig

    _check_bits(nbits)
    student = copy.deepcopy(module).train()
    config = DKMPalettizerConfig.from_dict({"global_config": {"n_bits": nbits, "weight_threshold": weight_threshold}})
    palettizer = DKMPalettizer(student, config)
    student = palettizer.prepare(inplace=True)
    optimizer = torch.optim.Adam(student.parameters(), lr=learning_rate)
    for step in range(steps):
        inputs = make_inputs(step)
        with torch.no_grad():
            target = module(*inputs)
        loss = torch.nn.functional.mse_loss(student(*inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        palettizer.step()
    return palettizer.finalize(inplace=True).eval()
