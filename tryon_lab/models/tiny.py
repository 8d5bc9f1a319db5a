"""Random-weight pipelines of any config, for tests and for export work before a model is trained.

``make_random_pipeline("tiny", out_dir)`` writes a complete diffusers folder (tokenizer trained on
world captions, random VAE / text encoder / U-Net, DDIM sampler) that loads like a trained one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import DDIMScheduler

from tryon_lab.data.world import World
from tryon_lab.models.components import build_scheduler, build_text_encoder, build_unet, build_vae
from tryon_lab.models.config import load_model_config
from tryon_lab.models.tokenizer import train_tokenizer
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.latents import COURSE_RULE


def make_random_pipeline(config_name: str, out_dir: str | Path, seed: int = 0, captions: int = 200) -> TryOnInpaintPipeline:
    """Build a random-weight TryOnInpaintPipeline of ``config_name`` (the course's ``inpaint_rule``), save it
    to ``out_dir``, return it."""
    config = load_model_config(config_name)
    out_dir = Path(out_dir)
    world = World(seed=seed, resolution=64)
    tokenizer = train_tokenizer((world.sample(i).caption for i in range(captions)), out_dir / "tokenizer",
                                vocab_size=config.tokenizer["vocab_size"], max_length=config.tokenizer["max_length"])
    torch.manual_seed(seed)
    pipe = TryOnInpaintPipeline(
        vae=build_vae(config), text_encoder=build_text_encoder(config, tokenizer), tokenizer=tokenizer,
        unet=build_unet(config), scheduler=DDIMScheduler.from_config(build_scheduler(config).config),
        inpaint_rule=COURSE_RULE,
    )
    pipe.save_pretrained(out_dir)
    return pipe
