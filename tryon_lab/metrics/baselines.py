"""Reference points that learn nothing: OpenCV's Telea fast-marching inpainting, and a VAE's round trip."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from tryon_lab.data.io import load_image, load_mask
from tryon_lab.data.world import World
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.pipelines.latents import pil_to_tensor, tensor_to_pil


def telea_inpaint(image, mask, radius: int = 3) -> Image.Image:
    """Fill the masked region from its surroundings (no learning, no text); returns an RGB PIL image."""
    picture = load_image(image)
    region = load_mask(mask, image=picture).astype(np.uint8) * 255
    return Image.fromarray(cv2.inpaint(np.asarray(picture), region, radius, cv2.INPAINT_TELEA), "RGB")


@torch.no_grad()
def vae_round_trip(vae, images, batch_size: int = 32) -> list[Image.Image]:
    """Each image encoded by ``vae`` (the posterior's mode) and decoded again: what a latent diffusion
    model decoding through this VAE can show at best of a picture it got exactly right. Takes PIL
    images of the VAE's size; returns RGB PIL images."""
    out: list[Image.Image] = []
    for start in range(0, len(images), batch_size):
        batch = torch.stack([pil_to_tensor(load_image(im)) for im in images[start:start + batch_size]])
        batch = batch.to(vae.device, vae.dtype)
        decoded = vae.decode(vae.encode(batch).latent_dist.mode()).sample
        out += [tensor_to_pil(d) for d in decoded]
    return out


@torch.no_grad()
def decoder_ceiling(vae, judge, samples: int, split: str = "val", seed: int = 0, truth: bool = True) -> dict:
    """Identity accuracy (95% intervals) of ``samples`` ``split`` renderings at the VAE's size: after
    ``vae``'s round trip (``round_trip``) and, unless ``truth`` is False, as drawn (``truth``); with
    ``chance``."""
    world = World(seed=seed, resolution=vae.config.sample_size)
    rendered = [world.sample(i, split=split) for i in range(samples)]
    masks, items = [s.item_mask for s in rendered], [s.item for s in rendered]
    drawn = [s.target for s in rendered]

    def accuracy(images):
        return bootstrap(np.mean, judge.identity_hits(images, masks, items, world).astype(float))

    scores = {"round_trip": accuracy(vae_round_trip(vae, drawn)), "chance": judge.chance_identity,
              "samples": samples, "split": split}
    return {"truth": accuracy(drawn), **scores} if truth else scores
