"""The kernel registry: ``KERNELS`` maps a MIL op type to a torch function ``(op, Inputs) -> value``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Kernel = Callable[[Any, Callable[[str], Any]], Any]
KERNELS: dict[str, Kernel] = {}


def kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    """Register ``fn(op, value)`` as the kernel of ``op_types``; ``value(name)`` reads an input."""

    def register(fn: Kernel) -> Kernel:
        for op_type in op_types:
            KERNELS[op_type] = fn
        return fn

    return register


class Inputs:
    """An op's inputs: ``t(name)`` the tensor, ``a(name, default)`` a constant attribute as Python."""

    def __init__(self, op, value) -> None:
        self.op, self._value = op, value

    def t(self, name: str):
        """The input ``name`` as a tensor (a list of tensors for a list input), or None if absent."""
        var = self.op.inputs.get(name)
        if var is None:
            return None
        if isinstance(var, (list, tuple)):
            return [self._value(v) for v in var]
        return self._value(var)

    def a(self, name: str, default: Any = None) -> Any:
        """The constant input ``name`` as a Python value, or ``default`` if absent or not constant."""
        var = self.op.inputs.get(name)
        if var is None or var.val is None:
            return default
        value = var.val
        return value.tolist() if isinstance(value, np.ndarray) else (value.item() if isinstance(value, np.generic) else value)

    def shape(self, index: int = 0) -> tuple[int, ...]:
        """The shape of output ``index``, as the program declares it."""
        return tuple(int(s) for s in self.op.outputs[index].shape)
