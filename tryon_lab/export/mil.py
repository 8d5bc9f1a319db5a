"""Execute an ML Program's MIL operations on the CPU, so exports can be checked without a Mac.

Core ML predicts only on Apple platforms. ``MILExecutor`` loads a package's program with
coremltools, materializes every weight once (palettized ``constexpr_*`` weights are decompressed
here and cached; fp16 weights stay fp16 and are widened, exactly, as an operation reads them), then
runs the operations in program order with a torch kernel each. Where the program computes in fp16
every fp16 result is rounded to fp16 (overflow included), so the executor shows what fp16 does to
the numbers; it cannot show Neural Engine accumulation details.
A run holds only the values still to be read: each intermediate is dropped after the last operation
that reads it, so an SD-1.5-size U-Net's activations fit beside its weights.
An operation without a kernel raises ``UnsupportedOpError`` naming it when the program is loaded.
``load_runner`` gives Core ML itself on macOS and this executor elsewhere, behind one API.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tryon_lab.export.errors import ExportInputError, UnsupportedOpError

Kernel = Callable[[Any, Callable[[str], Any]], Any]
KERNELS: dict[str, Kernel] = {}


def kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    """Register ``fn(op, value)`` as the kernel of ``op_types``; ``value(name)`` reads an input."""

    def register(fn: Kernel) -> Kernel:
        for op_type in op_types:
            KERNELS[op_type] = fn
        return fn

    return register


def as_mlmodel(model: Any):
    """Return ``model`` as an ``MLModel`` (a ``.mlpackage`` path is opened without compiling it)."""
    import coremltools as ct

    return model if isinstance(model, ct.models.MLModel) else ct.models.MLModel(str(model), skip_model_load=True)


def drop_program(model):
    """Return ``model`` (an ``MLModel`` just made by coremltools) without the pymil program coremltools
    keeps beside it: its weights held in memory a second time (0.9 GB for an fp16 SD-1.5 U-Net). The
    package has them; saving, loading and everything here read the package."""
    model._mil_program = None
    return model


def load_program(model: Any):
    """Return the pymil ``Program`` of an ML Program (an ``MLModel`` or a ``.mlpackage`` path)."""
    from coremltools.converters.mil.frontend.milproto.load import load

    mlmodel = as_mlmodel(model)
    spec = mlmodel.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise ExportInputError(f"expected an ML Program, got a {spec.WhichOneof('Type') or 'empty'} model")
    return load(spec, spec.specificationVersion, mlmodel.weights_dir)


def _is_fp16(var) -> bool:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype if types.is_tensor(var.sym_type) else var.sym_type
    return dtype == types.fp16


def _to_torch(value) -> Any:
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return torch.from_numpy(array.astype(np.float32))
    if array.dtype.kind in "iu":
        return torch.from_numpy(array.astype(np.int64))
    if array.dtype.kind == "b":
        return torch.from_numpy(array)
    return value  # strings and other attributes stay Python values


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
                if _feeds_only_constexpr(op):
                    continue  # a compressed weight's parts (indices, palettes), read by its constexpr op
                value = op.outputs[0].val if op.op_type == "const" else decompress(op)
                self.constants[op.outputs[0].name] = _weight_to_torch(value)
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
        return _widened(self.constants[self.weight_vars[op_name]])

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
            env.update({self.weight_vars[name]: _to_torch(value) for name, value in weights.items()})
        for name, var in self.input_vars.items():
            env[name] = _round(_to_torch(inputs[name]), _is_fp16(var))

        def value(var):
            return _widened(env[var.name])

        held = peak = sum(_nbytes(env[name]) for name in self.input_vars)  # bytes of the non-weight values in env
        with torch.no_grad():
            for (run, op, outputs), release in zip(self.steps, self._release):
                result = run(op, _Inputs(op, value))
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


class CoreMLRunner:
    """Core ML itself (macOS only), behind the same ``predict`` API as ``MILExecutor``."""

    def __init__(self, path: str | Path) -> None:
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_AND_NE)
        self.input_names = [i.name for i in self.model.get_spec().description.input]

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return Core ML's outputs for ``inputs``."""
        return {k: np.asarray(v) for k, v in self.model.predict(dict(inputs)).items()}


def load_runner(path: str | Path, backend: str = "auto"):
    """Return a runner for a ``.mlpackage``: Core ML on macOS (``backend="auto"`` or ``"coreml"``),
    else the ``MILExecutor`` (``"mil"``, or ``"auto"`` anywhere but macOS)."""
    if backend == "coreml" or (backend == "auto" and platform.system() == "Darwin"):
        return CoreMLRunner(path)
    return MILExecutor(path)


def _feeds_only_constexpr(op) -> bool:
    children = op.outputs[0].child_ops
    return bool(children) and all(child.op_type.startswith("constexpr_") for child in children)


def decompress(op) -> np.ndarray:
    """The value of a compressed (``constexpr_*``) weight op.

    A scalar palette (iOS18 ``constexpr_lut_to_dense``, vector size 1: what ``palettize`` makes) is
    looked up one table at a time; coremltools' ``materialized_val_inference`` first repeats the
    table to every element (elements x palette entries: 1.9 GB of fp16 for one 1280x1280x3x3 SD-1.5
    conv at 6 bits), which took a chunk of an SD-1.5 U-Net past 11 GB. Same values, as both only
    read the table. Any other compressed weight goes to coremltools."""
    indices = op.inputs.get("indices")
    lut = op.inputs.get("lut")
    if op.op_type == "constexpr_lut_to_dense" and indices is not None and lut is not None \
            and indices.val is not None and lut.val is not None \
            and lut.val.ndim == indices.val.ndim + 2 and lut.val.shape[-1] == 1:
        return lut_to_dense(indices.val, lut.val)
    return op.materialized_val_inference()


def lut_to_dense(indices: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Look up ``indices`` (shape S) in ``lut`` (shape (*B, entries, 1), one table per block of S
    along each axis, B[i] dividing S[i]), block by block."""
    tables = lut[..., 0]
    blocks = tables.shape[:-1]
    sizes = [length // count for length, count in zip(indices.shape, blocks)]
    dense = np.empty(indices.shape, dtype=lut.dtype)
    for block in np.ndindex(*blocks):
        where = tuple(slice(i * size, (i + 1) * size) for i, size in zip(block, sizes))
        dense[where] = tables[block][indices[where]]
    return dense


def _weight_to_torch(value) -> Any:
    """A weight as torch: fp16 stays fp16, sharing the program's array (half the memory of fp32 and no
    copy: an SD-1.5 U-Net's 860M weights are 1.7 GB, not 1.7 + 3.4); it is widened, exactly, when read."""
    array = np.asarray(value)
    if array.dtype == np.float16 and array.ndim:
        if not array.flags.writeable:
            array = array.copy()  # torch wants writable memory; nothing writes to a weight
        return torch.from_numpy(np.ascontiguousarray(array))
    return _to_torch(value)


def _widened(value) -> Any:
    return value.float() if isinstance(value, torch.Tensor) and value.dtype == torch.float16 else value


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


class _Inputs:
    """An op's inputs: ``t(name)`` the tensor, ``a(name, default)`` a constant attribute as Python."""

    def __init__(self, op, value) -> None:
        self.op, self._value = op, value

    def t(self, name: str):
        var = self.op.inputs.get(name)
        if var is None:
            return None
        if isinstance(var, (list, tuple)):
            return [self._value(v) for v in var]
        return self._value(var)

    def a(self, name: str, default: Any = None) -> Any:
        var = self.op.inputs.get(name)
        if var is None or var.val is None:
            return default
        value = var.val
        return value.tolist() if isinstance(value, np.ndarray) else (value.item() if isinstance(value, np.generic) else value)

    def shape(self, index: int = 0) -> tuple[int, ...]:
        return tuple(int(s) for s in self.op.outputs[index].shape)


# ---- kernels: elementwise ------------------------------------------------------------------

_BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "real_div": torch.true_divide,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
    "floor_div": torch.floor_divide, "mod": torch.remainder,
    "equal": torch.eq, "not_equal": torch.ne, "less": torch.lt, "less_equal": torch.le,
    "greater": torch.gt, "greater_equal": torch.ge,
    "logical_and": torch.logical_and, "logical_or": torch.logical_or, "logical_xor": torch.logical_xor,
}
_UNARY = {
    "sqrt": torch.sqrt, "exp": torch.exp, "exp2": torch.exp2, "sin": torch.sin, "cos": torch.cos,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "silu": F.silu, "abs": torch.abs,
    "square": torch.square, "erf": torch.erf, "floor": torch.floor, "ceil": torch.ceil,
    "round": torch.round, "sign": torch.sign, "logical_not": torch.logical_not, "identity": lambda x: x,
    "softplus": F.softplus,
}


def _binary(fn):
    return lambda op, x: fn(x.t("x"), x.t("y"))


def _unary(fn):
    return lambda op, x: fn(x.t("x"))


for _name, _fn in _BINARY.items():
    KERNELS[_name] = _binary(_fn)
for _name, _fn in _UNARY.items():
    KERNELS[_name] = _unary(_fn)


@kernel("rsqrt")
def _rsqrt(op, x):
    return torch.rsqrt(x.t("x") + x.a("epsilon", 1e-12))


@kernel("inverse")
def _inverse(op, x):
    return 1.0 / (x.t("x") + x.a("epsilon", 1e-4))


@kernel("log")
def _log(op, x):
    return torch.log(x.t("x") + x.a("epsilon", 0.0))


@kernel("clip")
def _clip(op, x):
    return torch.clamp(x.t("x"), x.a("alpha"), x.a("beta"))


@kernel("gelu")
def _gelu(op, x):
    mode, value = x.a("mode", "EXACT"), x.t("x")
    if mode == "SIGMOID_APPROXIMATION":
        return value * torch.sigmoid(1.702 * value)
    return F.gelu(value, approximate="tanh" if mode == "TANH_APPROXIMATION" else "none")


@kernel("select")
def _select(op, x):
    return torch.where(x.t("cond").bool(), x.t("a"), x.t("b"))


@kernel("cast")
def _cast(op, x):
    dtype = x.a("dtype")
    value = x.t("x")
    if dtype.startswith("fp"):
        return value.float()
    if dtype == "bool":
        return value.bool()
    return torch.trunc(value).long() if value.is_floating_point() else value.long()


# ---- kernels: linear algebra and normalization ---------------------------------------------

@kernel("linear")
def _linear(op, x):
    return F.linear(x.t("x"), x.t("weight"), x.t("bias"))


@kernel("matmul")
def _matmul(op, x):
    a, b = x.t("x"), x.t("y")
    if x.a("transpose_x", False):
        a = a.transpose(-1, -2)
    if x.a("transpose_y", False):
        b = b.transpose(-1, -2)
    return torch.matmul(a, b)


@kernel("einsum")
def _einsum(op, x):
    return torch.einsum(x.a("equation"), *x.t("values"))


@kernel("conv")
def _conv(op, x):
    value, weight = x.t("x"), x.t("weight")
    dims = value.dim() - 2
    strides = x.a("strides", [1] * dims)
    dilations = x.a("dilations", [1] * dims)
    pad_type = x.a("pad_type", "valid")
    if pad_type == "custom":
        pads = x.a("pad", [0] * 2 * dims)
    elif pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s, d in zip(value.shape[2:], weight.shape[2:], strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            low = total // 2 if pad_type == "same" else total - total // 2
            pads += [low, total - low]
    else:
        pads = [0] * 2 * dims
    if any(pads):
        # MIL lists (begin, end) per spatial axis from the first; F.pad wants the last axis first.
        value = F.pad(value, [p for i in reversed(range(dims)) for p in pads[2 * i: 2 * i + 2]])
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    return conv(value, weight, x.t("bias"), stride=strides, dilation=dilations, groups=x.a("groups", 1))


def _moments(value, axes):
    mean = value.mean(dim=axes, keepdim=True)
    var = ((value - mean) ** 2).mean(dim=axes, keepdim=True)
    return mean, var


@kernel("layer_norm")
def _layer_norm(op, x):
    value = x.t("x")
    axes = x.a("axes", list(range(value.dim())))
    mean, var = _moments(value, axes)
    out = (value - mean) / torch.sqrt(var + x.a("epsilon", 1e-5))
    gamma, beta = x.t("gamma"), x.t("beta")
    return out * (gamma if gamma is not None else 1.0) + (beta if beta is not None else 0.0)


@kernel("instance_norm")
def _instance_norm(op, x):
    value = x.t("x")
    mean, var = _moments(value, list(range(2, value.dim())))
    out = (value - mean) / torch.sqrt(var + x.a("epsilon", 1e-5))
    shape = (1, -1) + (1,) * (value.dim() - 2)
    gamma, beta = x.t("gamma"), x.t("beta")
    return out * (gamma.reshape(shape) if gamma is not None else 1.0) + (beta.reshape(shape) if beta is not None else 0.0)


@kernel("batch_norm")
def _batch_norm(op, x):
    return F.batch_norm(x.t("x"), x.t("mean"), x.t("variance"), x.t("gamma"), x.t("beta"),
                        eps=x.a("epsilon", 1e-5))


@kernel("softmax")
def _softmax(op, x):
    return torch.softmax(x.t("x"), dim=x.a("axis", -1))


@kernel("scaled_dot_product_attention")
def _sdpa(op, x):
    mask = x.t("attn_mask")
    return F.scaled_dot_product_attention(x.t("query"), x.t("key"), x.t("value"), attn_mask=mask)


_REDUCE = {"reduce_mean": torch.mean, "reduce_sum": torch.sum, "reduce_max": torch.amax,
           "reduce_min": torch.amin}


def _reduce(fn):
    def run(op, x):
        value = x.t("x")
        axes = x.a("axes", list(range(value.dim())))
        return fn(value, dim=axes, keepdim=x.a("keep_dims", False))

    return run


for _name, _fn in _REDUCE.items():
    KERNELS[_name] = _reduce(_fn)


@kernel("reduce_argmax")
def _argmax(op, x):
    return torch.argmax(x.t("x"), dim=x.a("axis", -1), keepdim=x.a("keep_dims", False))


# ---- kernels: shapes and indexing ----------------------------------------------------------

@kernel("reshape", "expand_dims", "squeeze")
def _reshape(op, x):
    # Programs here have static shapes, so the output type already holds the answer.
    return x.t("x").reshape(x.shape())


@kernel("transpose")
def _transpose(op, x):
    return x.t("x").permute(x.a("perm"))


@kernel("concat")
def _concat(op, x):
    if x.a("interleave", False):
        raise UnsupportedOpError("concat(interleave=True)", op.name)
    return torch.cat(x.t("values"), dim=x.a("axis"))


@kernel("stack")
def _stack(op, x):
    return torch.stack(x.t("values"), dim=x.a("axis"))


@kernel("split")
def _split(op, x):
    value, axis = x.t("x"), x.a("axis")
    sizes = x.a("split_sizes")
    if sizes is None:
        sizes = value.shape[axis] // x.a("num_splits")
    return tuple(torch.split(value, sizes, dim=axis))


@kernel("slice_by_index")
def _slice_by_index(op, x):
    value = x.t("x")
    rank = value.dim()
    begin, end = x.t("begin").tolist(), x.t("end").tolist()
    stride = x.a("stride", [1] * rank)
    begin_mask = x.a("begin_mask", [False] * rank)
    end_mask = x.a("end_mask", [False] * rank)
    squeeze_mask = x.a("squeeze_mask", [False] * rank)
    index = []
    for axis in range(rank):
        if stride[axis] < 0:
            raise UnsupportedOpError("slice_by_index(negative stride)", op.name)
        if squeeze_mask[axis]:
            index.append(begin[axis])
        else:
            index.append(slice(None if begin_mask[axis] else begin[axis], None if end_mask[axis] else end[axis],
                               stride[axis]))
    return value[tuple(index)]


@kernel("slice_by_size")
def _slice_by_size(op, x):
    value = x.t("x")
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(x.t("begin").tolist(), x.t("size").tolist()))
    return value[index]


@kernel("gather")
def _gather(op, x):
    value, indices = x.t("x"), x.t("indices").long()
    if x.a("batch_dims", 0):
        raise UnsupportedOpError("gather(batch_dims>0)", op.name)
    axis = x.a("axis", 0) % value.dim()
    indices = torch.where(indices < 0, indices + value.shape[axis], indices)
    picked = torch.index_select(value, axis, indices.reshape(-1))
    return picked.reshape(value.shape[:axis] + indices.shape + value.shape[axis + 1:])


@kernel("gather_along_axis")
def _gather_along_axis(op, x):
    value, indices = x.t("x"), x.t("indices").long()
    axis = x.a("axis", 0) % value.dim()
    indices = torch.where(indices < 0, indices + value.shape[axis], indices)
    return torch.gather(value, axis, indices)


@kernel("gather_nd")
def _gather_nd(op, x):
    value, indices = x.t("x"), x.t("indices").long()
    if x.a("batch_dims", 0):
        raise UnsupportedOpError("gather_nd(batch_dims>0)", op.name)
    return value[tuple(indices[..., i] for i in range(indices.shape[-1]))]


@kernel("tile")
def _tile(op, x):
    return x.t("x").repeat(*x.a("reps"))


@kernel("pad")
def _pad(op, x):
    pads = x.t("pad").tolist()
    mode = x.a("mode", "constant")
    # MIL pads the last len(pad)/2 axes, first axis first; F.pad wants the last axis first.
    torch_pads = [p for i in reversed(range(len(pads) // 2)) for p in pads[2 * i: 2 * i + 2]]
    if mode == "constant":
        return F.pad(x.t("x"), torch_pads, value=x.a("constant_val", 0.0))
    return F.pad(x.t("x"), torch_pads, mode={"reflect": "reflect", "replicate": "replicate"}[mode])


@kernel("upsample_nearest_neighbor")
def _upsample(op, x):
    return F.interpolate(x.t("x"), size=x.shape()[2:], mode="nearest")


@kernel("fill")
def _fill(op, x):
    return torch.full(x.shape(), x.a("value", 0.0))


@kernel("shape")
def _shape(op, x):
    return torch.tensor(x.t("x").shape, dtype=torch.int64)


@kernel("range_1d")
def _range(op, x):
    return torch.arange(x.a("start"), x.a("end"), x.a("step"))
