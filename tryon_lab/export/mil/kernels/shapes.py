"""MIL kernels of shapes and indexing: reshape, transpose, concat, split, slicing, gathers, padding."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tryon_lab.export.errors import UnsupportedOpError
from tryon_lab.export.mil.kernels.registry import kernel


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
