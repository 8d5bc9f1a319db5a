"""The DTC training data: try-all pairs with a shape or box mask, encoded once into a latent cache.

The VAE is frozen during DTC training, so every pair's latents, masked latents and latent mask are
encoded once (``build_dtc_cache``), with the target, hint and reference kept as uint8 images;
``ensure_dtc_cache`` rebuilds the cache whenever it was built from anything else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from tryon_lab.data.datasets import DTCPairDataset
from tryon_lab.data.world import SPLIT_CODES, World
from tryon_lab.models.dtc import resize_images
from tryon_lab.pipelines.latents import InpaintRule, latent_mask
from tryon_lab.training.common import data_workers, module_fingerprint, save_atomically
from tryon_lab.training.latent_cache import encoding_loader

_SHAPE_OR_BOX_STREAM = 11  # random stream code (world.py and datasets.py use 0-6)
CACHE_FILE = "dtc.safetensors"


class ShapeOrBoxDTCDataset(Dataset):
    """DTC pairs whose mask is the item's shape mask or its box mask, 50/50 (deterministic per
    index), as in the paper; fields of ``DTCPairDataset`` (the hint laid out with ``hint_layout``)."""

    def __init__(self, world: World, split: str = "train", length: int = 10_000, hint_layout: str = "rectangle"):
        self.shape = DTCPairDataset(world, split, length, mask_mode="shape", hint_layout=hint_layout)
        self.box = DTCPairDataset(world, split, length, mask_mode="box", hint_layout=hint_layout)
        self.world, self.split, self.length = world, split, int(length)

    def __len__(self) -> int:
        return self.length

    def uses_box(self, index: int) -> bool:
        """Whether item ``index`` is drawn with the box mask."""
        rng = np.random.default_rng([self.world.seed, _SHAPE_OR_BOX_STREAM, SPLIT_CODES[self.split], int(index)])
        return bool(rng.random() < 0.5)

    def __getitem__(self, index: int) -> dict:
        return (self.box if self.uses_box(index) else self.shape)[index]



def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255] (how the cache stores pixels)."""
    return ((images.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """Cached uint8 images -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


@torch.no_grad()
def build_dtc_cache(vae: AutoencoderKL, dataset, out_dir: str | Path, reference_size: int, *,
                    inpaint_rule: InpaintRule, batch_size: int = 32, record: dict[str, str] | None = None,
                    num_workers: int = 0) -> Path:
    """Encode a DTC pair dataset once: latents, masked latents, latent masks (float, by ``inpaint_rule``), and the
    target, hint (full size) and reference (``reference_size``) as uint8. Written atomically to
    ``out_dir/dtc.safetensors``, with ``record`` (what it was built from) in its metadata; returns ``out_dir``.
    ``num_workers``: loader processes rendering the pairs (the dataset is deterministic per index)."""
    loader = encoding_loader(dataset, batch_size, num_workers)
    scale = vae.config.scaling_factor
    names = ("latents", "masked_latents", "masks", "targets", "hints", "references")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    for batch in tqdm(loader, desc="encoding DTC pairs"):
        latents = vae.encode(batch["pixel_values"].to(vae.device, vae.dtype)).latent_dist.mode() * scale
        parts["latents"].append(latents.float().cpu())
        masked = vae.encode(batch["masked_pixel_values"].to(vae.device, vae.dtype)).latent_dist.mode() * scale
        parts["masked_latents"].append(masked.float().cpu())
        parts["masks"].append(latent_mask(batch["mask"], latents.shape[-1], inpaint_rule))
        parts["targets"].append(to_uint8(batch["pixel_values"]))
        parts["hints"].append(to_uint8(batch["hint"]))
        parts["references"].append(to_uint8(resize_images(batch["reference"], reference_size)))
    tensors = {name: torch.cat(chunks).contiguous() for name, chunks in parts.items()}

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        save_file(tensors, tmp / CACHE_FILE, metadata={"reference_size": str(reference_size), **(record or {})})

    return save_atomically(out_dir, write)


class DTCCache(Dataset):
    """Items of a ``build_dtc_cache`` folder: latents, masked_latents, mask, target, hint, reference
    (images uint8 (3, H, W); the objective converts them to [-1, 1])."""

    def __init__(self, cache_dir: str | Path):
        path = Path(cache_dir) / CACHE_FILE
        self.tensors = load_file(path)
        with safe_open(path, "pt") as file:
            self.record: dict[str, str] = file.metadata() or {}

    def __len__(self) -> int:
        return len(self.tensors["latents"])

    def __getitem__(self, index: int) -> dict:
        t = self.tensors
        return {"latents": t["latents"][index], "masked_latents": t["masked_latents"][index], "mask": t["masks"][index],
                "target": t["targets"][index], "hint": t["hints"][index], "reference": t["references"][index]}



def ensure_dtc_cache(accelerator, vae: AutoencoderKL, world: World, cache_dir: str | Path, dataset_size: int,
                     reference_size: int, inpaint_rule: InpaintRule, hint_layout: str = "rectangle") -> DTCCache:
    """Load the latent cache of ``dataset_size`` training pairs (hints laid out with ``hint_layout``) from
    ``cache_dir``, building it first (main process) when it is missing or was built from anything else
    (another size, world, VAE, rule or layout: e.g. by another profile), so a course run never stops on a
    stale cache."""
    cache_dir = Path(cache_dir)
    wanted = {"pairs": str(dataset_size), "reference_size": str(reference_size), "world": repr(world),
              "inpaint_rule": inpaint_rule, "vae": module_fingerprint(vae), "hint_layout": hint_layout}
    with accelerator.main_process_first():
        if accelerator.is_main_process:
            held = DTCCache(cache_dir).record if (cache_dir / CACHE_FILE).is_file() else None
            if held != wanted:
                if held is not None:
                    changed = sorted(k for k in wanted if held.get(k) != wanted[k])
                    print(f"rebuilding {cache_dir}: it was built with another {', '.join(changed)}")
                build_dtc_cache(vae.to(accelerator.device), ShapeOrBoxDTCDataset(world, "train", dataset_size, hint_layout), cache_dir,
                                reference_size, inpaint_rule=inpaint_rule, record=wanted,
                                num_workers=data_workers(accelerator.device))
    return DTCCache(cache_dir)

