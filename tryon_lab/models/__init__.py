"""Model components (diffusers / transformers classes) built from configs held as data."""

from tryon_lab.models.components import build_scheduler, build_text_encoder, build_unet, build_vae
from tryon_lab.models.config import CONFIG_NAMES, ModelConfig, load_model_config
from tryon_lab.models.fast_autoencoder import FastAutoencoderKL
from tryon_lab.models.tokenizer import train_tokenizer

__all__ = [
    "CONFIG_NAMES",
    "FastAutoencoderKL",
    "ModelConfig",
    "build_scheduler",
    "build_text_encoder",
    "build_unet",
    "build_vae",
    "load_model_config",
    "train_tokenizer",
]
