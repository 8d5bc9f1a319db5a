"""nn.Modules around the diffusers / transformers parts whose ``forward`` returns plain tensors.

Tracers (``torch.jit.trace`` for Core ML, ``torch.export`` for ExecuTorch) need tensors in and
tensors out; each wrapper also folds in the pipeline's conventions (latent scaling, posterior
mode, clamping) so a phone runner calls the networks exactly as ``TryOnInpaintPipeline`` does.
The wrapped modules are shared, not copied.
"""

from __future__ import annotations

import torch
from torch import nn


class TextEncoderWrapper(nn.Module):
    """``input_ids`` (B, L) int -> ``last_hidden_state`` (B, L, D), as ``encode_prompt``."""

    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.long(), return_dict=False)[0]


class UnetWrapper(nn.Module):
    """(``sample`` 9-channel, ``timestep`` (B,), ``encoder_hidden_states``) -> ``noise_pred``."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet
        self.eval()

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]


class VAEEncoderWrapper(nn.Module):
    """``image`` in [-1, 1] -> scaled ``latent`` (posterior mode), as ``encode_images``."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image).latent_dist.mode() * self.vae.config.scaling_factor


class VAEDecoderWrapper(nn.Module):
    """Scaled ``latent`` -> ``image`` in [-1, 1], as ``decode_latents``."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae
        self.eval()

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent / self.vae.config.scaling_factor, return_dict=False)[0].clamp(-1, 1)
