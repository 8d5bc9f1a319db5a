"""The VAE's latent space (notebook 01): an image's round trip through the VAE, its latent channels
as pictures, and their statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from tryon_lab.data.io import fit_image, load_image
from tryon_lab.errors import TryOnInputError
from tryon_lab.metrics.image import psnr
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.latents import pil_to_tensor, tensor_to_pil


@dataclass
class Roundtrip:
    """One image through the VAE: the model-size ``image``, its scaled ``latents`` (C, s, s),
    the decoded ``reconstruction`` and the ``psnr`` (dB) between the two."""

    image: Image.Image
    latents: torch.Tensor
    reconstruction: Image.Image
    psnr: float


def vae_roundtrip(pipe: TryOnInpaintPipeline, image: Any, mode: str = "crop") -> Roundtrip:
    """Fit ``image`` (any size; path, PIL, array, file) to the model's square (``mode`` "crop" or
    "pad", as ``fit_image``), encode it to latents, decode them back, and measure the PSNR."""
    square = fit_image(load_image(image), pipe.resolution, mode=mode)
    latents = pipe.encode_images(pil_to_tensor(square)[None])
    reconstruction = tensor_to_pil(pipe.decode_latents(latents)[0])
    return Roundtrip(square, latents[0].cpu(), reconstruction, psnr(reconstruction, square))


def channel_images(tensor: torch.Tensor) -> list[np.ndarray]:
    """Return each channel of a (C, h, w) or (1, C, h, w) tensor as an h x w float array in
    [0, 1], stretched from that channel's own min to max (a constant channel shows as 0.5)."""
    values = tensor.detach().float().cpu()
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise TryOnInputError(f"channel_images shows one item; got a batch of {values.shape[0]}")
        values = values[0]
    if values.ndim != 3:
        raise TryOnInputError(f"channel_images needs (C, h, w) or (1, C, h, w); got shape {tuple(tensor.shape)}")
    images = []
    for channel in values.numpy():
        low, high = float(channel.min()), float(channel.max())
        images.append(np.full_like(channel, 0.5) if high == low else (channel - low) / (high - low))
    return images


def latent_stats(latents: torch.Tensor) -> list[tuple[int, float, float]]:
    """Return ``(channel, mean, std)`` of scaled latents (C, h, w): the VAE's ``scaling_factor``
    is chosen so that, over training images, they are near 0 and 1."""
    values = latents.detach().float().cpu().reshape(latents.shape[-3], -1)
    return [(i, round(float(c.mean()), 3), round(float(c.std()), 3)) for i, c in enumerate(values)]
