"""MIL kernels applied element by element: arithmetic, comparisons, activations, casts."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tryon_lab.export.mil.kernels.registry import KERNELS, kernel

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
