"""Recipe: train the AutoencoderKL on world images (scenes, try-on targets, catalog shots).

Loss: mean squared error + L1 on pixels + a small KL term (the latent stays near a unit
Gaussian without blurring). Training runs on random crops: the VAE is fully convolutional apart
from its mid-block attention, so crops cost a quarter of the compute and transfer to full images.
After training, the latent scaling factor is measured (1 / std of the latents), as SD does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from tryon_lab.data.world import World
from tryon_lab.models.components import build_vae
from tryon_lab.models.config import ModelConfig
from tryon_lab.pipelines.latents import pil_to_tensor
from tryon_lab.training.common import loader_factory, make_accelerator, save_atomically
from tryon_lab.training.loop import LoopSettings, endless, run_loop


class WorldImages(torch.utils.data.Dataset):
    """Every world picture a VAE must reproduce: scene, target and reference of each sample, cropped."""

    def __init__(self, world: World, length: int, crop: int, split: str = "train"):
        self.world, self.length, self.crop, self.split = world, length, crop, split

    def __len__(self) -> int:
        return self.length * 3

    def __getitem__(self, index: int) -> torch.Tensor:
        sample = self.world.sample(index // 3, split=self.split)
        image = pil_to_tensor((sample.scene, sample.target, sample.reference)[index % 3])
        if self.crop >= image.shape[-1]:
            return image
        rng = np.random.default_rng(index)
        top, left = rng.integers(0, image.shape[-1] - self.crop + 1, size=2)
        return image[:, top:top + self.crop, left:left + self.crop]


@dataclass(frozen=True)
class VAESettings:
    """Sizes for one VAE run (from the profile or the command line)."""

    steps: int
    batch_size: int = 8
    crop: int = 64
    learning_rate: float = 5e-4
    kl_weight: float = 1e-6
    dataset_size: int = 20000
    checkpoint_every: int = 500


class VAEObjective(torch.nn.Module):
    """Reconstruction (MSE + L1) plus ``kl_weight`` x KL of one batch of images in [-1, 1]."""

    def __init__(self, vae: AutoencoderKL, kl_weight: float):
        super().__init__()
        self.vae, self.kl_weight = vae, kl_weight

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, logged values: mse, kl, psnr_db)."""
        posterior = self.vae.encode(images).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        mse = F.mse_loss(recon, images)
        kl = posterior.kl().mean()
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10))  # pixels span 2 units: peak^2 = 4
        loss = mse + F.l1_loss(recon, images) + self.kl_weight * kl
        return loss, {"mse": float(mse), "kl": float(kl), "psnr_db": float(psnr)}


@torch.no_grad()
def measure_scaling_factor(vae: AutoencoderKL, world: World, samples: int = 64) -> float:
    """1 / std of the latent means over ``samples`` full-size world targets (SD's 0.18215 recipe)."""
    images = torch.stack([pil_to_tensor(world.sample(i, split="train").target) for i in range(samples)])
    latents = vae.encode(images).latent_dist.mode()
    return float(1.0 / latents.std())


def train_vae(config: ModelConfig, run_dir: str | Path, out_dir: str | Path, settings: VAESettings, seed: int = 0) -> AutoencoderKL:
    """Train (or resume) a VAE of ``config``'s size; save it to ``out_dir`` with its scaling factor."""
    accelerator = make_accelerator(seed)
    world = World(seed=seed, resolution=config.resolution)
    vae = build_vae(config)
    dataset = WorldImages(world, settings.dataset_size, settings.crop)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
    loop = LoopSettings(steps=settings.steps, learning_rate=settings.learning_rate,
                        checkpoint_every=settings.checkpoint_every, warmup_steps=100)

    result = run_loop(accelerator, run_dir, VAEObjective(vae, settings.kl_weight), batches, loop, progress_desc="vae")
    vae.eval()
    if accelerator.is_main_process:
        vae.register_to_config(scaling_factor=measure_scaling_factor(vae, world))
        save_atomically(out_dir, lambda tmp: vae.save_pretrained(tmp))
        (Path(run_dir) / "wall_seconds.txt").write_text(f"{result.wall_seconds:.1f}\n")
    return vae
