"""The DTC training objective (the paper's section 2.5).

Each step: noise the target latent at a random timestep; the reference becomes tokens (the null
tokens with probability ``drop_rate``, together with an empty hint: guidance dropout); the hint
encoder turns (masked latent + adapted hint, mask) into FiLM or addition modulation; the main
U-Net predicts the noise. Loss = MSE on the noise + ``perceptual_weight`` x a perceptual distance
between the VAE-decoded predicted x0 and the ground truth, weighted per sample by alpha_bar_t (x0
predicted from nearly pure noise says little) and measured with ``PerceptualNet``, a separately
trained network, never the world encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from tryon_lab.errors import ConfigError
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.models.dtc import (
    EMPTY_HINT,
    HintEncoder,
    PerceptualNet,
    ReferenceEncoder,
    dtc_unet_forward,
)
from tryon_lab.training.dtc.cache import to_float


class DTCObjective(torch.nn.Module):
    """Diffusion loss (+ perceptual loss on the decoded predicted x0) of a DTC model on a DTCCache batch.

    ``hint_encoder`` None trains the no-hint (Paint-by-Example-style) baseline; ``perceptual``
    None turns the perceptual loss off. ``vae`` and ``perceptual`` stay frozen (gradients flow
    through them to the prediction only). ``perceptual_batch`` limits the perceptual loss to the
    first N samples of each batch (its VAE decode dominates a CPU step). Which U-Net parameters
    train is set beforehand (``unet_tuning.prepare_unet``); the objective leaves it as it is.
    """

    def __init__(self, unet: UNet2DConditionModel, image_encoder: ReferenceEncoder, hint_encoder: HintEncoder | None,
                 noise_scheduler: DDPMScheduler, *, vae: AutoencoderKL | None = None,
                 perceptual: PerceptualNet | None = None, perceptual_weight: float = 0.1,
                 perceptual_batch: int | None = None, drop_rate: float = 0.1):
        super().__init__()
        if perceptual is not None and vae is None:
            raise ConfigError("the perceptual loss decodes the predicted x0: give the VAE")
        self.unet, self.image_encoder, self.hint_encoder = unet, image_encoder, hint_encoder
        self.vae = vae.eval().requires_grad_(False) if vae is not None else None
        self.perceptual = perceptual.eval().requires_grad_(False) if perceptual is not None else None
        self.noise_scheduler = noise_scheduler
        self.perceptual_weight, self.perceptual_batch, self.drop_rate = perceptual_weight, perceptual_batch, drop_rate

    def train(self, mode: bool = True):
        """Training mode for the trained parts; the frozen VAE and perceptual network stay in eval mode."""
        super().train(mode)
        for frozen in (self.vae, self.perceptual):  # frozen networks stay in eval mode
            if frozen is not None:
                frozen.eval()
        return self

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (total loss, {"diffusion": ..., "perceptual": ...})."""
        latents, masked, mask = batch["latents"], batch["masked_latents"], batch["mask"]
        batch_size, device = latents.shape[0], latents.device
        drop = torch.rand(batch_size, device=device) < self.drop_rate
        tokens = self.image_encoder.tokens(to_float(batch["reference"]), drop)
        noise = torch.randn_like(latents)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (batch_size,), device=device)
        noisy = self.noise_scheduler.add_noise(latents, noise, steps)
        modulation = None
        if self.hint_encoder is not None:
            hint = torch.where(drop[:, None, None, None], torch.full_like(to_float(batch["hint"]), EMPTY_HINT),
                               to_float(batch["hint"]))
            timestep = steps if self.hint_encoder.config.timestep_conditioning else None
            modulation = self.hint_encoder(masked, mask, hint, tokens, timestep=timestep)
        model_in = torch.cat([noisy, inpaint_channels(mask, masked)], dim=1)
        prediction = dtc_unet_forward(self.unet, model_in, steps, tokens, modulation)
        diffusion = F.mse_loss(prediction, noise)
        logs = {"diffusion": float(diffusion.detach())}
        if self.perceptual is None or self.perceptual_weight == 0:
            return diffusion, logs
        n = batch_size if self.perceptual_batch is None else min(self.perceptual_batch, batch_size)
        perceptual = self.perceptual_loss(noisy[:n], prediction[:n], steps[:n], to_float(batch["target"][:n]))
        logs["perceptual"] = float(perceptual.detach())
        return diffusion + self.perceptual_weight * perceptual, logs

    def predicted_x0(self, noisy: torch.Tensor, prediction: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) for an epsilon (or v) prediction."""
        alpha = self.noise_scheduler.alphas_cumprod.to(noisy.device)[steps].view(-1, 1, 1, 1).to(noisy.dtype)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            return alpha.sqrt() * noisy - (1 - alpha).sqrt() * prediction
        return (noisy - (1 - alpha).sqrt() * prediction) / alpha.sqrt()

    def perceptual_loss(self, noisy: torch.Tensor, prediction: torch.Tensor, steps: torch.Tensor,
                        target: torch.Tensor) -> torch.Tensor:
        """alpha_bar-weighted perceptual distance between the decoded predicted x0 and the target pixels."""
        x0 = self.predicted_x0(noisy, prediction, steps)
        decoded = self.vae.decode(x0 / self.vae.config.scaling_factor).sample
        distance = self.perceptual.distance(decoded, target.to(decoded.dtype))
        weight = self.noise_scheduler.alphas_cumprod.to(distance.device)[steps].to(distance.dtype)
        return (weight * distance).mean()
