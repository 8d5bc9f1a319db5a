"""The perceptual network's recipe: self-supervised, label-free, independent of the judge.

``PerceptualNet`` is trained with SimCLR's InfoNCE (NT-Xent): two random views of the same image
(a random resized crop, a horizontal flip and a little pixel noise, drawn in the objective from
torch's RNG, so a resumed run draws the same views) must be each other's nearest neighbour among
the batch's 2B views. The images are unlabelled train-split item crops and catalog shots of its own
world (``world_seed``, not the judge's): ``UnlabelledCropDataset`` yields pixels only, no attribute
labels, no item ids. Colour is deliberately not augmented: a perceptual loss must see colour.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from tryon_lab.data.datasets import check_training_split, image_to_tensor, square_crop
from tryon_lab.data.world import SPLIT_CODES, World
from tryon_lab.models.dtc import PerceptualNet
from tryon_lab.training.loop import LoopSettings

_CROP_STREAM = 12  # random stream code (cache.py uses 11; world.py and datasets.py 0-6)
OBJECTIVE = "SimCLR InfoNCE (NT-Xent) on two augmented views of one image; no labels"
RECORD_FILE = "training.json"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class PerceptualSettings:
    """Sizes for the perceptual network's run. ``world_seed`` differs from the judge's world (0);
    ``temperature``: InfoNCE's; ``min_crop``: the smallest random crop, as a fraction of the side."""

    steps: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    dataset_size: int = 20000
    crop_size: int = 64
    world_seed: int = 1
    checkpoint_every: int = 500
    temperature: float = 0.2
    min_crop: float = 0.5


class UnlabelledCropDataset(Dataset):
    """Train-split images of ``world``, unlabelled: ``{"image": (3, crop_size, crop_size) in [-1, 1]}``,
    half of them a sample's item cut by its item or shape mask, half its catalog shot. Any split but
    train raises ``SplitError``."""

    def __init__(self, world: World, split: str = "train", length: int = 20000, crop_size: int = 64):
        self.split = check_training_split(split, evaluation=False)
        self.world, self.length, self.crop_size = world, int(length), int(crop_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        sample = self.world.sample(index, self.split)
        rng = np.random.default_rng([self.world.seed, _CROP_STREAM, SPLIT_CODES[self.split], index])
        if rng.random() < 0.5:
            image = square_crop(sample.target, sample.item_mask if rng.random() < 0.5 else sample.shape_mask)
        else:
            image = sample.reference
        return {"image": image_to_tensor(image.resize((self.crop_size, self.crop_size), Image.Resampling.BICUBIC))}


def random_views(images: torch.Tensor, min_crop: float = 0.5, noise: float = 0.03) -> torch.Tensor:
    """One random view per image (B, 3, H, W) in [-1, 1]: a resized crop of side fraction in
    [``min_crop``, 1] at a random place, flipped half the time, plus Gaussian noise; same size."""
    b = images.shape[0]
    scale = min_crop + (1 - min_crop) * torch.rand(b)
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2) - 1)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (views + noise * torch.randn_like(views)).clamp(-1, 1)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent of normalised projections a, b (B, D) where row i of a and of b are views of one
    image: cross-entropy of each view's positive among the other 2B - 1 views."""
    z = torch.cat([a, b])
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    n = len(a)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


class ContrastiveObjective(torch.nn.Module):
    """The perceptual network's loss on a batch ``{"image": ...}``: InfoNCE between two random views.
    It reads the images only."""

    def __init__(self, net: PerceptualNet, temperature: float = 0.2, min_crop: float = 0.5):
        super().__init__()
        self.net, self.temperature, self.min_crop = net, temperature, min_crop

    def forward(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, {"info_nce": ..., "positive_top1": share of views whose nearest view is their pair})."""
        images = batch["image"]
        a = self.net(random_views(images, self.min_crop))
        b = self.net(random_views(images, self.min_crop))
        loss = info_nce(a, b, self.temperature)
        with torch.no_grad():
            top1 = float(((a @ b.T).argmax(dim=1) == torch.arange(len(a), device=a.device)).float().mean())
        return loss, {"info_nce": float(loss.detach()), "positive_top1": top1}


def chance_loss(batch_size: int) -> float:
    """InfoNCE of an untrained network that cannot tell views apart: log(2B - 1)."""
    return math.log(2 * batch_size - 1)


def train_perceptual_net(run_dir: str | Path, settings: PerceptualSettings, resolution: int = 128,
                         out_dir: str | Path | None = None) -> PerceptualNet:
    """Train (or resume) the perceptual network, self-supervised, on unlabelled train-split crops of
    its own world (``world_seed``); saves it to ``out_dir`` if given, with ``training.json`` and a
    ``README.md`` saying what it was trained on and how; returns it in eval mode, frozen."""
    from tryon_lab.training.common import (
        data_workers,
        loader_factory,
        make_accelerator,
        save_atomically,
    )
    from tryon_lab.training.loop import endless, run_loop

    accelerator = make_accelerator(settings.world_seed)
    torch.manual_seed(settings.world_seed)
    net = PerceptualNet()
    dataset = UnlabelledCropDataset(World(settings.world_seed, resolution), "train", settings.dataset_size,
                                    settings.crop_size)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size, data_workers(accelerator.device)))
    loop = LoopSettings(steps=settings.steps, learning_rate=settings.learning_rate,
                        checkpoint_every=settings.checkpoint_every, warmup_steps=min(50, settings.steps // 10),
                        weight_decay=1e-4)
    objective = ContrastiveObjective(net, settings.temperature, settings.min_crop)
    result = run_loop(accelerator, run_dir, objective, batches, loop, progress_desc="perceptual net")
    net = net.eval().requires_grad_(False)
    if out_dir is not None:
        record = {"objective": OBJECTIVE, "data": _data_note(settings, resolution), "labels_used": False,
                  "judge_used": False, "steps": result.steps, "wall_seconds": round(result.wall_seconds, 1),
                  "last_losses": result.last_losses, "chance_info_nce": chance_loss(settings.batch_size),
                  "settings": asdict(settings)}

        def write(tmp: Path) -> None:
            net.save_pretrained(tmp)
            (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2))
            (tmp / CARD_FILE).write_text(
                "# DTC perceptual network\n\nThe perceptual loss's feature network (five conv layers, a VGG "
                f"stand-in). Objective: {OBJECTIVE}. Data: {record['data']}. It never saw an attribute label, "
                "an item id, the judge (world encoder) or a val/test item. Settings and final losses: "
                f"[{RECORD_FILE}]({RECORD_FILE}).\n")

        save_atomically(out_dir, write)
    return net


def _data_note(settings: PerceptualSettings, resolution: int) -> str:
    return (f"{settings.dataset_size} unlabelled train-split images of world seed {settings.world_seed} at "
            f"{resolution} px (item crops and catalog shots, 50/50), resized to {settings.crop_size} px")
