"""Diffuse to Choose (DTC): reference tokens, the collage hint, a hint encoder and FiLM skip fusion.

The parts, as in Seyfioglu et al. 2024 (Diffuse to Choose):

- ``ReferenceEncoder``: the reference (catalog) image -> N tokens of the U-Net's
  ``cross_attention_dim``, replacing the text prompt (Paint-by-Example style). DTC uses a frozen
  DINOv2 here; no DINOv2 weights exist in this project, so this small CNN + transformer layer is
  trained with the U-Net. It holds learned ``null_tokens`` for classifier-free guidance.
- ``HintEncoder``: the hint (the reference pasted into the mask's largest rectangle on an empty
  image, ``tryon_lab.data.masks.make_collage``) goes through a 4-layer CNN adapter to latent size
  and is added to the masked-image latent; with the latent mask this feeds a secondary encoder,
  a copy of the main U-Net's conv_in, down blocks and mid block (weights copied by
  ``HintEncoder.from_unet``). At every skip connection (the conv_in output, each resnet and
  downsampler output, and the mid block: 13 for SD-1.5) a zero-initialised 1x1 conv turns the hint
  features into FiLM parameters, so ``skip * (1 + dgamma) + beta`` is exactly ``skip`` at init and
  a DTC model starts from the base model's behaviour. ``fusion="add"`` is the ablation's
  ControlNet-style direct addition (``skip + zero_conv(h)``).
- ``dtc_unet_forward``: the main U-Net run with the hint's conditioning. Direct addition goes
  through diffusers' own ``down_block_additional_residuals`` / ``mid_block_additional_residual``;
  FiLM needs the skips themselves, so the U-Net is run in two halves (``unet_encode`` ->
  modulate every skip -> ``unet_decode``) with the U-Net's own blocks.

Timestep: the hint encoder's input (mask + masked latent + adapted hint, and the reference
tokens) never depends on the noisy latent, and by default it does not take the timestep either
(``timestep_conditioning=False``: its resnets get a learned constant time embedding, initialised
from the main U-Net's embedding of t=0). Its FiLM parameters are then computed once per image
and reused at every sampling step. ``timestep_conditioning=True`` copies the main time embedding
instead and must recompute every step; the per-step cost of both is measured by
``tryon_lab.pipelines.dtc.measure_step_times``.

``PerceptualNet`` is the perceptual-loss network (stand-in for VGG's first five layers), trained
separately from, and never replaced by, the world encoder that judges the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tryon_lab.errors import ConfigError
from tryon_lab.models.channels import inpaint_channels

FUSIONS = ("film", "add")
FILM_MODES = ("spatial", "channel")
ADAPTER_LAYERS = 4
EMPTY_HINT = -1.0  # the hint's empty background (black) in [-1, 1]; an all-empty hint means "no hint"


# --------------------------------------------------------------------------------------------
# The main U-Net in two halves
# --------------------------------------------------------------------------------------------

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
class HintConditioning:
    """What the hint contributes to the main U-Net, one entry per skip connection plus the mid block.

    FiLM: ``skip * scales[i] + shifts[i]``; direct addition (``scales`` None): ``skip + shifts[i]``.
    Tensors are (B, C, h, w) (spatial FiLM, addition) or (B, C, 1, 1) (channel FiLM). Depends only
    on the image, mask and reference, so a pipeline computes it once and reuses it every step.
    """

    shifts: tuple[torch.Tensor, ...]
    scales: tuple[torch.Tensor, ...] | None = None

    def __len__(self) -> int:
        return len(self.shifts)

    def cat(self, other: "HintConditioning") -> "HintConditioning":
        """Concatenate along the batch (e.g. unconditional then conditional, for guidance)."""
        shifts = tuple(torch.cat([a, b]) for a, b in zip(self.shifts, other.shifts))
        if self.scales is None:
            return HintConditioning(shifts)
        return HintConditioning(shifts, tuple(torch.cat([a, b]) for a, b in zip(self.scales, other.scales)))


def dtc_unet_forward(unet: UNet2DConditionModel, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor,
                     conditioning: HintConditioning | None = None) -> torch.Tensor:
    """The main U-Net's noise prediction with the hint's ``conditioning`` fused into its skips.

    ``conditioning`` None is the plain U-Net (the Paint-by-Example-style baseline); direct
    addition uses diffusers' ControlNet residual inputs; FiLM runs the U-Net in two halves.
    """
    if conditioning is None:
        return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
    if conditioning.scales is None:
        return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                    down_block_additional_residuals=list(conditioning.shifts[:-1]),
                    mid_block_additional_residual=conditioning.shifts[-1], return_dict=False)[0]
    emb = unet_time_embedding(unet, sample, timestep)
    skips, hidden = unet_encode(unet, sample, emb, encoder_hidden_states)
    if len(skips) + 1 != len(conditioning):
        raise ConfigError(f"hint conditioning has {len(conditioning)} entries but the U-Net has {len(skips)} skips + mid")
    skips = tuple(s * g + b for s, g, b in zip(skips, conditioning.scales, conditioning.shifts))
    hidden = hidden * conditioning.scales[-1] + conditioning.shifts[-1]
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


# --------------------------------------------------------------------------------------------
# The reference encoder (cross-attention tokens)
# --------------------------------------------------------------------------------------------


def _conv_stage(in_ch: int, out_ch: int, groups: int, stride: int = 2) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), nn.GroupNorm(min(groups, out_ch), out_ch), nn.SiLU(),
        nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.GroupNorm(min(groups, out_ch), out_ch), nn.SiLU(),
    )


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a batch (B, 3, H, W) to ``size`` square (antialiased bilinear); a no-op at that size."""
    if tuple(images.shape[-2:]) == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ReferenceEncoder(ModelMixin, ConfigMixin):
    """Reference image (B, 3, H, W) in [-1, 1] -> tokens (B, N, cross_attention_dim).

    Conv stages (stride 2 each) to a grid of ``image_size / 2**len(channels)`` cells; one token per
    cell plus a pooled (CLS-like) token; one linear layer to ``cross_attention_dim`` (DTC's "single
    FC layer" after DINOv2), learned positions, ``transformer_layers`` self-attention layers, and a
    final LayerNorm. ``null_tokens`` stand for "no reference" (guidance dropout, unconditional pass).
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, cross_attention_dim: int = 768, image_size: int = 64, channels: tuple[int, ...] = (32, 64, 128),
                 transformer_layers: int = 1, num_heads: int = 4, norm_num_groups: int = 8):
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ConfigError(f"ReferenceEncoder: image_size {image_size} is not divisible by 2**{len(channels)}")
        stages, previous = [], 3
        for width in channels:
            stages.append(_conv_stage(previous, width, norm_num_groups))
            previous = width
        self.backbone = nn.Sequential(*stages)
        self.grid = image_size // 2 ** len(channels)
        self.num_tokens = self.grid * self.grid + 1
        self.project = nn.Linear(previous, cross_attention_dim)
        self.positions = nn.Parameter(torch.randn(1, self.num_tokens, cross_attention_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(cross_attention_dim, num_heads, dim_feedforward=2 * cross_attention_dim,
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.mixer = nn.ModuleList([_clone_layer(layer) for _ in range(transformer_layers)])
        self.norm = nn.LayerNorm(cross_attention_dim)
        self.null_tokens = nn.Parameter(torch.zeros(1, self.num_tokens, cross_attention_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N, D) of reference images in [-1, 1] (any size; resized to ``image_size``)."""
        features = self.backbone(resize_images(images.to(self.dtype), self.config.image_size))
        cells = features.flatten(2).transpose(1, 2)  # (B, grid*grid, C)
        tokens = torch.cat([cells.mean(dim=1, keepdim=True), cells], dim=1)
        hidden = self.project(tokens) + self.positions
        for layer in self.mixer:
            hidden = layer(hidden)
        return self.norm(hidden)

    def null(self, batch: int) -> torch.Tensor:
        """The unconditional tokens for ``batch`` samples (B, N, D)."""
        return self.null_tokens.expand(batch, -1, -1)

    def tokens(self, images: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens of ``images``, replaced by the null tokens where the bool (B,) ``drop`` is True."""
        tokens = self(images)
        if drop is None:
            return tokens
        return torch.where(drop.to(tokens.device)[:, None, None], self.null(len(tokens)).to(tokens.dtype), tokens)


def _clone_layer(layer: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(layer)


# --------------------------------------------------------------------------------------------
# The hint path: adapter, secondary encoder, fusion layers
# --------------------------------------------------------------------------------------------


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
        return self.layers(hint)


class HintEncoder(ModelMixin, ConfigMixin):
    """The DTC hint path: adapter + secondary U-Net encoder + fusion layers -> HintConditioning.

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
                  adapter_channels: tuple[int, ...] = (16, 32, 64)) -> "HintEncoder":
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

    def conditioning(self, features: tuple[torch.Tensor, ...]) -> HintConditioning:
        """Turn hint features into FiLM (scale, shift) or addition residuals for the main U-Net."""
        if self.config.fusion == "add":
            return HintConditioning(tuple(layer(f) for layer, f in zip(self.fusion_layers, features)))
        scales, shifts = [], []
        for layer, f in zip(self.fusion_layers, features):
            if self.config.film_mode == "channel":
                params = layer(f.mean(dim=(2, 3)))[:, :, None, None]
            else:
                params = layer(f)
            delta, shift = params.chunk(2, dim=1)
            scales.append(1.0 + delta)
            shifts.append(shift)
        return HintConditioning(tuple(shifts), tuple(scales))

    def forward(self, masked_latents: torch.Tensor, mask: torch.Tensor, hint: torch.Tensor,
                encoder_hidden_states: torch.Tensor, timestep=None) -> HintConditioning:
        """``conditioning(features(...))``: what ``dtc_unet_forward`` fuses into the main U-Net."""
        return self.conditioning(self.features(masked_latents, mask, hint, encoder_hidden_states, timestep))


# --------------------------------------------------------------------------------------------
# The perceptual network (VGG stand-in)
# --------------------------------------------------------------------------------------------


class PerceptualNet(ModelMixin, ConfigMixin):
    """A VGG-style CNN: five 3x3 conv + ReLU layers (max-pool after the 2nd and 4th), global
    pooling and one linear head per attribute for its own training. The perceptual loss compares
    the five layers' feature maps, like DTC's "first five layers" of VGG.
    It is trained on its own (``tryon_lab.training.dtc.train_perceptual_net``), on a different
    world seed than the world encoder, and is never the judge."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: tuple[int, ...] = (32, 32, 64, 64, 128), pool_after: tuple[int, ...] = (1, 3),
                 num_categories: int = 14, num_colours: int = 10, num_patterns: int = 6):
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers.append(nn.Conv2d(previous, width, 3, padding=1))
            previous = width
        self.convs = nn.ModuleList(layers)
        self.heads = nn.ModuleDict({"category": nn.Linear(previous, num_categories),
                                    "colour": nn.Linear(previous, num_colours),
                                    "pattern": nn.Linear(previous, num_patterns)})

    @classmethod
    def for_world(cls, **overrides) -> "PerceptualNet":
        """A new network whose heads match the world's attribute vocabulary."""
        from tryon_lab.data.attributes import num_classes

        counts = num_classes()
        return cls(num_categories=counts["category"], num_colours=counts["colour"], num_patterns=counts["pattern"],
                   **overrides)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after each conv + ReLU (five of them) for images in [-1, 1]."""
        maps, hidden = [], images.to(self.dtype)
        for i, conv in enumerate(self.convs):
            hidden = F.relu(conv(hidden))
            maps.append(hidden)
            if i in self.config.pool_after:
                hidden = F.max_pool2d(hidden, 2)
        return maps

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Attribute logits (its own training objective only)."""
        pooled = self.features(images)[-1].mean(dim=(2, 3))
        return {name: head(pooled) for name, head in self.heads.items()}

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-sample perceptual distance (B,): LPIPS-style, the mean squared difference of
        channel-normalised feature maps, averaged over the five layers."""
        total = 0.0
        for fa, fb in zip(self.features(a), self.features(b)):
            diff = F.normalize(fa, dim=1, eps=1e-6) - F.normalize(fb, dim=1, eps=1e-6)
            total = total + diff.pow(2).sum(dim=1).mean(dim=(1, 2))
        return total / len(self.convs)
