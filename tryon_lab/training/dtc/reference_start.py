"""A text-aligned start for the reference encoder: the base model's own captions as its teacher.

The paper reads the reference with a frozen, pretrained image encoder (DINOv2; Paint-by-Example uses
CLIP's image tower, pretrained to share its text tower's space), so the U-Net can read a reference
from the first step. Ours is a small network with no pretraining: trained from scratch together with
the U-Net, it takes thousands of steps before a try-on even gets the item's colour right. This phase
gives it a start. With the base U-Net and text encoder frozen, the reference encoder learns tokens on
which the U-Net predicts the noise it predicts given the pair's caption (same noisy latent, timestep
and mask), on the DTC cache's training pairs. It can learn only what a caption says (category,
colour, pattern); what words cannot say (the motif) is left to DTC training, through the hint as
before. It uses the world's captions, which the base model trained on, and nothing of the judge.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from tryon_lab.models.channels import inpaint_channels
from tryon_lab.models.dtc import ReferenceEncoder
from tryon_lab.training.dtc.cache import DTCCache, to_float
from tryon_lab.training.loop import LoopResult, LoopSettings

PHASE_FOLDER = "reference-start"  # inside a DTC run's folder


class CaptionedCache(Dataset):
    """The DTC cache's items plus ``caption_tokens``: the base text encoder's hidden states (N, D) of
    each pair's caption (row i of the cache is world sample i of the train split)."""

    def __init__(self, cache: DTCCache, caption_tokens: torch.Tensor):
        if len(caption_tokens) != len(cache):
            raise ValueError(f"{len(caption_tokens)} captions for a cache of {len(cache)} pairs")
        self.cache, self.caption_tokens = cache, caption_tokens

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict:
        return {**self.cache[index], "caption_tokens": self.caption_tokens[index]}


@torch.no_grad()
def caption_tokens(base, world, count: int, batch_size: int = 256) -> torch.Tensor:
    """The text encoder hidden states (count, N, D) of the captions of train samples 0..count-1."""
    captions = [world.caption(index, "train") for index in range(count)]
    return torch.cat([base.encode_prompt(captions[i:i + batch_size]).float().cpu()
                      for i in range(0, count, batch_size)])


class TextTeacherObjective(torch.nn.Module):
    """MSE between the U-Net's noise prediction on the reference encoder's tokens and on the caption's
    tokens, at the same noisy latent, timestep and mask. Only the reference encoder trains: the caller
    freezes the U-Net (``start_reference_encoder`` does, and gives back what was trainable)."""

    def __init__(self, unet, image_encoder: ReferenceEncoder, noise_scheduler):
        super().__init__()
        self.unet = unet.eval()
        self.image_encoder, self.noise_scheduler = image_encoder, noise_scheduler

    def train(self, mode: bool = True):
        """Training mode for the reference encoder; the frozen U-Net stays in eval mode."""
        super().train(mode)
        self.unet.eval()
        return self

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (loss, {"teacher_mse": loss})."""
        latents = batch["latents"]
        noise = torch.randn_like(latents)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (len(latents),),
                              device=latents.device)
        model_in = torch.cat([self.noise_scheduler.add_noise(latents, noise, steps),
                              inpaint_channels(batch["mask"], batch["masked_latents"])], dim=1)
        with torch.no_grad():
            target = self.unet(model_in, steps, encoder_hidden_states=batch["caption_tokens"]).sample
        tokens = self.image_encoder(to_float(batch["reference"]))
        loss = F.mse_loss(self.unet(model_in, steps, encoder_hidden_states=tokens).sample, target)
        return loss, {"teacher_mse": float(loss.detach())}


def start_reference_encoder(seed: int, base, unet, image_encoder: ReferenceEncoder, cache: DTCCache, world,
                            run_dir: str | Path, loop: LoopSettings, batch_size: int) -> LoopResult:
    """Train ``image_encoder`` in place (its own accelerator and optimizer, seeded by ``seed``) against the text teacher: ``unet`` (frozen here; a copy of the
    base's) given the captions ``base``'s text encoder reads, on ``cache`` (built from ``world``'s
    train pairs); resumable in ``run_dir``. Returns the loop's result; ``unet``'s trainable parameters
    (e.g. a fresh LoRA, which leaves its predictions as the base's) are trainable again afterwards."""
    from diffusers import DDPMScheduler

    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop

    accelerator = make_accelerator(seed)  # a fresh one: the phase checkpoints its own optimizer
    dataset = CaptionedCache(cache, caption_tokens(base, world, len(cache)))
    objective = TextTeacherObjective(unet, image_encoder, DDPMScheduler.from_config(base.scheduler.config))
    batches = endless(loader_factory(accelerator, dataset, batch_size))
    trainable = [p for p in unet.parameters() if p.requires_grad]
    unet.requires_grad_(False)
    try:
        return run_loop(accelerator, run_dir, objective, batches, loop, progress_desc="reference start")
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


__all__ = ["PHASE_FOLDER", "CaptionedCache", "TextTeacherObjective", "caption_tokens", "start_reference_encoder"]
