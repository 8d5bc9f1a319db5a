"""Why a VAE decoder needs fp32 variance (notebook 04): where a GroupNorm's squared distances
overflow float16."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

FP16_MAX = 65504.0  # the largest finite float16


@dataclass(frozen=True)
class GroupNormPeak:
    """One GroupNorm layer's input on a real call: the largest squared distance of an activation from its
    group's mean (what the lowered ``square`` op computes), and the group variance (``reduce_mean``)."""

    name: str
    max_square: float
    max_variance: float

    @property
    def overflows_fp16(self) -> bool:
        """True when the squared distance does not fit in float16 (it becomes inf)."""
        return self.max_square > FP16_MAX


def groupnorm_peaks(module: torch.nn.Module, *args: Any) -> list[GroupNormPeak]:
    """Run ``module(*args)`` with hooks on every ``GroupNorm`` and return, largest first, what each one's
    variance computation meets: a GroupNorm is lowered to square -> reduce_mean -> add -> sqrt, and an
    fp16 program overflows where (x - group mean)^2 passes 65504 (an activation 256 from its mean)."""
    peaks: list[GroupNormPeak] = []

    def hook(name):
        def record(layer, inputs, output):
            x = inputs[0].detach().double()
            groups = x.reshape(x.shape[0], layer.num_groups, -1)
            centred = groups - groups.mean(dim=-1, keepdim=True)
            squares = centred ** 2
            peaks.append(GroupNormPeak(name, float(squares.max()), float(squares.mean(dim=-1).max())))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in module.named_modules() if isinstance(m, torch.nn.GroupNorm)]
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for handle in handles:
            handle.remove()
    return sorted(peaks, key=lambda p: -p.max_square)
