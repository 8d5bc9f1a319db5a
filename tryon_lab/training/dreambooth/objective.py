"""The DreamBooth loss: the inpainting noise-prediction loss, weighted by the mask, on instance
and class (prior) samples together.

``DreamBoothObjective`` is an ``InpaintObjective`` (same U-Net inputs, tokenizer handling and
noise schedule) whose loss looks mostly inside the mask, where the garment is painted:
weight 1 inside, ``outside_weight`` outside (the U-Net is also given the unmasked latent there,
so that part is nearly free). The loss is ``instance + prior_weight * prior``.
"""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.training.dreambooth.token import TokenVector
from tryon_lab.training.inpaint import InpaintObjective


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
        latents = batch["latents"]
        noise = torch.randn_like(latents)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, steps)
        hidden = self.text_encoder(self.tokens(batch["caption"]).to(latents.device))[0]
        model_in = torch.cat([noisy, batch["masked_latents"], batch["mask"]], dim=1)
        prediction = self.unet(model_in, steps, encoder_hidden_states=hidden, return_dict=False)[0]
        error = (prediction.float() - noise.float()).pow(2).mean(dim=1, keepdim=True)
        weight = batch["mask"] + self.outside_weight * (1.0 - batch["mask"])
        return (error * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-8)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (instance loss + prior_weight * prior loss, {"instance": ..., "prior": ...})."""
        losses = self.per_sample_loss(batch)
        prior = batch.get("prior", torch.zeros_like(losses, dtype=torch.bool)).bool()
        instance = losses[~prior].mean()
        if prior.any():
            prior_loss = losses[prior].mean()
            return instance + self.prior_weight * prior_loss, {"instance": float(instance.detach()),
                                                               "prior": float(prior_loss.detach())}
        return instance, {"instance": float(instance.detach())}
