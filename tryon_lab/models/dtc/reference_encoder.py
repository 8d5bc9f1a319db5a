"""The reference encoder: a catalog image -> cross-attention tokens (Paint-by-Example style).

DTC uses a frozen DINOv2 here; no DINOv2 weights exist in this project, so this small CNN +
transformer layer is trained with the U-Net. It holds learned ``null_tokens`` for classifier-free
guidance.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tryon_lab.errors import ConfigError


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
        self.mixer = nn.ModuleList([copy.deepcopy(layer) for _ in range(transformer_layers)])
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
