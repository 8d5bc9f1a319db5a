"""The U-Net's attention in the Neural Engine's layout, as apple/ml-stable-diffusion's SPLIT_EINSUM.

The Neural Engine keeps tensors as (B, C, 1, S) with the channels second and the sequence last;
a (B, S, C) attention with a (B, heads, S, d) reshape moves data between layouts on every call.
``split_einsum_unet`` rewrites every diffusers ``Attention`` of a U-Net: its q, k, v and output
projections become 1x1 convolutions on (B, C, 1, S), and attention runs per head as two einsums
("bchq,bkhc->bkhq" for the weights, "bkhq,bchk->bchq" for the values) on channel slices, with the
softmax over the key axis, so no head ever needs a reshape. The maths is the original's (the same
weights, scale and softmax); only the layout and the order of the sums change.

``ATTENTIONS`` names the choices: ``original`` (diffusers' processors, what the pipeline runs) and
``split_einsum``. The rewrite works on a copy; the pipeline's U-Net is left as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tryon_lab.export.contract import Component
from tryon_lab.export.errors import ExportInputError

ATTENTIONS = ("original", "split_einsum")
REWRITTEN = ("Unet",)  # the components whose attention ``with_attention`` rewrites


def conv1x1(linear: nn.Linear) -> nn.Conv2d:
    """A 1x1 ``Conv2d`` holding ``linear``'s weights: the same map on (B, C, 1, S) as ``linear`` on (B, S, C)."""
    conv = nn.Conv2d(linear.in_features, linear.out_features, 1, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight[:, :, None, None])
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv.to(linear.weight.dtype)


def to_ane(hidden_states: torch.Tensor) -> torch.Tensor:
    """(B, S, C) or (B, C, H, W) -> (B, C, 1, S)."""
    if hidden_states.ndim == 4:
        batch, channels, height, width = hidden_states.shape
        return hidden_states.reshape(batch, channels, 1, height * width)
    return hidden_states.transpose(1, 2).unsqueeze(2)


def split_einsum_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int,
                           scale: float) -> torch.Tensor:
    """Multi-head attention on (B, C, 1, S) projections, one einsum pair per head: returns (B, C, 1, S_query)."""
    dim_head = query.shape[1] // heads
    keys = key.transpose(1, 3).split(dim_head, dim=3)  # (B, S_key, 1, d) per head
    outputs = []
    for q, k, v in zip(query.split(dim_head, dim=1), keys, value.split(dim_head, dim=1)):
        weights = (torch.einsum("bchq,bkhc->bkhq", q, k) * scale).softmax(dim=1)
        outputs.append(torch.einsum("bkhq,bchk->bchq", weights, v))
    return torch.cat(outputs, dim=1)


class SplitEinsumAttnProcessor:
    """A diffusers attention processor for an ``Attention`` whose projections ``split_einsum_unet``
    made 1x1 convolutions; it returns what ``AttnProcessor2_0`` returns for the original module."""

    def __call__(self, attn: nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            raise ExportInputError("split_einsum attention takes no attention mask (the U-Net export passes none)")
        residual = hidden_states
        shape = hidden_states.shape
        states = to_ane(hidden_states)
        if attn.group_norm is not None:
            states = attn.group_norm(states)
        if encoder_hidden_states is None:
            context = states
        else:
            if attn.norm_cross:
                encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
            context = to_ane(encoder_hidden_states)
        out = split_einsum_attention(attn.to_q(states), attn.to_k(context), attn.to_v(context), attn.heads, attn.scale)
        out = attn.to_out[1](attn.to_out[0](out))
        out = out.reshape(shape) if len(shape) == 4 else out.squeeze(2).transpose(1, 2)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _check_supported(name: str, attn: nn.Module) -> None:
    unsupported = [part for part in ("spatial_norm", "norm_q", "norm_k", "add_q_proj")
                   if getattr(attn, part, None) is not None]
    if unsupported or not isinstance(attn.to_q, nn.Linear):
        raise ExportInputError(f"split_einsum attention cannot rewrite {name} (it has "
                               f"{unsupported or 'no linear to_q'}); export it with --attention original")


def split_einsum_unet(unet: nn.Module) -> nn.Module:
    """A copy of ``unet`` (a U-Net, or a module holding one) with every diffusers ``Attention`` in
    split-einsum form; it computes what ``unet`` computes."""
    from diffusers.models.attention_processor import Attention

    unet = copy.deepcopy(unet)
    for name, module in unet.named_modules():
        if not isinstance(module, Attention):
            continue
        _check_supported(name, module)
        for part in ("to_q", "to_k", "to_v"):
            setattr(module, part, conv1x1(getattr(module, part)))
        module.to_out[0] = conv1x1(module.to_out[0])
        module.set_processor(SplitEinsumAttnProcessor())
    return unet


def with_attention(component: Component, attention: str) -> Component:
    """``component`` with its U-Net's attention in the form ``attention`` (one of ``ATTENTIONS``);
    components without attention to rewrite, and ``original``, come back as they are."""
    if attention not in ATTENTIONS:
        raise ExportInputError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
    if attention == "original" or component.name not in REWRITTEN:
        return component
    return Component(component.spec, split_einsum_unet(component.module).eval())
