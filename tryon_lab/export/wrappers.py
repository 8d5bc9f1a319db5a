"""nn.Modules around the diffusers / transformers parts whose ``forward`` returns plain tensors.

Tracers (``torch.jit.trace`` for Core ML, ``torch.export`` for ExecuTorch) need tensors in and
tensors out; each wrapper also folds in the pipeline's conventions (latent scaling, posterior
mode, clamping, the reference's resize, the null tokens) so a phone runner calls the networks
exactly as ``TryOnInpaintPipeline`` and ``DTCPipeline`` do. The wrapped modules are shared, not copied.

Diffuse to Choose's hint modulation crosses the HintEncoder -> Unet boundary as a flat tuple of
maps (``hint_maps`` / ``hint_modulation``): per skip ``i``, ``scale_i`` then ``shift_i`` (FiLM,
``skip * scale_i + shift_i``), or ``shift_i`` alone (addition, ``skip + shift_i``); the last ``i``
is the mid block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from tryon_lab.models.dtc import HintModulation, dtc_unet_forward


def hint_maps(modulation: HintModulation) -> tuple[torch.Tensor, ...]:
    """Flatten ``modulation`` to (scale_0, shift_0, scale_1, ...) for FiLM, (shift_0, shift_1, ...) for addition."""
    if modulation.scales is None:
        return tuple(modulation.shifts)
    return tuple(t for pair in zip(modulation.scales, modulation.shifts) for t in pair)


def hint_modulation(maps: tuple[torch.Tensor, ...], film: bool) -> HintModulation:
    """Inverse of ``hint_maps``: the ``HintModulation`` of a flat tuple (``film``: pairs, else shifts)."""
    if not film:
        return HintModulation(tuple(maps))
    return HintModulation(tuple(maps[1::2]), tuple(maps[0::2]))


def resize_matrix(source: int, size: int) -> torch.Tensor:
    """The (size, source) matrix ``A`` with ``A @ x @ A.T`` equal to ``models.dtc.resize_images(x, size)``
    for square images ``x`` of side ``source``: antialiased bilinear resizing is separable, and two
    matmuls run on every backend where antialiased interpolation does not."""
    identity = torch.eye(source, dtype=torch.float64)[None, None]
    return F.interpolate(identity, size=(size, source), mode="bilinear", antialias=True,
                         align_corners=False)[0, 0].float()


class TextEncoderWrapper(nn.Module):
    """``input_ids`` (B, L) int -> ``last_hidden_state`` (B, L, D), as ``encode_prompt``."""

    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder
        self.eval()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.long(), return_dict=False)[0]


class UnetWrapper(nn.Module):
    """(``sample`` 9-channel, ``timestep`` (B,), ``encoder_hidden_states``, then the hint maps of a
    DTC U-Net) -> ``noise_pred``, as ``dtc_unet_forward`` (the plain U-Net call without maps).
    ``film``: whether the maps are FiLM (scale, shift) pairs or addition residuals."""

    def __init__(self, unet: nn.Module, film: bool = False) -> None:
        super().__init__()
        self.unet = unet
        self.film = film
        self.eval()

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                *maps: torch.Tensor) -> torch.Tensor:
        modulation = hint_modulation(maps, self.film) if maps else None
        return dtc_unet_forward(self.unet, sample, timestep, encoder_hidden_states, modulation)


class ImageEncoderWrapper(nn.Module):
    """``reference`` (1, 3, R, R) in [-1, 1] -> ``encoder_hidden_states`` (rows, N, D): with 2 rows the
    learned null tokens (the unconditional guidance row) then the reference's tokens, as ``DTCPipeline``
    stacks them; with 1 row (an LCM bundle: no guidance) the reference's tokens alone."""

    def __init__(self, image_encoder: nn.Module, resolution: int, rows: int = 2) -> None:
        super().__init__()
        self.image_encoder, self.rows = image_encoder, rows
        self.register_buffer("resize", resize_matrix(resolution, image_encoder.config.image_size), persistent=False)
        self.eval()

    def forward(self, reference: torch.Tensor) -> torch.Tensor:
        with _composite_attention():
            tokens = self.image_encoder(self.resize @ reference @ self.resize.T)
        if self.rows == 1:
            return tokens
        return torch.cat([self.image_encoder.null(1).to(tokens.dtype), tokens])


@contextmanager
def _composite_attention() -> Iterator[None]:
    # In eval mode without grad, nn.TransformerEncoderLayer takes a fused fast path
    # (aten._transformer_encoder_layer_fwd) that no converter knows; the composite path is the same maths.
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


class HintEncoderWrapper(nn.Module):
    """(``masked_latent``, ``latent_mask``, ``hint``, ``encoder_hidden_states``) -> the hint maps
    (``hint_maps`` order), as ``HintEncoder.forward`` without a timestep."""

    def __init__(self, hint_encoder: nn.Module) -> None:
        super().__init__()
        self.hint_encoder = hint_encoder
        self.eval()

    def forward(self, masked_latent: torch.Tensor, latent_mask: torch.Tensor, hint: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return hint_maps(self.hint_encoder(masked_latent, latent_mask, hint, encoder_hidden_states))


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
