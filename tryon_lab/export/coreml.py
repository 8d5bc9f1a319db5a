"""PyTorch component -> Core ML ML Program with the contract's fixed names, shapes and dtypes.

Programs target iOS18 (grouped-channel palettization needs it) and compute in fp16 unless
measurement says otherwise: ``convert_measured`` converts in fp16, runs the program (Core ML on
macOS, the MIL executor elsewhere) against the PyTorch outputs, and when fp16 costs more than the
bar (an fp16 overflow shows up as a non-finite output, i.e. -inf dB) tries fp16 with every
normalisation's variance in fp32, then fp32. The middle step exists because GroupNorm is lowered
to square -> reduce_mean -> add -> sqrt: one activation 256 away from its group's mean squares
past fp16's 65504, while the rest of the program is fine in fp16 (the shipped VAE decoder).
Inputs and outputs stay fp32 (int32 for token ids) whatever the compute precision, so the
contract does not depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tryon_lab.export.compare import CONVERSION_MIN_PSNR, signal_psnr
from tryon_lab.export.contract import Component
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.manifest_entries import PRECISIONS  # tried in this order
from tryon_lab.export.mil import drop_program

DEPLOYMENT_TARGET = "iOS18"
VARIANCE_CHAIN = ("square", "reduce_mean", "add", "sqrt")  # a normalisation's variance, as lowered


def _producer(var):
    """The op that makes ``var``, looking through the casts the fp16 pass inserts."""
    op = getattr(var, "op", None)
    while op is not None and op.op_type == "cast":
        op = getattr(op.inputs.get("x"), "op", None)
    return op


def in_variance_chain(op) -> bool:
    """True for the ops of ``VARIANCE_CHAIN`` that compute a normalisation's variance (a ``square``
    and what follows it, each fed by the one before)."""
    types: list[str] = []
    while op is not None and len(types) < len(VARIANCE_CHAIN):
        types.append(op.op_type)
        if op.op_type == VARIANCE_CHAIN[0]:
            break
        op = _producer(op.inputs.get("x"))
    return tuple(reversed(types)) == VARIANCE_CHAIN[:len(types)]


def _compute_precision(precision: str):
    import coremltools as ct

    if precision == "float32":
        return ct.precision.FLOAT32
    if precision == "float16":
        return ct.precision.FLOAT16
    return ct.transform.FP16ComputePrecision(op_selector=lambda op: not in_variance_chain(op))


def convert_component(component: Component, inputs: Mapping[str, np.ndarray], precision: str = "float16",
                      target: str = DEPLOYMENT_TARGET):
    """Trace ``component`` on ``inputs`` (arrays in contract shapes) and return its ML Program (``MLModel``)."""
    import coremltools as ct

    if precision not in PRECISIONS:
        raise ExportInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    spec = component.spec
    examples = tuple(torch.from_numpy(np.ascontiguousarray(inputs[t.name])) for t in spec.inputs)
    with torch.no_grad():
        traced = torch.jit.trace(component.module.eval(), examples)
    model = ct.convert(
        traced,
        inputs=[ct.TensorType(name=t.name, shape=t.shape, dtype=np.int32 if t.dtype == "int32" else np.float32)
                for t in spec.inputs],
        outputs=[ct.TensorType(name=t.name, dtype=np.float32) for t in spec.outputs],
        convert_to="mlprogram",
        minimum_deployment_target=getattr(ct.target, target),
        compute_precision=_compute_precision(precision),
        skip_model_load=True,
    )
    drop_program(model)
    model.short_description = f"tryon_lab {spec.name} ({precision})"
    model.user_defined_metadata.update({"tryon_lab.component": spec.name, "tryon_lab.precision": precision})
    return model


@dataclass(frozen=True)
class Conversion:
    """A converted ``model``, the ``precision`` kept, its ``psnr`` against PyTorch and conversion ``seconds``
    (``tried``: PSNR of every precision tried, in order)."""

    model: Any
    precision: str
    psnr: float
    seconds: float
    tried: dict[str, float]


def program_psnr(model, inputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> float:
    """Lowest PSNR over the outputs of ``model`` run on ``inputs`` against ``reference`` outputs."""
    from tryon_lab.export.mil import MILExecutor

    outputs = MILExecutor(model).predict(inputs)
    return min(signal_psnr(outputs[name], value) for name, value in reference.items())


def convert_measured(component: Component, inputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                     min_psnr: float = CONVERSION_MIN_PSNR, target: str = DEPLOYMENT_TARGET) -> Conversion:
    """Convert in fp16; keep it if its outputs reach ``min_psnr`` dB against ``reference`` (PyTorch
    outputs on ``inputs``), else convert in fp32. Returns the ``Conversion`` kept."""
    tried: dict[str, float] = {}
    for precision in PRECISIONS:
        began = time.perf_counter()
        model = convert_component(component, inputs, precision, target)
        seconds = time.perf_counter() - began
        tried[precision] = program_psnr(model, inputs, reference)
        if tried[precision] >= min_psnr:
            break
    return Conversion(model, precision, tried[precision], seconds, tried)
