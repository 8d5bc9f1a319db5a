"""The world encoder as a judge: attribute accuracy, identity accuracy, reference similarity,
and the features KID and FID read.

Identity accuracy is top-1 retrieval among caption twins: the try-on's crop is compared (cosine
of identity embeddings: the motif's shape and colours as the judge reads them) with the catalog
shots of the ``N_MOTIFS`` items that share its caption, and it hits when its own item is nearest.
Chance is 1 / N_MOTIFS; a caption alone cannot beat it, since twins differ only in their motif,
which no caption names.

Every score is measured on an *item crop*: the square around the mask's bounding box, resized to
the encoder's input size, so the judge sees the generated item and not the whole scene.
Metric names say what they measure: "FID on world-encoder features", not "FID".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchmetrics.image.fid import FrechetInceptionDistance

from tryon_lab.data.attributes import (
    ATTRIBUTE_NAMES,
    N_MOTIFS,
    ItemSpec,
    attribute_labels,
    caption_twins,
)
from tryon_lab.data.datasets import image_to_tensor, square_crop
from tryon_lab.models.world_encoder import WorldEncoder


def item_crop(image: Image.Image, mask: np.ndarray, size: int = 64) -> torch.Tensor:
    """The judge's view of a try-on, cut as ItemCropDataset cuts its training crops: the square
    around ``mask``'s box, resized; returns (3, size, size) in [-1, 1]."""
    return image_to_tensor(square_crop(image, mask).resize((size, size), Image.Resampling.BICUBIC))


def reference_crop(reference: Image.Image, size: int = 64) -> torch.Tensor:
    """A catalog image as the judge sees it: the whole picture resized; (3, size, size) in [-1, 1]."""
    return image_to_tensor(reference.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))


class _Features(torch.nn.Module):
    """Adapter giving torchmetrics' FID the encoder's pooled features for uint8 images."""

    def __init__(self, encoder: WorldEncoder):
        super().__init__()
        self.encoder = encoder
        self.num_features = encoder.config.channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(images.float() / 127.5 - 1.0)


class WorldJudge:
    """Scores generated try-ons with a trained WorldEncoder."""

    chance_identity = 1.0 / N_MOTIFS

    def __init__(self, encoder: WorldEncoder):
        self.encoder = encoder.eval()
        self.size = encoder.config.image_size
        self._galleries: dict[tuple[int, int, str], torch.Tensor] = {}

    @classmethod
    def load(cls, path: str | Path) -> WorldJudge:
        """Load the encoder saved at ``path`` (a ``save_pretrained`` folder)."""
        return cls(WorldEncoder.from_pretrained(path))

    def crops(self, images: Sequence[Image.Image], masks: Sequence[np.ndarray]) -> torch.Tensor:
        """Item crops (B, 3, S, S) of each image at its mask."""
        return torch.stack([item_crop(img, m, self.size) for img, m in zip(images, masks)])

    @torch.no_grad()
    def attribute_hits(self, images, masks, items: Sequence[ItemSpec]) -> dict[str, np.ndarray]:
        """Per try-on, whether its crop is recognised as the intended item: per attribute and "all" three."""
        predicted = self.encoder.predict(self.crops(images, masks))
        truth = [attribute_labels(item) for item in items]
        hits = {name: np.array([int(predicted[name][i]) == t[name] for i, t in enumerate(truth)]) for name in ATTRIBUTE_NAMES}
        hits["all"] = np.logical_and.reduce([hits[n] for n in ATTRIBUTE_NAMES])
        return hits

    def attribute_accuracy(self, images, masks, items: Sequence[ItemSpec]) -> dict[str, float]:
        """Fraction of try-ons whose crop is recognised as the intended item, per attribute and for all three."""
        return {name: float(h.mean()) for name, h in self.attribute_hits(images, masks, items).items()}

    @torch.no_grad()
    def identity_hits(self, images, masks, items: Sequence[ItemSpec], world) -> np.ndarray:
        """Per try-on, whether its crop's identity embedding is nearest its own item's catalog shot
        among the catalog shots of the item's caption twins (``world.catalog_image``, plain)."""
        queries = self.encoder.identify(self.crops(images, masks))
        hits = []
        for query, item in zip(queries, items):
            gallery = self._gallery(item, world)
            hits.append(int((gallery @ query).argmax()) == item.motif)
        return np.array(hits, dtype=bool)

    def _gallery(self, item: ItemSpec, world) -> torch.Tensor:
        key = (world.seed, world.resolution, caption_twins(item)[0].item_id)
        if key not in self._galleries:
            shots = [reference_crop(world.catalog_image(twin), self.size) for twin in caption_twins(item)]
            self._galleries[key] = self.encoder.identify(torch.stack(shots))
        return self._galleries[key]

    @torch.no_grad()
    def reference_similarities(self, images, masks, references: Sequence[Image.Image]) -> np.ndarray:
        """Per try-on, the cosine between world-encoder embeddings of its crop and its catalog reference."""
        generated = self.encoder.embed(self.crops(images, masks))
        refs = self.encoder.embed(torch.stack([reference_crop(r, self.size) for r in references]))
        return (generated * refs).sum(-1).numpy()

    def reference_similarity(self, images, masks, references: Sequence[Image.Image]) -> float:
        """Mean cosine between world-encoder embeddings of each try-on crop and its catalog reference."""
        return float(self.reference_similarities(images, masks, references).mean())

    def _uint8_crops(self, images, masks) -> torch.Tensor:
        return ((self.crops(images, masks) + 1.0) * 127.5).round().to(torch.uint8)

    @torch.no_grad()
    def features(self, images, masks) -> np.ndarray:
        """World-encoder features (N, d) of the item crops, as FID sees them: the input to
        ``metrics.stats.kid`` / ``fid`` / ``noise_floor``."""
        return _Features(self.encoder)(self._uint8_crops(images, masks)).numpy()

    @torch.no_grad()
    def fid(self, real_images, real_masks, fake_images, fake_masks) -> float:
        """FID on world-encoder features between real and generated item crops (torchmetrics)."""
        metric = FrechetInceptionDistance(feature=_Features(self.encoder), normalize=False)
        for images, masks, real in ((real_images, real_masks, True), (fake_images, fake_masks, False)):
            metric.update(self._uint8_crops(images, masks), real=real)
        return float(metric.compute())
