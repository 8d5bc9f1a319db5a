"""The inpainting U-Net's 9 input channels, in diffusers' order, written in one place.

``StableDiffusionInpaintPipeline`` and every SD-inpainting checkpoint feed the U-Net
[noisy latent (4), latent mask (1), masked-image latent (4)]; a checkpoint fed another order
computes something else. Pipelines, training, the DTC hint encoder and the phone loop build and
split the last 5 channels with these two functions. They take torch tensors or numpy arrays.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)

CHANNEL_GROUPS: tuple[tuple[str, int], ...] = (("noisy latent", 4), ("mask", 1), ("masked-image latent", 4))


def inpaint_channels(mask: Array, masked_latents: Array) -> Array:
    """Latent mask (B, 1, s, s) and masked-image latent (B, 4, s, s) -> the (B, 5, s, s) channels that
    follow the noisy latent in the U-Net's input (mask first, as diffusers orders them)."""
    if isinstance(masked_latents, np.ndarray):
        return np.concatenate([np.asarray(mask, dtype=masked_latents.dtype), masked_latents], axis=1)
    return torch.cat([mask.to(masked_latents), masked_latents], dim=1)


def split_inpaint_channels(channels: Array) -> tuple[Array, Array]:
    """Inverse of ``inpaint_channels``: (B, 5, s, s) -> (masked-image latent (B, 4, s, s), mask (B, 1, s, s))."""
    return channels[:, 1:], channels[:, :1]
