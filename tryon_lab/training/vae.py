"""Recipe: train the AutoencoderKL on world images (scenes, try-on targets, catalog shots).

Loss: mean squared error + L1 on pixels + a small KL term (the latent stays near a unit
Gaussian without blurring). Training runs on random crops: the VAE is fully convolutional apart
from its mid-block attention, so crops cost a quarter of the compute and transfer to full images.
After training, the latent scaling factor is measured (1 / std of the latents), as SD does.

Phase 2 (``decoder_steps``) fine-tunes only the decoder, the encoder frozen, as Stability did for
SD's ft-MSE decoder: the latent space stays fixed, so the U-Net can train on phase-1 latents
while the decoder keeps sharpening. Phase 3 (``anneal_steps``) goes on with the decoder alone on
full-size images while the learning rate decays to zero: crops teach local detail cheaply, but
the constant rate leaves the weights jittering around their optimum (colours off by a shade over
whole garments), and annealing settles them. Phase 4 (``polish_steps``) is a warm restart of
phase 3 (SGDR): the rate climbs back to ``polish_learning_rate`` and decays to zero again over a
longer cycle, since phase 3's reconstruction was still improving when its rate ran out. The
latent space is still phase 1's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError
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
    milestone_every: int = 0
    decoder_steps: int = 0
    anneal_steps: int = 0
    anneal_learning_rate: float = 2e-4
    polish_steps: int = 0
    polish_learning_rate: float = 1e-4


@dataclass(frozen=True)
class Phase:
    """One stage of VAE training: what trains, on what crops, at which learning rate."""

    name: str
    steps: int
    decoder_only: bool
    crop: int
    learning_rate: float
    anneal: bool = False

    def run_dir(self, root: str | Path) -> Path:
        """Where this phase checkpoints: phase 1 in ``root`` itself, decoder phases in ``root/name``."""
        return Path(root) / self.name if self.decoder_only else Path(root)


def phases(settings: VAESettings, resolution: int) -> list[Phase]:
    """The phases ``settings`` asks for, in order (a phase of 0 steps is left out)."""
    planned = [
        Phase("vae", settings.steps, False, settings.crop, settings.learning_rate),
        Phase("decoder", settings.decoder_steps, True, settings.crop, settings.learning_rate),
        Phase("anneal", settings.anneal_steps, True, resolution, settings.anneal_learning_rate, anneal=True),
        Phase("polish", settings.polish_steps, True, resolution, settings.polish_learning_rate, anneal=True),
    ]
    return [phase for phase in planned if phase.steps]


def selected_phases(settings: VAESettings, resolution: int, only: Collection[str] | None) -> list[Phase]:
    """The phases of ``settings`` named in ``only`` (all when None); unknown names raise ConfigError."""
    planned = phases(settings, resolution)
    if only is None:
        return planned
    unknown = sorted(set(only) - {phase.name for phase in planned})
    if unknown:
        raise ConfigError(f"no VAE phase named {', '.join(unknown)} in this profile; "
                          f"it has {', '.join(phase.name for phase in planned)}")
    return [phase for phase in planned if phase.name in only]


class VAEObjective(torch.nn.Module):
    """Reconstruction (MSE + L1) plus ``kl_weight`` x KL of one batch of images in [-1, 1].

    With ``decoder_only`` the encoder is frozen and the decoder reads the posterior's mode.
    """

    def __init__(self, vae: AutoencoderKL, kl_weight: float, decoder_only: bool = False):
        super().__init__()
        self.vae, self.kl_weight, self.decoder_only = vae, kl_weight, decoder_only
        for module in (vae.encoder, vae.quant_conv):
            if module is not None:
                module.requires_grad_(not decoder_only)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, logged values: mse, kl, psnr_db)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            posterior = self.vae.encode(images).latent_dist
        recon = self.vae.decode(posterior.mode() if self.decoder_only else posterior.sample()).sample
        mse = F.mse_loss(recon, images)
        kl = posterior.kl().mean()
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10))  # pixels span 2 units: peak^2 = 4
        loss = mse + F.l1_loss(recon, images) + self.kl_weight * kl
        return loss, {"mse": float(mse.detach()), "kl": float(kl.detach()), "psnr_db": float(psnr)}


@torch.no_grad()
def measure_scaling_factor(vae: AutoencoderKL, world: World, samples: int = 64) -> float:
    """1 / std of the latent means over ``samples`` full-size world targets (SD's 0.18215 recipe)."""
    images = torch.stack([pil_to_tensor(world.sample(i, split="train").target) for i in range(samples)])
    latents = vae.encode(images).latent_dist.mode()
    return float(1.0 / latents.std())


def train_vae(config: ModelConfig, run_dir: str | Path, out_dir: str | Path, settings: VAESettings,
              seed: int = 0, init_dir: str | Path | None = None,
              only: Collection[str] | None = None) -> tuple[AutoencoderKL, float]:
    """Train (or resume) a VAE of ``config``'s size, then (phases 2 to 4) its decoder alone.

    ``init_dir`` starts from a saved VAE instead of random weights and ``only`` runs just the
    named phases: together they continue a finished recipe with a later phase. The VAE is saved to
    ``out_dir`` with its scaling factor after each phase (the phase-1 save is enough for U-Net
    training to start). Returns (vae, wall seconds of the phases run).
    """
    world = World(seed=seed, resolution=config.resolution)
    vae = AutoencoderKL.from_pretrained(init_dir, torch_dtype=torch.float32) if init_dir else build_vae(config)
    wall = 0.0
    for phase in selected_phases(settings, config.resolution, only):
        accelerator = make_accelerator(seed)  # a fresh one: each phase checkpoints its own optimizer
        dataset = WorldImages(world, settings.dataset_size, phase.crop)
        batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
        loop = LoopSettings(steps=phase.steps, learning_rate=phase.learning_rate, anneal=phase.anneal,
                            checkpoint_every=settings.checkpoint_every, warmup_steps=100,
                            milestone_every=settings.milestone_every or None)
        objective = VAEObjective(vae, settings.kl_weight, decoder_only=phase.decoder_only)
        wall += run_loop(accelerator, phase.run_dir(run_dir), objective, batches, loop,
                         progress_desc=f"{phase.name} phase").wall_seconds
        vae.eval()
        if accelerator.is_main_process:
            if not phase.decoder_only:
                vae.register_to_config(scaling_factor=measure_scaling_factor(vae, world))
            save_atomically(out_dir, lambda tmp: vae.save_pretrained(tmp))
    return vae, wall
