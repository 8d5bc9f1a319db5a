"""Split an ML Program into N chunks of about equal weight bytes (palettize first, then chunk).

Apple splits a U-Net in two (``bisect_model``) because iOS limits how large one Neural Engine
model may be. This generalizes the same rules to N pieces:

- cuts fall between operations; each chunk takes the weights its own operations use, and the cut
  positions are chosen so cumulative (compressed) weight bytes are as close as possible to
  k/N of the total; among equally balanced positions, the one with fewest live tensors wins;
- every tensor produced before a cut and used after it crosses the cut: chunk k outputs it (fp16
  values cast to fp32, exactly) and chunk k+1 takes it as an input of the same name (cast back);
  a tensor needed two chunks later is passed *through* the middle chunk, so a runner that feeds
  chunk k+1 only chunk k's outputs plus the original inputs (Apple's Swift rule) works.
  At boundary ``b`` (after chunk b, 1-based) such a tensor is named ``<MIL var name>__b<b>``.

``chained_outputs`` / ``check_chunks`` verify that the chain reproduces the unchunked program.

For two chunks coremltools' ``ct.models.utils.bisect_model`` would do, and a test shows it splits
the weights exactly as this module does (our cut, among equally balanced ones, passes no more
tensors across). This module exists for what ``bisect_model`` does not do: more than two pieces
(a U-Net over 2 GiB, e.g. SDXL's at fp16, about 5 GB, cannot fit the 1 GiB limit in two), tensors passed through a
middle chunk so each chunk reads only its predecessor's outputs, boundary-tagged names, and
chunks returned in memory, checked against the whole program on the MIL executor (``bisect_model``
checks by prediction, which needs macOS).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.mil import MILExecutor, as_mlmodel, drop_program, load_program
from tryon_lab.export.palettize import weight_report


@dataclass(frozen=True)
class Chunk:
    """One piece: its ``model``, ``inputs`` and ``outputs`` (names, in order) and stored ``weight_bytes``."""

    model: Any
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    weight_bytes: int


def _is_weight(op) -> bool:
    return op.op_type == "const" or op.op_type.startswith("constexpr_")


@dataclass(frozen=True)
class _Plan:
    """Index facts about a program's op list, enough to place cuts and find crossing tensors."""

    ops: list
    producer: dict[str, int]  # non-weight var name -> index of the op producing it
    last_use: dict[str, int]  # non-weight var name -> index of its last consumer (len(ops) for outputs)
    weight_bytes: np.ndarray  # bytes of weights first used by op i

    @classmethod
    def of(cls, function) -> _Plan:
        ops = list(function.operations)
        index = {id(op): i for i, op in enumerate(ops)}
        outputs = {var.name for var in function.outputs}
        producer, last_use = {}, {}
        for i, op in enumerate(ops):
            if _is_weight(op):
                continue
            for var in op.outputs:
                producer[var.name] = i
                uses = [index[id(child)] for child in var.child_ops]
                last_use[var.name] = len(ops) if var.name in outputs else max(uses, default=i)
        weight_bytes = np.zeros(len(ops), dtype=np.int64)
        for op in ops:
            if op.op_type == "const" and isinstance(op.outputs[0].val, np.ndarray):
                first = cls._first_user(op, index)
                if first is not None:
                    weight_bytes[first] += op.outputs[0].val.nbytes
        return cls(ops, producer, last_use, weight_bytes)

    @staticmethod
    def _first_user(op, index) -> int | None:
        """Index of the first non-weight op that uses ``op``'s value, looking through constexpr ops."""
        users, frontier = [], list(op.outputs[0].child_ops)
        while frontier:
            child = frontier.pop()
            if _is_weight(child):
                frontier.extend(child.outputs[0].child_ops)
            else:
                users.append(index[id(child)])
        return min(users, default=None)

    def crossing(self, cut: int) -> list[str]:
        """Names of tensors produced at or before op ``cut`` and used after it, in program order."""
        return [name for name, i in self.producer.items() if i <= cut < self.last_use[name]]

    def cuts(self, n_chunks: int) -> list[int]:
        """Op indices after which to cut, balancing cumulative weight bytes (narrowest boundary on ties)."""
        last_output = min(i for name, i in self.producer.items() if self.last_use[name] == len(self.ops))
        cumulative = np.cumsum(self.weight_bytes)
        total = int(cumulative[-1])
        live = np.zeros(len(self.ops) + 1, dtype=np.int64)
        for name, i in self.producer.items():
            live[i] += 1
            live[self.last_use[name]] -= 1
        live = np.cumsum(live)  # live[c] = tensors crossing a cut after op c
        positions = [c for c in range(last_output) if not _is_weight(self.ops[c])]
        if len(positions) < n_chunks - 1:
            raise ExportInputError(f"cannot cut this program into {n_chunks} chunks: too few operations")
        chosen: list[int] = []  # indices into positions; each cut leaves room for the cuts after it
        for k in range(1, n_chunks):
            first = chosen[-1] + 1 if chosen else 0
            allowed = range(first, len(positions) - (n_chunks - 1 - k))
            target = total * k / n_chunks
            chosen.append(min(allowed, key=lambda p: (abs(cumulative[positions[p]] - target), live[positions[p]], p)))
        return [positions[p] for p in chosen]


def boundary_name(var_name: str, boundary: int) -> str:
    """The interface name of MIL tensor ``var_name`` crossing boundary ``boundary`` (1-based)."""
    return f"{var_name}__b{boundary}"


def chunk_program(model, n_chunks: int) -> list[Chunk]:
    """Split ML Program ``model`` (MLModel or path; palettize it first) into ``n_chunks`` chunks."""
    if n_chunks < 1:
        raise ExportInputError(f"chunks must be >= 1, got {n_chunks}")
    function = load_program(model).functions["main"]
    if n_chunks == 1:
        return [Chunk(model, tuple(function.inputs), tuple(v.name for v in function.outputs),
                      weight_report(model).bytes)]
    plan = _Plan.of(function)
    cuts = plan.cuts(n_chunks)
    chunks = []
    for j in range(n_chunks):
        entry = (cuts[j - 1], plan.crossing(cuts[j - 1])) if j > 0 else None
        exit_ = plan.crossing(cuts[j]) if j < n_chunks - 1 else None
        chunks.append(_make_chunk(model, j + 1, entry, exit_))
    return chunks


def _make_chunk(model, number: int, entry: tuple[int, list[str]] | None, exit_names: list[str] | None) -> Chunk:
    """Build chunk ``number`` (1-based) from a fresh copy of the program.

    ``entry`` = (index of the last op of the previous chunk, names crossing into this chunk);
    ``exit_names`` = names crossing out of it (None for the last chunk, which keeps the outputs).
    """
    import coremltools as ct
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import types
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.converters.mil.mil.program import Placeholder

    program = load_program(model)
    block = program.functions["main"]
    ops = list(block.operations)
    by_name = {var.name: var for op in ops for var in op.outputs}
    current = dict(by_name)  # what each crossing name refers to inside this chunk
    with block:
        if entry is not None:
            anchor = ops[entry[0]]
            for name in entry[1]:
                var = by_name[name]
                fp16 = var.dtype == types.fp16
                placeholder = Placeholder(sym_shape=var.shape, dtype=types.fp32 if fp16 else var.dtype,
                                          name=boundary_name(name, number - 1))
                block._input_dict[placeholder.outputs[0].name] = placeholder.outputs[0]
                new = mb.cast(x=placeholder.outputs[0], dtype="fp16", before_op=var.op) if fp16 else placeholder.outputs[0]
                block.replace_uses_of_var_after_op(anchor_op=anchor, old_var=var, new_var=new, force_replace=True)
                current[name] = new
        if exit_names is not None:
            outputs = []
            for name in exit_names:
                var, out_name = current[name], boundary_name(name, number)
                outputs.append(mb.cast(x=var, dtype="fp32", name=out_name) if var.dtype == types.fp16
                               else mb.identity(x=var, name=out_name))
            block.outputs.clear()
            block.set_outputs(outputs)
    PASS_REGISTRY["common::dead_code_elimination"](program)
    block._input_dict = OrderedDict((k, v) for k, v in block._input_dict.items() if v.child_ops)
    block.function_inputs = tuple(block._input_dict.values())
    # The program is final (fp16 where it was): convert it as is, for the source's OS version.
    converted = ct.convert(program, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                           minimum_deployment_target=ct.target(as_mlmodel(model).get_spec().specificationVersion),
                           pass_pipeline=ct.PassPipeline.EMPTY, skip_model_load=True)
    drop_program(converted)
    return Chunk(converted, tuple(block._input_dict), tuple(v.name for v in block.outputs),
                 weight_report(converted).bytes)


def chain(chunks: list[Chunk]):
    """A ``ChainedRunner`` that runs the chunks in order on the MIL executor."""
    from tryon_lab.export.runner import ChainedRunner

    return ChainedRunner([MILExecutor(c.model, f"chunk {i + 1}") for i, c in enumerate(chunks)], [c.inputs for c in chunks])


def check_chunks(model, chunks: list[Chunk], inputs: dict[str, np.ndarray]) -> float:
    """Largest |difference| between the chained chunks' outputs and the unchunked program's on ``inputs``."""
    whole = MILExecutor(model).predict(inputs)
    chained = chain(chunks).predict(inputs)
    return max(float(np.abs(chained[name].astype(np.float64) - value).max()) for name, value in whole.items())


def chunk_balance(chunks: list[Chunk]) -> float:
    """Largest relative deviation of a chunk's weight bytes from the mean (0.1 = within ±10%)."""
    sizes = np.array([c.weight_bytes for c in chunks], dtype=np.float64)
    return float(np.abs(sizes / sizes.mean() - 1.0).max())
