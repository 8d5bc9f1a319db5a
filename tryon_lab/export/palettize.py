"""Palettization of an ML Program: k-means lookup tables of 8, 6 or 4 bits.

A palettized weight stores, per element, an n-bit index into a table of 2**n fp16 values (the
centroids); per-grouped-channel palettization (iOS18) keeps one table per group of output
channels. ``palettize`` compresses with one width for every layer or a ``{layer: bits}``
allocation (see ``mixed_bits``), post-training through ``coremltools.optimize.coreml``;
``finetune_palettized`` is the training-time alternative (``coremltools.optimize.torch`` DKM),
converted like any module. Bits are always read back from the compressed program
(``weight_report``), never taken from the request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.mil import MILExecutor, drop_program, load_program

PALETTE_BITS = (8, 6, 4)
GRANULARITIES = ("per_tensor", "per_grouped_channel")
WEIGHT_THRESHOLD = 2048  # coremltools' default: smaller tensors (norms, biases) stay fp16
# One 2**bits-entry fp16 table per 32 output channels: at 16 the tables alone put the mini U-Net's
# 6-bit package over 0.40x fp16 (0.401 vs 0.396) for 0.6 dB of PSNR (benchmarks/export.py measures 16, 32, 64).
GROUP_SIZE = 32
PALETTIZED_SUFFIX = "_palettized"  # coremltools names the op of a palettized weight <const op name>_palettized


@dataclass(frozen=True)
class PaletteSettings:
    """How to palettize: ``granularity`` (per_tensor or per_grouped_channel), ``group_size`` output
    channels per table, and ``weight_threshold`` (tensors with fewer elements stay fp16)."""

    granularity: str = "per_grouped_channel"
    group_size: int = GROUP_SIZE
    weight_threshold: int = WEIGHT_THRESHOLD

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ExportInputError(f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}")
        if self.group_size < 1 or self.weight_threshold < 0:
            raise ExportInputError("group_size must be >= 1 and weight_threshold >= 0")


def _odd_group_sizes(model, settings: PaletteSettings) -> dict[str, int]:
    """``{weight name: group size}`` for the weights above the threshold (embeddings aside) whose
    output channels (axis 0, as coremltools reads conv and linear weights) ``group_size`` does not divide."""
    odd = {}
    for op in load_program(model).functions["main"].operations:
        value = op.outputs[0].val if op.op_type == "const" else None
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.ndim < 2 \
                or value.size <= settings.weight_threshold:
            continue
        if value.shape[0] % settings.group_size and all(c.op_type != "gather" for c in op.outputs[0].child_ops):
            odd[op.name] = math.gcd(value.shape[0], settings.group_size)
    return odd


def _check_bits(nbits: int) -> int:
    if nbits not in PALETTE_BITS:
        raise ExportInputError(f"palettization bits must be one of {PALETTE_BITS}, got {nbits!r}")
    return nbits


def palettize(model, nbits: int | Mapping[str, int], settings: PaletteSettings = PaletteSettings(),
              workers: int = 1):
    """Return a k-means palettized copy of ML Program ``model``.

    ``nbits`` is one width for every weight above the threshold, or ``{weight name: bits}``
    (16 = leave that weight fp16; unnamed weights stay fp16). Embedding tables (``gather``) are
    never palettized. With grouped palettes, a weight whose output channels are not a multiple of
    ``settings.group_size`` gets the largest group size that divides them (coremltools would
    otherwise leave it fp16 without an error).

    ``workers`` > 1 runs the k-means of a weight's channel groups in that many processes: the same
    palettes (each group's k-means is deterministic) in less time where k-means dominates, as in an
    SD-1.5 U-Net (about 10,000 groups of 32 channels, each a single-threaded 1-D k-means).
    """
    import coremltools.optimize.coreml as cto

    if workers < 1:
        raise ExportInputError(f"workers must be >= 1, got {workers}")

    odd = _odd_group_sizes(model, settings) if settings.granularity == "per_grouped_channel" else {}

    def config(bits: int, name: str | None = None):
        return cto.OpPalettizerConfig(mode="kmeans", nbits=_check_bits(bits), granularity=settings.granularity,
                                      group_size=odd.get(name, settings.group_size),
                                      weight_threshold=settings.weight_threshold, num_kmeans_workers=workers)

    if isinstance(nbits, Mapping):
        names = {name: (None if bits == 16 else config(bits, name)) for name, bits in nbits.items()}
        optimization = cto.OptimizationConfig(global_config=None, op_name_configs=names, op_type_configs={"gather": None})
    else:
        optimization = cto.OptimizationConfig(global_config=config(nbits), op_type_configs={"gather": None},
                                              op_name_configs={name: config(nbits, name) for name in odd})
    if workers == 1:
        return drop_program(cto.palettize_weights(model, optimization))
    with _kmeans_pool(workers):
        return drop_program(cto.palettize_weights(model, optimization))


@contextmanager
def _kmeans_pool(workers: int) -> Iterator[None]:
    """Give coremltools a pool of ``workers`` *spawned* processes for its grouped k-means, for one call.

    Left to itself coremltools forks a pool on first use and keeps it (closed, not cleared, when the
    pass ends, so the next call would fail); forked from a process that has run torch's and OpenMP's
    threads, its workers hung (the tiny U-Net, 2 workers), and they would pin the parent's memory as it
    was at the fork. Spawned workers start clean and end here.
    """
    import multiprocessing

    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    pool = multiprocessing.get_context("spawn").Pool(workers)
    palettize_weights._compress_pool = _KeptOpen(pool)  # coremltools makes its own only when this is None
    try:
        yield
    finally:
        palettize_weights._compress_pool = None
        pool.terminate()
        pool.join()


class _KeptOpen:
    """The pool as coremltools uses it (``starmap``), except that ``close`` does nothing: every
    palettize pass object closes the shared pool when it is garbage-collected (its ``__del__``),
    which can happen in the middle of a later call ("Pool not running"). ``_kmeans_pool`` ends it."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def starmap(self, *args, **kwargs):
        return self.pool.starmap(*args, **kwargs)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class WeightInfo:
    """One stored weight: the ``name`` of its op, ``elements``, ``bits`` per element and stored ``bytes``."""

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
                weights.append(WeightInfo(op.name, int(value.size), value.itemsize * 8, int(value.nbytes)))
        elif op.op_type == "constexpr_lut_to_dense":
            lut = op.lut.val
            entries = lut.shape[0] if lut.ndim == 1 else lut.shape[-2]
            bits = int(round(math.log2(entries)))
            elements = int(np.prod(out.shape))
            weights.append(WeightInfo(op.name, elements, bits, math.ceil(elements * bits / 8) + int(lut.nbytes)))
        elif op.op_type.startswith("constexpr_") and types.is_tensor(out.sym_type):
            data = next(v for v in op.inputs.values() if v.op.op_type == "const" and v.val is not None and v.val.ndim > 0)
            bits = _bitwidth(data.dtype)
            elements = int(np.prod(out.shape))
            weights.append(WeightInfo(op.name, elements, bits, math.ceil(elements * bits / 8)))
    return WeightReport(tuple(weights))


def palettized_weights(model) -> dict[str, Any]:
    """The decompressed palettized weights of ``model`` (torch tensors), keyed by the op name of the
    fp16 weight each replaced (the name ``palettize`` takes in a ``{name: bits}`` allocation)."""
    executor = MILExecutor(model)
    return {op[: -len(PALETTIZED_SUFFIX)]: executor.weight(op) for op in executor.weight_vars
            if op.endswith(PALETTIZED_SUFFIX)}


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
