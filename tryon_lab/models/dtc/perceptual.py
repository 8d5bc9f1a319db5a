"""The perceptual-loss network: a VGG-style CNN whose first five layers' feature maps DTC compares.

It stands in for the paper's ImageNet VGG and is trained without labels
(``tryon_lab.training.dtc.perceptual``: SimCLR's InfoNCE on two augmented views of a train-split
crop), so nothing of the judge (the world encoder: its attribute labels, identities and objective)
shapes what the perceptual loss rewards. The projection head exists only for that training; the
loss reads the five feature maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class PerceptualNet(ModelMixin, ConfigMixin):
    """Five 3x3 conv + ReLU layers (max-pool after the 2nd and 4th), then, for its own
    self-supervised training only, global pooling and a two-layer projection head to
    ``projection_dim``."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, channels: tuple[int, ...] = (32, 32, 64, 64, 128), pool_after: tuple[int, ...] = (1, 3),
                 projection_dim: int = 64):
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers.append(nn.Conv2d(previous, width, 3, padding=1))
            previous = width
        self.convs = nn.ModuleList(layers)
        self.projection = nn.Sequential(nn.Linear(previous, previous), nn.ReLU(), nn.Linear(previous, projection_dim))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The feature map after each conv + ReLU (five of them) for images (B, 3, H, W) in [-1, 1]."""
        maps, hidden = [], images.to(self.dtype)
        for i, conv in enumerate(self.convs):
            hidden = F.relu(conv(hidden))
            maps.append(hidden)
            if i in self.config.pool_after:
                hidden = F.max_pool2d(hidden, 2)
        return maps

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised projections (B, projection_dim): what the contrastive objective compares."""
        pooled = self.features(images)[-1].mean(dim=(2, 3))
        return F.normalize(self.projection(pooled), dim=-1)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-sample perceptual distance (B,) between image batches a and b in [-1, 1]: LPIPS-style,
        the mean squared difference of channel-normalised feature maps, averaged over the five layers."""
        total = 0.0
        for fa, fb in zip(self.features(a), self.features(b)):
            diff = F.normalize(fa, dim=1, eps=1e-6) - F.normalize(fb, dim=1, eps=1e-6)
            total = total + diff.pow(2).sum(dim=1).mean(dim=(1, 2))
        return total / len(self.convs)
