"""Recipe: train the world encoder (the judge) to name an item's category, colour and pattern,
and to tell it from its caption twins.

Inputs are item crops from try-on targets and catalog references, so the same network can judge
a generated try-on region and a reference image. Loss: the sum of three attribute
cross-entropies plus an identity loss: a cosine softmax with a margin (CosFace) over one learnt
proxy per train item, so a crop's identity embedding lands nearest its own item's proxy and
away from every other train item's, its caption twins included. Only train items have proxies:
val and test items stay unseen, and identity accuracy on them measures what generalises (a new
motif, told apart from its twins).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tryon_lab.data.attributes import ATTRIBUTE_NAMES, all_items, global_item_index
from tryon_lab.data.splits import item_split
from tryon_lab.errors import SplitError
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


class JudgeObjective(torch.nn.Module):
    """Attribute cross-entropies plus the identity loss (CosFace over train-item proxies).

    ``batch`` is an ItemCropDataset batch of train items; returns (loss, training accuracies).
    """

    def __init__(self, encoder: WorldEncoder, scale: float = 16.0, margin: float = 0.2):
        super().__init__()
        self.attributes = AttributeObjective(encoder)
        self.encoder, self.scale, self.margin = encoder, scale, margin
        train = [global_item_index(item) for item in all_items() if item_split(item) == "train"]
        classes = torch.full((len(all_items()),), -1, dtype=torch.int64)
        classes[train] = torch.arange(len(train))
        self.register_buffer("classes", classes, persistent=False)
        self.proxies = torch.nn.Parameter(torch.randn(len(train), encoder.config.identity_dim))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (attribute loss + identity loss, per-attribute and identity training accuracy)."""
        loss, logs = self.attributes(batch)
        target = self.classes[batch["item"]]
        if bool((target < 0).any()):
            raise SplitError("the judge's identity loss got a val or test item: it trains on train items only")
        cosine = self.encoder.identify(batch["image"]) @ F.normalize(self.proxies, dim=-1).T
        margin = F.one_hot(target, cosine.shape[-1]) * self.margin
        identity = F.cross_entropy(self.scale * (cosine - margin), target)
        logs["identity_loss"] = float(identity.detach())
        logs["acc_identity"] = float((cosine.argmax(-1) == target).float().mean())
        return loss + identity, logs


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
    """Train (or resume) the world encoder (attributes and identity) on train-split crops;
    returns it in eval mode."""
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
                        checkpoint_every=settings.checkpoint_every, warmup_steps=50, weight_decay=1e-4,
                        anneal=True)
    run_loop(accelerator, run_dir, JudgeObjective(encoder), batches, loop, progress_desc="world encoder")
    return encoder.eval()
