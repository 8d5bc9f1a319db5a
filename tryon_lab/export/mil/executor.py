"""``MILExecutor``: run one ML Program's operations in order on the CPU, a torch kernel each."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tryon_lab.export.errors import UnsupportedOpError
from tryon_lab.export.mil.kernels import KERNELS, Inputs, Kernel
from tryon_lab.export.mil.program import load_program
from tryon_lab.export.mil.weights import decompress, feeds_only_constexpr, to_torch, weight_to_torch, widened


def _is_fp16(var) -> bool:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype if types.is_tensor(var.sym_type) else var.sym_type
    return dtype == types.fp16


class MILExecutor:
    """Run one ML Program with torch kernels: ``predict({input: array}) -> {output: array}``."""

    def __init__(self, model: Any, name: str = "") -> None:
        self.name = name or (Path(model).stem if isinstance(model, (str, Path)) else "program")
        program = load_program(model)
        function = program.functions["main"]
        self.input_vars = dict(function.inputs)
        self.output_names = [var.name for var in function.outputs]
        self.constants: dict[str, Any] = {}  # var name -> value, palettized weights decompressed
        self.weight_vars: dict[str, str] = {}  # weight op name (what palettization configs name) -> var name
        self.steps: list[tuple[Kernel, Any, list[tuple[str, bool]]]] = []
        for op in function.operations:
            if op.op_type == "const" or op.op_type.startswith("constexpr_"):
                if feeds_only_constexpr(op):
                    continue  # a compressed weight's parts (indices, palettes), read by its constexpr op
                value = op.outputs[0].val if op.op_type == "const" else decompress(op)
                self.constants[op.outputs[0].name] = weight_to_torch(value)
                self.weight_vars[op.name] = op.outputs[0].name
            elif op.op_type in KERNELS:
                self.steps.append((KERNELS[op.op_type], op, [(v.name, _is_fp16(v)) for v in op.outputs]))
            else:
                raise UnsupportedOpError(op.op_type, op.name, self.name)
        self._release = self._release_plan()
        self.peak_bytes = 0  # the most bytes of inputs and intermediate values the last ``predict`` held at once

    def _release_plan(self) -> list[tuple[str, ...]]:
        """Per step, the values no later step reads (outputs and weights aside): dropped after it runs."""
        last: dict[str, int] = {}
        for index, (_, op, outputs) in enumerate(self.steps):
            for name, _ in outputs:
                last[name] = index  # a value nothing reads goes as soon as it is made
            for var in _input_vars(op):
                last[var.name] = index
        keep = set(self.output_names) | set(self.constants)
        release: list[list[str]] = [[] for _ in self.steps]
        for name, index in last.items():
            if name not in keep:
                release[index].append(name)
        return [tuple(names) for names in release]

    def weight(self, op_name: str):
        """The (decompressed) value of the weight made by op ``op_name``, as a torch tensor (fp32 for floats)."""
        return widened(self.constants[self.weight_vars[op_name]])

    @property
    def input_names(self) -> list[str]:
        """The program's input names, in order."""
        return list(self.input_vars)

    @property
    def op_types(self) -> dict[str, int]:
        """How many operations of each type the program runs (weights not counted)."""
        counts: dict[str, int] = {}
        for _, op, _ in self.steps:
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
        return dict(sorted(counts.items()))

    def predict(self, inputs: Mapping[str, np.ndarray], weights: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Run the program on ``inputs``; ``weights`` ({weight op name: value}) replaces weights for this call."""
        missing = [name for name in self.input_vars if name not in inputs]
        if missing:
            raise KeyError(f"{self.name}: missing inputs {missing}")
        env = dict(self.constants)
        if weights:
            env.update({self.weight_vars[name]: to_torch(value) for name, value in weights.items()})
        for name, var in self.input_vars.items():
            env[name] = _round(to_torch(inputs[name]), _is_fp16(var))

        def value(var):
            return widened(env[var.name])

        held = peak = sum(_nbytes(env[name]) for name in self.input_vars)  # bytes of the non-weight values in env
        with torch.no_grad():
            for (run, op, outputs), release in zip(self.steps, self._release):
                result = run(op, Inputs(op, value))
                results = result if isinstance(result, tuple) else (result,)
                for (name, fp16), tensor in zip(outputs, results):
                    env[name] = _round(tensor, fp16)
                    held += _nbytes(env[name])
                peak = max(peak, held)
                for name in release:
                    held -= _nbytes(env.pop(name))
                del result, results
        self.peak_bytes = peak
        return {name: _to_numpy(env[name]) for name in self.output_names}


def _round(tensor, fp16: bool):
    # fp16 programs keep fp16 values: round every fp16 result, as the device stores it.
    if fp16 and isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
        return tensor.to(torch.float16).to(torch.float32)
    return tensor


def _input_vars(op) -> list:
    """The variables ``op`` reads (list-valued inputs such as concat's ``values`` flattened)."""
    found = []
    for var in op.inputs.values():
        found.extend(var if isinstance(var, (list, tuple)) else (var,))
    return found


def _nbytes(value) -> int:
    return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0


def _to_numpy(tensor) -> np.ndarray:
    array = tensor.numpy()
    return array.astype(np.int32) if array.dtype == np.int64 else array
