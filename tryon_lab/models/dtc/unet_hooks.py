"""The main U-Net in two halves, and the hint's modulation fused into its skip connections.

``dtc_unet_forward`` runs the main U-Net with a ``HintModulation``. Direct addition goes through
diffusers' own ``down_block_additional_residuals`` / ``mid_block_additional_residual``; FiLM needs
the skips themselves, so the U-Net is run in two halves (``unet_encode`` -> modulate every skip ->
``unet_decode``) with the U-Net's own blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from tryon_lab.errors import ConfigError

_UNSUPPORTED = {
    "class_embed_type": None,
    "addition_embed_type": None,
    "encoder_hid_dim_type": None,
    "time_cond_proj_dim": None,
}


def check_unet_supported(unet: UNet2DConditionModel) -> None:
    """Raise ConfigError unless ``unet`` is an SD-style U-Net the two-halves forward reproduces
    exactly (no class / added / projected conditioning: SD-1.5 and the mini and tiny configs)."""
    for key, allowed in _UNSUPPORTED.items():
        if unet.config.get(key, None) != allowed:
            raise ConfigError(f"DTC supports SD-style U-Nets only; this one has {key}={unet.config.get(key)!r}")


def unet_time_embedding(unet: UNet2DConditionModel, sample: torch.Tensor, timestep) -> torch.Tensor:
    """The U-Net's timestep embedding (B, time_embed_dim), after its optional activation."""
    t_emb = unet.get_time_embed(sample=sample, timestep=timestep)
    emb = unet.time_embedding(t_emb, None)
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    return emb


def _blocks_call(block: nn.Module, hidden: torch.Tensor, emb: torch.Tensor, context: torch.Tensor):
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=hidden, temb=emb, encoder_hidden_states=context)
    return block(hidden_states=hidden, temb=emb)


def unet_encode(unet: UNet2DConditionModel, sample: torch.Tensor, emb: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Run conv_in, the down blocks and the mid block; return (skips, mid output).

    ``skips`` are the tensors UNet2DConditionModel.forward calls ``down_block_res_samples``: the
    conv_in output, then every resnet and downsampler output of every down block.
    """
    if unet.config.center_input_sample:
        sample = 2 * sample - 1.0
    hidden = unet.conv_in(sample)
    skips: tuple[torch.Tensor, ...] = (hidden,)
    for block in unet.down_blocks:
        hidden, res = _blocks_call(block, hidden, emb, encoder_hidden_states)
        skips += tuple(res)
    if unet.mid_block is not None:
        if getattr(unet.mid_block, "has_cross_attention", False):
            hidden = unet.mid_block(hidden, emb, encoder_hidden_states=encoder_hidden_states)
        else:
            hidden = unet.mid_block(hidden, emb)
    return skips, hidden


def unet_decode(unet: UNet2DConditionModel, hidden: torch.Tensor, skips: tuple[torch.Tensor, ...],
                emb: torch.Tensor, encoder_hidden_states: torch.Tensor, sample_size: tuple[int, int]) -> torch.Tensor:
    """Run the up blocks on the mid output ``hidden`` with ``skips``; return the U-Net's output."""
    factor = 2**unet.num_upsamplers
    forward_upsample_size = any(dim % factor != 0 for dim in sample_size)
    upsample_size = None
    for i, block in enumerate(unet.up_blocks):
        res, skips = skips[-len(block.resnets):], skips[: -len(block.resnets)]
        if i < len(unet.up_blocks) - 1 and forward_upsample_size:
            upsample_size = skips[-1].shape[2:]
        if getattr(block, "has_cross_attention", False):
            hidden = block(hidden_states=hidden, temb=emb, res_hidden_states_tuple=res,
                           encoder_hidden_states=encoder_hidden_states, upsample_size=upsample_size)
        else:
            hidden = block(hidden_states=hidden, temb=emb, res_hidden_states_tuple=res, upsample_size=upsample_size)
    if unet.conv_norm_out is not None:
        hidden = unet.conv_act(unet.conv_norm_out(hidden))
    return unet.conv_out(hidden)


@dataclass
class HintModulation:
    """What the hint contributes to the main U-Net, one entry per skip connection plus the mid block.

    FiLM: ``skip * scales[i] + shifts[i]``; direct addition (``scales`` None): ``skip + shifts[i]``.
    Tensors are (B, C, h, w) (spatial FiLM, addition) or (B, C, 1, 1) (channel FiLM). Depends only
    on the image, mask and reference, so a pipeline computes it once and reuses it every step.
    """

    shifts: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...] | None = None

    def __len__(self) -> int:
        return len(self.shifts)

    def cat(self, other: HintModulation) -> HintModulation:
        """Concatenate along the batch (e.g. unconditional then conditional, for guidance)."""
        shifts = tuple(torch.cat([a, b]) for a, b in zip(self.shifts, other.shifts))
        if self.scales is None:
            return HintModulation(shifts)
        return HintModulation(shifts, tuple(torch.cat([a, b]) for a, b in zip(self.scales, other.scales)))


def dtc_unet_forward(unet: UNet2DConditionModel, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                     modulation: HintModulation | None = None) -> torch.Tensor:
    """The main U-Net's noise prediction with the hint's ``modulation`` fused into its skips.

    ``modulation`` None is the plain U-Net (the Paint-by-Example-style baseline); direct
    addition uses diffusers' ControlNet residual inputs; FiLM runs the U-Net in two halves.
    """
    if modulation is None:
        return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
    if modulation.scales is None:
        return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                    down_block_additional_residuals=list(modulation.shifts[:-1]),
                    mid_block_additional_residual=modulation.shifts[-1], return_dict=False)[0]
    emb = unet_time_embedding(unet, sample, timestep)
    skips, hidden = unet_encode(unet, sample, emb, encoder_hidden_states)
    if len(skips) + 1 != len(modulation):
        raise ConfigError(f"hint modulation has {len(modulation)} entries but the U-Net has {len(skips)} skips + mid")
    skips = tuple(s * g + b for s, g, b in zip(skips, modulation.scales, modulation.shifts))
    hidden = hidden * modulation.scales[-1] + modulation.shifts[-1]
    return unet_decode(unet, hidden, skips, emb, encoder_hidden_states, tuple(sample.shape[-2:]))


def skip_channels(unet: UNet2DConditionModel) -> list[int]:
    """Channels of every skip connection (conv_in, each resnet and downsampler) and of the mid block."""
    channels = [unet.conv_in.out_channels]
    for block in unet.down_blocks:
        channels += [resnet.out_channels for resnet in block.resnets]
        if getattr(block, "downsamplers", None):
            channels += [down.out_channels for down in block.downsamplers]
    mid = unet.mid_block.resnets[-1].out_channels if unet.mid_block is not None else channels[-1]
    return channels + [mid]


def unet_init_config(unet: UNet2DConditionModel) -> dict[str, Any]:
    """The U-Net's constructor arguments as a plain JSON-able dict (no private keys)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in unet.config.items() if not k.startswith("_")}
