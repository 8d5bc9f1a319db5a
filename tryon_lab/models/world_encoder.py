"""The world encoder: a small CNN that recognises an item's category, colour, pattern and motif.

It is the course's judge. Its pooled features feed KID and FID ("KID on world-encoder
features"), its normalised embedding gives reference similarity, its heads give attribute
accuracy, and its motif network tells an item from its caption twins (identity accuracy).

The motif network is a second, separate stack of conv stages that names the small emblem twins
differ by: its shape and its two colours. Its identity embedding is those three predicted
distributions, so two crops match when the judge reads the same motif on them. It generalises to
items no training saw because it learns to read shapes and colours, not items: one embedding per
train item (tried first) learnt the train items themselves and did worse on val, and so did
training on the items' own motifs, which the network could recall from caption and corner; it
trains on train items wearing random motifs. Max pooling finds the motif wherever it sits on the
item. No model is ever trained against the judge (the perceptual loss uses a separately trained
network).
Input: item crops, float (B, 3, S, S) in [-1, 1] with S = ``image_size`` (64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from tryon_lab.data.attributes import ATTRIBUTE_NAMES, num_classes
from tryon_lab.data.render.items import MOTIF_FACTORS, MOTIF_SHAPES


def _stages(channels: tuple[int, ...]) -> nn.Sequential:
    """Conv stages, each halving the side: conv (stride 2), GroupNorm, SiLU, conv, GroupNorm, SiLU."""
    layers, previous = [], 3
    for width in channels:
        layers += [
            nn.Conv2d(previous, width, 3, stride=2, padding=1),
            nn.GroupNorm(8, width),
            nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(8, width),
            nn.SiLU(),
        ]
        previous = width
    return nn.Sequential(*layers)


class WorldEncoder(ModelMixin, ConfigMixin):
    """Attribute network: conv stages -> global average pool -> embedding -> one linear head per
    attribute. Motif network: its own conv stages -> global max and average pool -> hidden layer
    -> one linear head per motif factor (``MOTIF_FACTORS``)."""

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
        motif_channels: tuple[int, ...] = (32, 64, 128, 128),
        motif_hidden: int = 256,
        num_motif_shapes: int = len(MOTIF_SHAPES),
    ):
        super().__init__()
        self.backbone = _stages(channels)
        self.project = nn.Linear(channels[-1], embed_dim)
        self.heads = nn.ModuleDict(
            {
                "category": nn.Linear(embed_dim, num_categories),
                "colour": nn.Linear(embed_dim, num_colours),
                "pattern": nn.Linear(embed_dim, num_patterns),
            }
        )
        self.motif_backbone = _stages(motif_channels)
        self.motif_project = nn.Sequential(nn.Linear(2 * motif_channels[-1], motif_hidden), nn.SiLU())
        # a motif's colours are drawn from the world's colours, so they share the colour vocabulary
        self.motif_heads = nn.ModuleDict({"shape": nn.Linear(motif_hidden, num_motif_shapes),
                                          "fill": nn.Linear(motif_hidden, num_colours),
                                          "inner": nn.Linear(motif_hidden, num_colours)})

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

    def motif_logits(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per motif factor name (``shape``, ``fill``, ``inner``), each (B, classes)."""
        hidden = self.motif_backbone(images)
        hidden = self.motif_project(torch.cat([hidden.amax(dim=(2, 3)), hidden.mean(dim=(2, 3))], dim=1))
        return {name: self.motif_heads[name](hidden) for name in MOTIF_FACTORS}

    def identify(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length identity embeddings (B, shapes + 2 colours): the square roots of the motif
        factors' predicted distributions, side by side. The cosine of two is the mean over factors
        of how much the distributions overlap (Bhattacharyya coefficient): 1 when the judge reads
        the same shape and colours on both crops, 0 when it reads none of them alike."""
        roots = [logits.softmax(dim=-1).sqrt() for logits in self.motif_logits(images).values()]
        return torch.cat(roots, dim=-1) / len(roots) ** 0.5

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute name (``category``, ``colour``, ``pattern``)."""
        hidden = F.silu(self.project(self.features(images)))
        return {name: self.heads[name](hidden) for name in ATTRIBUTE_NAMES}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predicted class index per attribute (B,)."""
        return {name: logits.argmax(dim=-1) for name, logits in self(images).items()}
