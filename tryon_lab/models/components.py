"""Build the diffusers / transformers components of an inpainting model from a ModelConfig.

Every component is a standard class (AutoencoderKL, UNet2DConditionModel, CLIPTextModel,
DDPMScheduler), so a folder saved from them loads wherever Stable Diffusion loads.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from tryon_lab.models.config import ModelConfig


def build_vae(config: ModelConfig) -> AutoencoderKL:
    """Return a randomly initialised AutoencoderKL of the config's size."""
    return AutoencoderKL(**config.vae)


def build_unet(config: ModelConfig) -> UNet2DConditionModel:
    """Return a randomly initialised 9-channel inpainting UNet2DConditionModel."""
    return UNet2DConditionModel(**config.unet)


def build_text_encoder(config: ModelConfig, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """Return a randomly initialised CLIPTextModel whose vocabulary matches ``tokenizer``."""
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config.text_encoder,
    )
    return CLIPTextModel(text_config)


def build_scheduler(config: ModelConfig) -> DDPMScheduler:
    """Return the training scheduler (DDPM); sampling schedulers are made ``from_config`` of it."""
    return DDPMScheduler(**config.scheduler)
