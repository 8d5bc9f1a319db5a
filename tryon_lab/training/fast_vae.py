"""Recipe: distil a pipeline's VAE into a narrower one in the same latent space (the fast VAE).

At 4 LCM steps the VAE, not the U-Net, is most of a try-on on a CPU: the masked photo's encoding
and the result's decoding cost what they cost under any sampler. The fast VAE is a diffusers
``AutoencoderKL`` with fewer channels per level (as TAESD is to Stable Diffusion's VAE: the same
latents, a cheaper network), its encoder narrower than its decoder where the settings say so
(``models.FastAutoencoderKL``), trained against the frozen base VAE on world train images:

- its encoder regresses the base encoder's latents (the posterior mode, in the U-Net's scaled
  units), for the try-on target and for the masked photo the U-Net is conditioned on;
- its decoder reconstructs the target image (MSE + L1, as the base decoder was trained) from the
  base encoder's latent, which is where the U-Net's results live.

A second, optional phase (``polish_steps``) trains the decoder alone on whole images, a warm
restart of the learning rate: crops are cheap, but the decoder's GroupNorm statistics and its
mid-block attention span the whole latent at sampling time, and the decoder (not the encoder) is
what costs the lcm sampler its accuracy (swapping in the base encoder changes nothing measurable).

Only the lcm sampler uses it (``pipelines.samplers.load_lcm``); the full samplers keep the base VAE.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from tryon_lab.errors import ConfigError
from tryon_lab.models.fast_autoencoder import FastAutoencoderKL
from tryon_lab.training.loop import LoopSettings

POLISH_RUN = "polish"  # the decoder's whole-image phase checkpoints in this subfolder of the run


@dataclass(frozen=True)
class FastVAESettings:
    """One fast-VAE run: ``steps`` at ``batch_size`` (targets and their masked photos, cropped to
    ``crop`` pixels: the VAEs are convolutional apart from one mid-block attention, so crops teach
    the same maps at a fraction of the cost), the student's ``block_out_channels`` per level (its
    encoder's ``encoder_block_out_channels``, None: the same), ``layers_per_block`` and
    ``norm_num_groups``; then ``polish_steps`` of the decoder alone on whole
    images, the rate restarting at ``polish_learning_rate``."""

    steps: int
    batch_size: int = 8
    crop: int = 64
    learning_rate: float = 5e-4
    block_out_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    encoder_block_out_channels: list[int] | None = None
    layers_per_block: int = 1
    norm_num_groups: int = 16
    encoder_weight: float = 1.0
    dataset_size: int = 4000
    checkpoint_every: int = 200
    warmup_steps: int = 100
    polish_steps: int = 0
    polish_learning_rate: float = 2e-4

    def check(self, base: AutoencoderKL) -> None:
        """``ConfigError`` naming the first setting that cannot give a VAE in ``base``'s latent space."""
        if self.steps < 1 or self.batch_size < 1 or self.dataset_size < 1 or self.polish_steps < 0:
            raise ConfigError("fast_vae steps, batch_size and dataset_size must be >= 1, polish_steps >= 0")
        levels = len(base.config.block_out_channels)
        if self.crop < 1 or self.crop % 2 ** (levels - 1):
            raise ConfigError(f"fast_vae crop must be a positive multiple of {2 ** (levels - 1)} (the VAE's "
                              f"downsampling), got {self.crop}")
        for key in ("block_out_channels", "encoder_block_out_channels"):
            widths = getattr(self, key)
            if widths is None:
                continue
            if len(widths) != levels:
                raise ConfigError(f"fast_vae {key} needs {levels} levels, as the base VAE has (its "
                                  f"downsampling), got {list(widths)}")
            if any(c < 1 or c % self.norm_num_groups for c in widths):
                raise ConfigError(f"fast_vae {key} {list(widths)} must be multiples of "
                                  f"norm_num_groups {self.norm_num_groups}")

    def loop(self, polish: bool = False) -> LoopSettings:
        """The generic loop settings of the first phase, or with ``polish`` of the decoder's whole-image
        phase (either way the rate decays to zero: annealing settles the colours)."""
        return LoopSettings(steps=self.polish_steps if polish else self.steps,
                            learning_rate=self.polish_learning_rate if polish else self.learning_rate,
                            checkpoint_every=self.checkpoint_every, warmup_steps=self.warmup_steps, anneal=True)


def build_fast_vae(base: AutoencoderKL, settings: FastVAESettings) -> FastAutoencoderKL:
    """A randomly initialised ``FastAutoencoderKL`` shaped like ``base`` but with ``settings``' widths,
    carrying ``base``'s scaling factor (the latent units the U-Net was trained in)."""
    config = {key: value for key, value in base.config.items() if not key.startswith("_")}
    encoder = settings.encoder_block_out_channels
    config.update(block_out_channels=list(settings.block_out_channels), layers_per_block=settings.layers_per_block,
                  norm_num_groups=settings.norm_num_groups,
                  encoder_block_out_channels=None if encoder is None else list(encoder))
    return FastAutoencoderKL(**config)


class FastVAEObjective(torch.nn.Module):
    """Latent regression of the student's encoder plus image reconstruction by its decoder from the
    frozen base VAE's latents, on an ``InpaintDataset`` batch (``pixel_values``, ``masked_pixel_values``),
    each pair cropped at one random place to ``crop`` pixels (None: whole images). With ``decoder_only``
    the student's encoder is frozen and the latent regression left out (and not logged)."""

    def __init__(self, student: AutoencoderKL, base: AutoencoderKL, encoder_weight: float = 1.0,
                 crop: int | None = None, decoder_only: bool = False):
        super().__init__()
        self.student, self.encoder_weight, self.crop, self.decoder_only = student, encoder_weight, crop, decoder_only
        self.base = base.eval().requires_grad_(False)
        for module in (student.encoder, student.quant_conv):
            if module is not None:
                module.requires_grad_(not decoder_only)

    def train(self, mode: bool = True):
        """Train the student only: the base VAE stays in eval mode."""
        super().train(mode)
        self.base.eval()
        return self

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, logged values: latent_mse unless ``decoder_only``, mse, psnr_db)."""
        targets, masked = batch["pixel_values"], batch["masked_pixel_values"]
        size = targets.shape[-1]
        if self.crop is not None and self.crop < size:
            top, left = torch.randint(0, size - self.crop + 1, (2,)).tolist()
            window = (..., slice(top, top + self.crop), slice(left, left + self.crop))
            targets, masked = targets[window], masked[window]
        images = targets if self.decoder_only else torch.cat([targets, masked])
        with torch.no_grad():
            latents = self.base.encode(images).latent_dist.mode()
        recon = self.student.decode(latents[:len(targets)]).sample
        mse = F.mse_loss(recon, targets)
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp_min(1e-10))  # pixels span 2 units: peak^2 = 4
        loss = mse + F.l1_loss(recon, targets)
        logged = {"mse": float(mse.detach()), "psnr_db": float(psnr)}
        if not self.decoder_only:
            scale = self.base.config.scaling_factor
            latent_mse = F.mse_loss(self.student.encode(images).latent_dist.mode() * scale, latents * scale)
            loss = loss + self.encoder_weight * latent_mse
            logged = {"latent_mse": float(latent_mse.detach()), **logged}
        return loss, logged


def distil_fast_vae(base: AutoencoderKL, run_dir: str | Path, settings: FastVAESettings, resolution: int,
                    seed: int = 0):
    """Train a fast VAE against ``base`` on the world's train split at ``resolution``, resuming from
    ``run_dir`` (the decoder's whole-image phase, when ``settings`` asks for one, in ``run_dir/polish``).
    Returns (the fast VAE in eval mode, wall seconds of both phases, resumed time included)."""
    from tryon_lab.data.datasets import InpaintDataset
    from tryon_lab.data.world import World
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop

    settings.check(base)
    accelerator = make_accelerator(seed)
    torch.manual_seed(seed)
    student = build_fast_vae(base, settings)
    dataset = InpaintDataset(World(seed=seed, resolution=resolution), split="train", length=settings.dataset_size)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
    objective = FastVAEObjective(student, base, settings.encoder_weight, settings.crop)
    wall = run_loop(accelerator, run_dir, objective, batches, settings.loop(), progress_desc="fast VAE").wall_seconds
    if settings.polish_steps:
        accelerator = make_accelerator(seed)  # a fresh one: the phase checkpoints its own optimizer
        batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
        objective = FastVAEObjective(student, base, crop=None, decoder_only=True)
        wall += run_loop(accelerator, Path(run_dir) / POLISH_RUN, objective, batches, settings.loop(polish=True),
                         progress_desc="fast VAE decoder polish").wall_seconds
    return student.eval(), wall


@torch.no_grad()
def reconstruction_scores(vae: AutoencoderKL, base: AutoencoderKL, samples,
                          batch_size: int = 32) -> dict[str, np.ndarray]:
    """Per world sample (``batch_size`` at a time): the PSNR (dB) of ``vae``'s decoding of ``base``'s latent of the target
    against the target (``decoder_psnr_db``) and against ``base``'s own decoding
    (``decoder_vs_base_psnr_db``), ``base``'s own PSNR against the target (``base_vae_decoder_psnr_db``),
    and the relative error of ``vae``'s latent of the masked photo
    against ``base``'s (``encoder_relative_error``: RMS difference / RMS of the base latent)."""
    from tryon_lab.pipelines.latents import pil_to_tensor

    def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) ** 2).flatten(1).mean(1).clamp_min(1e-10)
        return (10 * torch.log10(4.0 / mse)).numpy()

    def rms(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).pow(2).mean(1).sqrt()

    scores: dict[str, list[np.ndarray]] = {"decoder_psnr_db": [], "decoder_vs_base_psnr_db": [],
                                           "base_vae_decoder_psnr_db": [], "encoder_relative_error": []}
    for first in range(0, len(samples), batch_size):
        chunk = samples[first:first + batch_size]
        targets = torch.stack([pil_to_tensor(s.target) for s in chunk])
        masked = torch.stack([pil_to_tensor(s.scene) * (1 - torch.from_numpy(s.shape_mask.astype(np.float32)))
                              for s in chunk])
        latents = base.encode(targets).latent_dist.mode()
        ours = vae.decode(latents).sample
        base_masked = base.encode(masked).latent_dist.mode()
        scores["decoder_psnr_db"].append(psnr(ours, targets))
        theirs = base.decode(latents).sample
        scores["decoder_vs_base_psnr_db"].append(psnr(ours, theirs))
        scores["base_vae_decoder_psnr_db"].append(psnr(theirs, targets))
        error = rms(vae.encode(masked).latent_dist.mode() - base_masked) / rms(base_masked)
        scores["encoder_relative_error"].append(error.numpy())
    return {name: np.concatenate(values) for name, values in scores.items()}


def codec_seconds(vae: AutoencoderKL, resolution: int, batch_size: int = 8, repeats: int = 10) -> float:
    """Wall seconds per image to encode one image and decode one latent with ``vae``, at batch
    ``batch_size`` (random inputs: the cost does not depend on the content)."""
    images = torch.randn(batch_size, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mode()
        vae.decode(latents)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            vae.decode(vae.encode(images).latent_dist.mode())
    return (time.perf_counter() - start) / (repeats * batch_size)
