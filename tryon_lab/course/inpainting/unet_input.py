"""The inpainting U-Net's 9-channel input at one timestep (notebook 01), built by the pipeline's own
code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from tryon_lab.course.inpainting.noise import add_noise, noise_schedule
from tryon_lab.data.io import fit_image, load_image, load_mask
from tryon_lab.models.channels import inpaint_channels, split_inpaint_channels
from tryon_lab.pipelines.compositing import to_model_square
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.latents import pil_to_tensor, tensor_to_pil


@dataclass
class UNetInput:
    """What the inpainting U-Net sees at one timestep, in three groups of channels (diffusers'
    order): ``noisy_latents`` (1, 4, s, s), ``mask`` (1, 1, s, s) (1 where a cell is repainted) and
    ``masked_image_latents`` (1, 4, s, s) (the VAE latent of the photo with the masked pixels blanked).
    ``masked_image`` is the blanked photo the second group encodes; ``timestep`` is t."""

    noisy_latents: torch.Tensor
    masked_image_latents: torch.Tensor
    mask: torch.Tensor
    masked_image: Image.Image
    timestep: float

    @property
    def sample(self) -> torch.Tensor:
        """The (1, 9, s, s) tensor fed to the U-Net: the three groups concatenated on channels."""
        return torch.cat([self.noisy_latents, inpaint_channels(self.mask, self.masked_image_latents)], dim=1)

    def titles(self) -> list[str]:
        """A title per channel of ``sample``, e.g. "0: noisy latent ch 0"."""
        groups = [("noisy latent", self.noisy_latents), ("mask", self.mask),
                  ("masked-image latent", self.masked_image_latents)]
        titles = []
        for name, tensor in groups:
            for c in range(tensor.shape[1]):
                titles.append(f"{len(titles)}: {name}" + (f" ch {c}" if tensor.shape[1] > 1 else ""))
        return titles


def unet_input_channels(pipe: TryOnInpaintPipeline, image: Any, mask: Any, t: float,
                        target: Any | None = None, seed: int = 0) -> UNetInput:
    """Build the U-Net's input for ``image`` and ``mask`` at timestep ``t``, as in training.

    The inpainting channels (latent mask, masked-image latent) are made by the pipeline's own
    code, so they are exactly what ``pipe(...)`` feeds the U-Net. The noisy latent is the VAE
    latent of ``target`` (default: ``image``) noised to ``t`` with noise from ``seed``; at
    sampling time it is instead whatever the sampler has reached at step t.
    """
    photo = load_image(image)
    square, square_mask = to_model_square(photo, load_mask(mask, image=photo), pipe.resolution)
    masked_latents, latent_mask = split_inpaint_channels(pipe.encode_inpaint_channels([square], [square_mask], None))
    clean_source = square if target is None else fit_image(load_image(target), pipe.resolution, mode="pad")
    clean = pipe.encode_images(pil_to_tensor(clean_source)[None])
    noise = torch.randn(clean.shape, generator=torch.Generator("cpu").manual_seed(seed)).to(clean)
    noisy = add_noise(clean, noise, t, noise_schedule(pipe.scheduler))
    blanked = tensor_to_pil(pil_to_tensor(square) * torch.from_numpy(~square_mask).float()[None])
    return UNetInput(noisy.cpu(), masked_latents.cpu(), latent_mask.cpu(), blanked, float(t))
