"""MIL kernels of linear algebra and normalization: linear, matmul, convolution, norms, softmax,
attention, reductions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tryon_lab.export.mil.kernels.registry import KERNELS, kernel


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
