"""The same components as ExecuTorch programs (``.pte``) for the XNNPACK CPU backend, Android and iOS.

``export_pte`` captures a component with ``torch.export``, optionally quantizes it (int8 weights
per output channel with activations quantized on the fly, XNNPACK's "dynamic" scheme for linear
and conv layers, through the PT2E flow), lowers every supported part to XNNPACK and writes the
program; an int8 program lowers its quantized layers first, then the float rest (see ``_partitioners``). ``PteRunner`` runs
it with the ExecuTorch runtime behind the ``predict`` API.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from tryon_lab.export.contract import Component, ComponentSpec

QUANTIZATIONS = ("none", "int8")


def _examples(spec: ComponentSpec, inputs: Mapping[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(inputs[t.name])) for t in spec.inputs)


def export_pte(component: Component, inputs: Mapping[str, np.ndarray], path: str | Path, quantization: str = "none") -> Path:
    """Write ``component`` as an XNNPACK-delegated ``.pte`` at ``path`` (``quantization``: none or int8)."""
    from executorch.exir import to_edge_transform_and_lower

    from tryon_lab.export.errors import ExportInputError

    if quantization not in QUANTIZATIONS:
        raise ExportInputError(f"ExecuTorch quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    examples = _examples(component.spec, inputs)
    module = component.module.eval()
    with torch.no_grad():
        exported = torch.export.export(module, examples)
        if quantization == "int8":
            exported = torch.export.export(_quantize_int8(exported, examples), examples)
        program = to_edge_transform_and_lower(exported, partitioner=_partitioners(quantization)).to_executorch()
    path = Path(path)
    path.write_bytes(program.buffer)
    return path


def _partitioners(quantization: str) -> list:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

    if quantization == "none":
        return [XnnpackPartitioner()]
    # The dynamically quantized convs and linears are lowered in partitions of their own first: in one
    # partition with the float ops, ExecuTorch 1.5.1's channels-last pass walks a quantized conv's input
    # back through the group norms' (B, C, H*W) reshapes and fails ("required rank 4 tensor to use
    # channels_last format"). The float rest then lowers in large partitions, as in an fp32 program
    # (one partition per operator also lowers, at about twice the export time and a larger program).
    return [XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]


def _quantize_int8(exported, examples: tuple[torch.Tensor, ...]) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    prepared = prepare_pt2e(exported.module(), quantizer)
    prepared(*examples)  # dynamic activations need no calibration, but observers must see one call
    return convert_pt2e(prepared)


class PteRunner:
    """Run a ``.pte`` with the ExecuTorch runtime: ``predict({input: array}) -> {output: array}``."""

    def __init__(self, path: str | Path, spec: ComponentSpec) -> None:
        from executorch.runtime import Runtime

        self.spec = spec
        self.method = Runtime.get().load_program(Path(path)).load_method("forward")

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the program's outputs for ``inputs`` (contract names and shapes)."""
        outputs = self.method.execute(list(_examples(self.spec, inputs)))
        return {t.name: np.asarray(o, dtype=np.float32) for t, o in zip(self.spec.outputs, outputs)}
