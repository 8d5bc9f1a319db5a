"""Mixed-bit palettization: each layer gets its own width, chosen from measured sensitivity.

``layer_sensitivity`` measures the output PSNR when only one layer is palettized (for each width);
``allocate_bits`` then picks widths on the rule that independent errors add in power, so a PSNR
target is a noise budget spent where bits buy the most (or a size target is met with the least
noise); ``mixed_bit_palettize`` applies the allocation, measures the real program and tightens
the target until it holds. This is Apple's mixed-bit recipe with a greedy allocator in place of
a threshold sweep.
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
from tryon_lab.export.palettize import PALETTE_BITS, PaletteSettings, palettize, palettized_weights


@dataclass(frozen=True)
class Sensitivity:
    """One layer's ``psnr`` (dB, per bit width) of the program output when only it is palettized."""

    name: str
    elements: int
    psnr: dict[int, float] = field(default_factory=dict)


def layer_sensitivity(model, inputs: Mapping[str, np.ndarray], bits: Sequence[int] = PALETTE_BITS,
                      settings: PaletteSettings = PaletteSettings(), output: str | None = None,
                      palettized: Mapping[int, Any] | None = None) -> list[Sensitivity]:
    """Return, for every weight palettization would touch, the PSNR of ``output`` (default: the first
    output) against the uncompressed program when only that weight is palettized at each of ``bits``.

    The program is palettized once per width (k-means runs per tensor, so the result for one weight
    does not depend on the others); the executor then swaps one decompressed weight in at a time.
    ``palettized`` ({bits: program}) supplies programs already palettized with these ``settings``.
    """
    base = MILExecutor(model)
    output = output or base.output_names[0]
    reference = base.predict(inputs)[output]
    palettized = palettized or {}
    compressed = {b: palettized_weights(palettized[b] if b in palettized else palettize(model, b, settings))
                  for b in bits}
    names = sorted(set().union(*(c.keys() for c in compressed.values())))
    results = []
    for name in names:
        scores = {}
        for b, weights in compressed.items():
            if name in weights:
                scores[b] = signal_psnr(base.predict(inputs, weights={name: weights[name]})[output], reference)
        results.append(Sensitivity(name, int(base.weight(name).numel()), scores))
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
