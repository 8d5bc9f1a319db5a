"""Model configurations held as data (``configs/*.json``): tiny (tests), mini (shipped), mini16 (mini with a
16-channel latent), sd15."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tryon_lab.errors import ConfigError

CONFIG_NAMES = ("tiny", "mini", "mini16", "sd15")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of every component of one inpainting model; see ``configs/mini.json``."""

    name: str
    resolution: int
    tokenizer: dict[str, Any]
    text_encoder: dict[str, Any]
    vae: dict[str, Any]
    unet: dict[str, Any]
    scheduler: dict[str, Any] = field(default_factory=dict)

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along one side (8 for every config here)."""
        return 2 ** (len(self.vae["block_out_channels"]) - 1)

    @property
    def latent_size(self) -> int:
        """Side of the square latent grid, e.g. 16 for the 128x128 mini model."""
        return self.resolution // self.vae_scale_factor


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """Return the config called ``name_or_path`` (tiny, mini, sd15) or read from a JSON file."""
    if str(name_or_path) in CONFIG_NAMES:
        text = resources.files("tryon_lab.models.configs").joinpath(f"{name_or_path}.json").read_text()
        name = str(name_or_path)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"unknown model config {str(name_or_path)!r}: not one of "
                              f"{', '.join(CONFIG_NAMES)} and not a JSON file")
        text, name = path.read_text(), path.stem
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"model config {name!r} is not valid JSON: {err}") from None
    raw.pop("_comment", None)
    missing = {"resolution", "tokenizer", "text_encoder", "vae", "unet"} - raw.keys()
    if missing:
        raise ConfigError(f"model config {name!r} lacks {sorted(missing)}")
    config = ModelConfig(name=name, **raw)
    if config.unet["sample_size"] != config.latent_size:
        raise ConfigError(f"model config {name!r}: unet sample_size {config.unet['sample_size']} "
                          f"!= resolution / vae factor = {config.latent_size}")
    latent = config.vae["latent_channels"]
    if (config.unet["in_channels"], config.unet["out_channels"]) != (2 * latent + 1, latent):
        # the inpainting layout: noisy latent, mask, masked-image latent in; the noise estimate out
        raise ConfigError(f"model config {name!r}: an inpainting U-Net on {latent}-channel latents takes "
                          f"{2 * latent + 1} channels and returns {latent}; its config says "
                          f"{config.unet['in_channels']} and {config.unet['out_channels']}")
    return config
