"""The world encoder: a small CNN that recognises an item's category, colour and pattern.

It is the course's judge. Its pooled features feed KID and FID ("KID on world-encoder
features"), its normalised embedding gives reference similarity, its heads give attribute
accuracy, and its identity embedding tells an item from its caption twins (identity accuracy).
The identity embedding reads the final feature map unpooled: a motif's place on the item is part
of what tells twins apart, and global pooling would discard it. No model is ever trained against
the judge (the perceptual loss uses a separately trained network).
Input: item crops, float (B, 3, S, S) in [-1, 1] with S = ``image_size`` (64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tryon_lab.data.attributes import ATTRIBUTE_NAMES, num_classes


class WorldEncoder(ModelMixin, ConfigMixin):
    """Conv stages (stride 2) -> global average pool -> embedding -> one linear head per attribute;
    the final feature map, flattened -> a small MLP -> the identity embedding."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        image_size: int = 64,
        channels: tuple[int, ...] = (32, 64, 128, 128),
        embed_dim: int = 128,
        num_categories: int = 14,
        num_colours: int = 10,
        num_patterns: int = 6,
        identity_dim: int = 64,
    ):
        super().__init__()
        stages, previous = [], 3
        for width in channels:
            stages += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.GroupNorm(8, width),
                nn.SiLU(),
            ]
            previous = width
        self.backbone = nn.Sequential(*stages)
        self.project = nn.Linear(previous, embed_dim)
        cells = (image_size // 2 ** len(channels)) ** 2
        self.identity = nn.Sequential(nn.Flatten(), nn.Linear(previous * cells, 256), nn.SiLU(),
                                      nn.Linear(256, identity_dim))
        self.heads = nn.ModuleDict(
            {
                "category": nn.Linear(embed_dim, num_categories),
                "colour": nn.Linear(embed_dim, num_colours),
                "pattern": nn.Linear(embed_dim, num_patterns),
            }
        )

    @classmethod
    def for_world(cls, **overrides) -> WorldEncoder:
        """Return a new encoder whose heads match the world's attribute vocabulary."""
        counts = num_classes()
        return cls(num_categories=counts["category"], num_colours=counts["colour"],
                   num_patterns=counts["pattern"], **overrides)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features (B, C): the feature space for FID."""
        return self.backbone(images).mean(dim=(2, 3))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings (B, embed_dim): cosine between them is reference similarity."""
        return F.normalize(self.project(self.features(images)), dim=-1)

    def identify(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length identity embeddings (B, identity_dim): caption twins lie apart, the same
        item on a person and in its catalog shot close together."""
        return F.normalize(self.identity(self.backbone(images)), dim=-1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute name (``category``, ``colour``, ``pattern``)."""
        hidden = F.silu(self.project(self.features(images)))
        return {name: self.heads[name](hidden) for name in ATTRIBUTE_NAMES}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predicted class index per attribute (B,)."""
        return {name: logits.argmax(dim=-1) for name, logits in self(images).items()}
