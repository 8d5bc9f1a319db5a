"""Recipe: train the world encoder (the judge) to name an item's category, colour and pattern.

Inputs are item crops from try-on targets and catalog references, so the same network can judge
a generated try-on region and a reference image. Loss: the sum of three cross-entropies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tryon_lab.data.attributes import ATTRIBUTE_NAMES
from tryon_lab.models.world_encoder import WorldEncoder
from tryon_lab.training.loop import LoopSettings


class AttributeObjective(torch.nn.Module):
    """Summed cross-entropy of a classifier's attribute heads (the world encoder's, or the
    perceptual network's) on a batch of labelled crops."""

    def __init__(self, encoder: torch.nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, per-attribute training accuracy)."""
        logits = self.encoder(batch["image"])
        loss = sum(F.cross_entropy(logits[name], batch["labels"][name]) for name in ATTRIBUTE_NAMES)
        accuracy = {f"acc_{name}": float((logits[name].argmax(-1) == batch["labels"][name]).float().mean())
                    for name in ATTRIBUTE_NAMES}
        return loss, accuracy


@dataclass(frozen=True)
class EncoderSettings:
    """Sizes for one world-encoder run."""

    steps: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    dataset_size: int = 20000
    checkpoint_every: int = 500


@torch.no_grad()
def attribute_accuracy(encoder: WorldEncoder, dataset, batch_size: int = 128) -> dict[str, float]:
    """Accuracy per attribute of ``encoder`` over a labelled crop dataset."""
    correct = {name: 0 for name in ATTRIBUTE_NAMES}
    total = 0
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        predicted = encoder.predict(batch["image"])
        for name in ATTRIBUTE_NAMES:
            correct[name] += int((predicted[name] == batch["labels"][name]).sum())
        total += len(batch["image"])
    return {name: correct[name] / total for name in ATTRIBUTE_NAMES}


def train_world_encoder(run_dir: str | Path, settings: EncoderSettings, resolution: int = 128, seed: int = 0) -> WorldEncoder:
    """Train (or resume) the world encoder on train-split crops; returns it in eval mode."""
    from tryon_lab.data.datasets import ItemCropDataset
    from tryon_lab.data.world import World
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop

    accelerator = make_accelerator(seed)
    world = World(seed=seed, resolution=resolution)
    encoder = WorldEncoder.for_world()
    dataset = ItemCropDataset(world, split="train", length=settings.dataset_size)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
    loop = LoopSettings(steps=settings.steps, learning_rate=settings.learning_rate,
                        checkpoint_every=settings.checkpoint_every, warmup_steps=50, weight_decay=1e-4)
    run_loop(accelerator, run_dir, AttributeObjective(encoder), batches, loop, progress_desc="world encoder")
    return encoder.eval()
