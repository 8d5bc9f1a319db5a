"""The DTC hint path: a shallow adapter, a secondary encoder copied from the main U-Net, and the
zero-initialised fusion layers that turn its features into FiLM (or addition) modulation.

The hint (the reference pasted into the mask's largest rectangle on an empty image,
``tryon_lab.data.masks.make_collage``) goes through a 4-layer CNN adapter to latent size and is
added to the masked-image latent; with the latent mask this feeds a copy of the main U-Net's
conv_in, down blocks and mid block (``HintEncoder.from_unet``). At every skip connection a
zero-initialised 1x1 conv gives FiLM parameters, so ``skip * (1 + dgamma) + beta`` is exactly
``skip`` at init and a DTC model starts from the base model's behaviour. ``fusion="add"`` is the
ablation's ControlNet-style direct addition.

Timestep: the hint encoder's input never depends on the noisy latent. With
``timestep_conditioning=False`` (the default, the profile's ``hint_timestep = false``) its resnets
get a learned constant time embedding, initialised from the main U-Net's embedding of t=0, and its
modulation is computed once per image. ``timestep_conditioning=True`` (``hint_timestep = true``,
variants ``film+t`` / ``add+t``) copies the main time embedding, as the paper's copy of the U-Net
encoder does, and must be recomputed at every sampling step.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tryon_lab.errors import ConfigError
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.models.dtc.unet_hooks import (
    HintModulation,
    check_unet_supported,
    skip_channels,
    unet_encode,
    unet_init_config,
    unet_time_embedding,
)

FUSIONS = ("film", "add")
FILM_MODES = ("spatial", "channel")
ADAPTER_LAYERS = 4
EMPTY_HINT = -1.0  # the hint's empty background (black) in [-1, 1]; an all-empty hint means "no hint"


class HintAdapter(nn.Module):
    """The shallow 4-layer CNN bringing the pixel hint (B, 3, H, W) to latent size (B, 4, H/f, W/f).

    log2(f) stride-2 convolutions (3 for the VAE factor 8), then stride-1 ones; SiLU between.
    """

    def __init__(self, latent_channels: int, vae_scale_factor: int, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        downs = vae_scale_factor.bit_length() - 1
        if 2**downs != vae_scale_factor or downs > ADAPTER_LAYERS - 1:
            raise ConfigError(f"HintAdapter: vae_scale_factor {vae_scale_factor} must be a power of two <= 8")
        if len(channels) != ADAPTER_LAYERS - 1:
            raise ConfigError(f"HintAdapter: give {ADAPTER_LAYERS - 1} hidden widths, got {len(channels)}")
        layers, previous = [], 3
        for i, width in enumerate(channels):
            layers += [nn.Conv2d(previous, width, 3, stride=2 if i < downs else 1, padding=1), nn.SiLU()]
            previous = width
        layers.append(nn.Conv2d(previous, latent_channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, hint: torch.Tensor) -> torch.Tensor:
        """The hint (B, 3, H, W) in [-1, 1] -> (B, latent_channels, H/f, W/f)."""
        return self.layers(hint)


class HintEncoder(ModelMixin, ConfigMixin):
    """The DTC hint path: adapter + secondary U-Net encoder + fusion layers -> HintModulation.

    Build it with ``HintEncoder.from_unet(unet, fusion="film")`` to copy the main U-Net's encoder;
    ``HintEncoder(unet_config=...)`` alone gives the same architecture with fresh weights (loading).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, unet_config: dict | None = None, fusion: str = "film", film_mode: str = "spatial",
                 timestep_conditioning: bool = False, vae_scale_factor: int = 8,
                 adapter_channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        if unet_config is None:
            raise ConfigError("HintEncoder needs the main U-Net's config (use HintEncoder.from_unet)")
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        if film_mode not in FILM_MODES:
            raise ConfigError(f"unknown film_mode {film_mode!r}; choose one of {FILM_MODES}")
        latent_channels = unet_config["out_channels"]
        # A U-Net of the main one's layout whose decoder is removed: conv_in (mask, masked latent + hint),
        # time embedding (kept only with timestep conditioning), down blocks and mid block.
        encoder = UNet2DConditionModel.from_config({**unet_config, "in_channels": latent_channels + 1})
        check_unet_supported(encoder)
        time_embed_dim = encoder.time_embedding.linear_2.out_features
        channels = skip_channels(encoder)
        for name in ("up_blocks", "conv_norm_out", "conv_act", "conv_out"):
            delattr(encoder, name)
        if not timestep_conditioning:
            del encoder.time_embedding
            self.time_embed = nn.Parameter(torch.zeros(1, time_embed_dim))
        self.encoder = encoder
        self.adapter = HintAdapter(latent_channels, vae_scale_factor, tuple(adapter_channels))
        outputs = 2 if fusion == "film" else 1
        if fusion == "film" and film_mode == "channel":
            layers = [nn.Linear(c, outputs * c) for c in channels]
        else:
            layers = [nn.Conv2d(c, outputs * c, 1) for c in channels]
        for layer in layers:  # zero init: FiLM starts as the identity, addition as + 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.fusion_layers = nn.ModuleList(layers)

    @classmethod
    def from_unet(cls, unet: UNet2DConditionModel, fusion: str = "film", film_mode: str = "spatial",
                  timestep_conditioning: bool = False, vae_scale_factor: int = 8,
                  adapter_channels: tuple[int, ...] = (16, 32, 64)) -> HintEncoder:
        """A hint encoder whose secondary encoder is a copy of ``unet``'s conv_in (its mask and
        masked-latent channels), down blocks, mid block and (with timestep conditioning) time embedding."""
        check_unet_supported(unet)
        model = cls(unet_init_config(unet), fusion=fusion, film_mode=film_mode,
                    timestep_conditioning=timestep_conditioning, vae_scale_factor=vae_scale_factor,
                    adapter_channels=tuple(adapter_channels))
        source = unet.state_dict()
        target = model.encoder.state_dict()
        latent_channels = unet.config.out_channels
        copied = {}
        for key in target:
            if key == "conv_in.weight":
                copied[key] = source[key][:, latent_channels:].clone()
            else:
                copied[key] = source[key].clone()
        model.encoder.load_state_dict(copied, strict=True)
        if not timestep_conditioning:
            with torch.no_grad():
                sample = torch.zeros(1, unet.config.in_channels, 1, 1, dtype=unet.dtype, device=unet.device)
                model.time_embed.copy_(unet_time_embedding(unet, sample, torch.zeros(1, dtype=torch.long)))
        if unet.dtype != model.dtype or unet.device != model.device:
            model = model.to(device=unet.device, dtype=unet.dtype)
        return model

    def features(self, masked_latents: torch.Tensor, mask: torch.Tensor, hint: torch.Tensor,
                 encoder_hidden_states: torch.Tensor, timestep=None) -> tuple[torch.Tensor, ...]:
        """Hint-encoder features at every skip level plus the mid block (13 for SD-1.5).

        ``masked_latents`` (B, 4, h, w) scaled VAE latents, ``mask`` (B, 1, h, w), ``hint`` (B, 3, H, W)
        in [-1, 1], ``encoder_hidden_states`` the reference tokens; ``timestep`` only with
        ``timestep_conditioning``.
        """
        dtype = masked_latents.dtype
        sample = inpaint_channels(mask, masked_latents + self.adapter(hint.to(dtype)))
        if self.config.timestep_conditioning:
            if timestep is None:
                raise ConfigError("this HintEncoder was built with timestep_conditioning=True: pass the timestep")
            emb = unet_time_embedding(self.encoder, sample, timestep)
        else:
            emb = self.time_embed.to(sample.dtype).expand(sample.shape[0], -1)
        skips, mid = unet_encode(self.encoder, sample, emb, encoder_hidden_states)
        return (*skips, mid)

    def modulation(self, features: tuple[torch.Tensor, ...]) -> HintModulation:
        """Turn hint features into FiLM (scale, shift) or addition residuals for the main U-Net."""
        if self.config.fusion == "add":
            return HintModulation(tuple(layer(f) for layer, f in zip(self.fusion_layers, features)))
        scales, shifts = [], []
        for layer, f in zip(self.fusion_layers, features):
            if self.config.film_mode == "channel":
                params = layer(f.mean(dim=(2, 3)))[:, :, None, None]
            else:
                params = layer(f)
            delta, shift = params.chunk(2, dim=1)
            scales.append(1.0 + delta)
            shifts.append(shift)
        return HintModulation(tuple(shifts), tuple(scales))

    def forward(self, masked_latents: torch.Tensor, mask: torch.Tensor, hint: torch.Tensor,
                encoder_hidden_states: torch.Tensor, timestep=None) -> HintModulation:
        """``modulation(features(...))``: what ``dtc_unet_forward`` fuses into the main U-Net."""
        return self.modulation(self.features(masked_latents, mask, hint, encoder_hidden_states, timestep))
