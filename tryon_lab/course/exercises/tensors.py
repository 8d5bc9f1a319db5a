"""Helpers for exercises whose answers are torch tensors (chapters 01-03): numpy inputs handed
over as tensors sharing their memory, and a judge's first look at a returned tensor."""

from __future__ import annotations

import numpy as np
import torch

from tryon_lab.course.exercises.core import describe


def as_torch(fn):
    """Wrap ``fn`` so that numpy array arguments reach it as torch tensors sharing their memory."""
    if not callable(fn):
        return fn  # let run_exercise report it

    def call(*args):
        __tracebackhide__ = True
        return fn(*(torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args))

    return call


def tensor_problem(result, shape: tuple[int, ...], what: str) -> str | None:
    """What is wrong with ``result`` as a finite float tensor of ``shape`` (``what`` names it), or None."""
    if isinstance(result, np.ndarray):
        return f"expected a torch tensor, got a numpy array of shape {result.shape}; stay in torch"
    if not isinstance(result, torch.Tensor):
        return f"expected a torch tensor, got {describe(result)}"
    if tuple(result.shape) != shape:
        return f"expected {what} of shape {shape}, got shape {tuple(result.shape)}"
    if not result.is_floating_point():
        return f"expected a float tensor, got dtype {result.dtype}"
    if not torch.isfinite(result).all():
        return "your result contains NaN or infinite values"
    return None


def max_error(a: torch.Tensor, b: np.ndarray) -> float:
    """Largest absolute difference between a tensor and an array of the same shape."""
    return float((a.detach().double() - torch.from_numpy(b).double()).abs().max())
