"""A program's weights as torch tensors: palettized (``constexpr_*``) weights decompressed, fp16 kept
fp16 until read."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def feeds_only_constexpr(op) -> bool:
    """Whether every op reading ``op``'s output is a ``constexpr_*`` op (a compressed weight's parts)."""
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


def weight_to_torch(value) -> Any:
    """A weight as torch: fp16 stays fp16, sharing the program's array (half the memory of fp32 and no
    copy: an SD-1.5 U-Net's 860M weights are 1.7 GB, not 1.7 + 3.4); it is widened, exactly, when read."""
    array = np.asarray(value)
    if array.dtype == np.float16 and array.ndim:
        if not array.flags.writeable:
            array = array.copy()  # torch wants writable memory; nothing writes to a weight
        return torch.from_numpy(np.ascontiguousarray(array))
    return to_torch(value)


def to_torch(value) -> Any:
    """A constant as torch: floats fp32, integers int64, booleans as they are; other attributes unchanged."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return torch.from_numpy(array.astype(np.float32))
    if array.dtype.kind in "iu":
        return torch.from_numpy(array.astype(np.int64))
    if array.dtype.kind == "b":
        return torch.from_numpy(array)
    return value  # strings and other attributes stay Python values


def widened(value) -> Any:
    """``value`` as fp32 if it is an fp16 tensor (exact), else unchanged."""
    return value.float() if isinstance(value, torch.Tensor) and value.dtype == torch.float16 else value
