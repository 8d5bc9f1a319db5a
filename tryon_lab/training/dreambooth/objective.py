"""The DreamBooth loss: the inpainting noise-prediction loss, weighted by the mask, on instance
and class (prior) samples together.

``DreamBoothObjective`` is an ``InpaintObjective`` (same U-Net inputs, tokenizer handling and
noise schedule) whose loss looks mostly inside the mask, where the garment is painted:
weight 1 inside, ``outside_weight`` outside (the U-Net is also given the unmasked latent there,
so that part is nearly free). The loss is ``instance + prior_weight * prior``. The two steps are
plain functions, ``masked_noise_loss`` and ``prior_preservation_loss``, so that they can be
tested (and written by students, notebook 02) on their own.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.training.dreambooth.token import TokenVector
from tryon_lab.training.inpaint import InpaintObjective


def masked_noise_loss(prediction: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor,
                      outside_weight: float = 0.1) -> torch.Tensor:
    """Mask-weighted squared error per sample.

    Takes the predicted and true noise (B, C, h, w) and the latent mask (B, 1, h, w), 1 = repaint;
    returns (B,): the mean over channels of the squared error, averaged over cells with weight 1
    inside the mask and ``outside_weight`` outside.
    """
    error = (prediction.float() - noise.float()).pow(2).mean(dim=1, keepdim=True)
    weight = mask + outside_weight * (1.0 - mask)
    return (error * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-8)


def prior_preservation_loss(losses: torch.Tensor, prior: torch.Tensor,
                            prior_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Combine per-sample losses (B,) of instance and class samples (``prior`` (B,) bool marks the
    class ones): returns (mean instance loss + ``prior_weight`` * mean class loss, the two means)."""
    prior = prior.bool()
    instance = losses[~prior].mean()
    if not prior.any():
        return instance, {"instance": float(instance.detach())}
    prior_loss = losses[prior].mean()
    return instance + prior_weight * prior_loss, {"instance": float(instance.detach()),
                                                  "prior": float(prior_loss.detach())}


class DreamBoothObjective(InpaintObjective):
    """Masked noise-prediction loss over a batch of instance and prior samples.

    A batch is a LatentCache batch plus ``prior`` (B,) marking class samples. With ``token``
    (a ``TokenVector``) the identifier's embedding trains while the text encoder stays frozen.
    """

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                 noise_scheduler: DDPMScheduler, prior_weight: float = 1.0, outside_weight: float = 0.1,
                 token: TokenVector | None = None):
        super().__init__(unet, text_encoder, tokenizer, noise_scheduler, caption_dropout=0.0)
        self.prior_weight, self.outside_weight, self.token = float(prior_weight), float(outside_weight), token

    def per_sample_loss(self, batch: dict) -> torch.Tensor:
        """Mask-weighted squared error of the predicted noise, one value per sample (B,)."""
        prediction, noise, _ = self.noise_prediction(batch)
        return masked_noise_loss(prediction, noise, batch["mask"], self.outside_weight)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (instance loss + prior_weight * prior loss, {"instance": ..., "prior": ...})."""
        losses = self.per_sample_loss(batch)
        prior = batch.get("prior", torch.zeros_like(losses, dtype=torch.bool))
        return prior_preservation_loss(losses, prior, self.prior_weight)
