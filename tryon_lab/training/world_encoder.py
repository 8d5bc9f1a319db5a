"""Recipe: train the world encoder (the judge) to name an item's category, colour and pattern,
and to read the motif that tells it from its caption twins.

Inputs are item crops from try-on targets and catalog references, so the same network can judge
a generated try-on region and a reference image. Loss: the sum of three attribute
cross-entropies (attribute network) plus three motif cross-entropies (motif network: the motif's
shape, fill colour and inner colour). Every crop's item wears a motif drawn at random, never the
design of a val or test item, and the labels are that motif's: the network must read motifs, as
it cannot recall an item's own one from caption and corner. Val and test items stay unseen, and
identity accuracy on them measures what generalises (shapes and colours learnt on train items,
read on a new one).
The two networks share no weights, so ``--init`` can keep a trained attribute network, frozen,
and continue the motif network: the judge's attribute scores, reference similarity and KID
features stay exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tryon_lab.data.attributes import ATTRIBUTE_NAMES, all_items
from tryon_lab.data.render.items import MOTIF_FACTORS
from tryon_lab.data.splits import item_split
from tryon_lab.errors import ConfigError, SplitError
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


class MotifObjective(torch.nn.Module):
    """Summed cross-entropy of the motif network's heads (shape, fill, inner colour) on a batch
    of train-item crops, against the motifs painted on them (the batch's ``motif``)."""

    def __init__(self, encoder: WorldEncoder):
        super().__init__()
        self.encoder = encoder
        train = torch.tensor([item_split(item) == "train" for item in all_items()])
        self.register_buffer("is_train", train, persistent=False)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, per-factor training accuracy)."""
        if not bool(self.is_train[batch["item"]].all()):
            raise SplitError("the judge's motif loss got a val or test item: it trains on train items only")
        target = batch["motif"]
        logits = self.encoder.motif_logits(batch["image"])
        loss = sum(F.cross_entropy(logits[name], target[:, k]) for k, name in enumerate(MOTIF_FACTORS))
        accuracy = {f"acc_motif_{name}": float((logits[name].argmax(-1) == target[:, k]).float().mean())
                    for k, name in enumerate(MOTIF_FACTORS)}
        return loss, accuracy


class JudgeObjective(torch.nn.Module):
    """The attribute and motif objectives summed; with ``attributes=False`` the motif objective
    alone (the attribute network frozen). Takes an ItemCropDataset batch of train items; returns
    (loss, training accuracies)."""

    def __init__(self, encoder: WorldEncoder, attributes: bool = True):
        super().__init__()
        self.attributes = AttributeObjective(encoder) if attributes else None
        self.motif = MotifObjective(encoder)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (attribute loss + motif loss, per-attribute and per-factor training accuracy)."""
        loss, logs = self.motif(batch)
        if self.attributes is not None:
            attribute_loss, attribute_logs = self.attributes(batch)
            loss, logs = loss + attribute_loss, {**attribute_logs, **logs}
        return loss, logs


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


ATTRIBUTE_NETWORK = ("backbone.", "project.", "heads.")  # parameter names of the attribute network


def continue_judge(folder: str | Path) -> WorldEncoder:
    """Load the judge saved in ``folder`` to train on: its attribute network frozen, its motif
    network trainable; raises ``ConfigError`` if ``folder`` holds no world encoder of this world."""
    from diffusers.utils import SAFETENSORS_WEIGHTS_NAME

    weights = Path(folder) / SAFETENSORS_WEIGHTS_NAME
    if not weights.is_file():
        raise ConfigError(f"--init must name a saved world encoder (with {weights.name}); got {str(folder)!r}")
    saved_class = WorldEncoder.load_config(folder).get("_class_name")
    if saved_class != WorldEncoder.__name__:
        raise ConfigError(f"--init must name a saved world encoder; {folder} holds a {saved_class}")
    encoder = WorldEncoder.from_pretrained(folder)
    wanted = WorldEncoder.for_world().config
    differ = [key for key in ("num_categories", "num_colours", "num_patterns", "num_motif_shapes")
              if encoder.config[key] != wanted[key]]
    if differ:
        raise ConfigError(f"{folder} is a world encoder of another world: its {differ[0]} is "
                          f"{encoder.config[differ[0]]}, this world's {wanted[differ[0]]}")
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad_(not name.startswith(ATTRIBUTE_NETWORK))
    return encoder


def train_world_encoder(run_dir: str | Path, settings: EncoderSettings, resolution: int = 128, seed: int = 0,
                        init: str | Path | None = None) -> WorldEncoder:
    """Train (or resume) the world encoder (attributes and motif) on train-split crops whose
    items wear random motifs; with ``init``, continue that saved judge: its attribute network
    kept frozen, its motif network trained further. Returns the encoder in eval mode."""
    from tryon_lab.data.datasets import ItemCropDataset
    from tryon_lab.data.world import World
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop

    accelerator = make_accelerator(seed)
    world = World(seed=seed, resolution=resolution)
    encoder = WorldEncoder.for_world() if init is None else continue_judge(init)
    dataset = ItemCropDataset(world, split="train", length=settings.dataset_size, random_motifs=True)
    # one worker renders the next batch while the step runs: rendering is half a step on 2 cores
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size, num_workers=1))
    loop = LoopSettings(steps=settings.steps, learning_rate=settings.learning_rate,
                        checkpoint_every=settings.checkpoint_every, warmup_steps=50, weight_decay=1e-4,
                        anneal=True)
    objective = JudgeObjective(encoder, attributes=init is None)
    run_loop(accelerator, run_dir, objective, batches, loop, progress_desc="world encoder")
    return encoder.eval()
