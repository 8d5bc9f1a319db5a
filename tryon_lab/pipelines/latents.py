"""Tensor conventions shared by the pipelines and the training loops.

Images are float tensors in [-1, 1], (3, H, W). The U-Net's channel order is
``tryon_lab.models.channels``'.

How a pixel mask becomes a latent mask, and which latent the masked image gets, is the model's
``inpaint_rule`` (a pipeline config value, saved in ``model_index.json``):

- ``"diffusers"`` (the default, and what any folder without the value gets, e.g. a real
  SD-1.5-inpainting one): the mask is resized with nearest-neighbour interpolation and the
  masked-image latent is a sample of the VAE posterior, drawn with the pipeline's generator after
  the initial noise, exactly as ``StableDiffusionInpaintPipeline`` does;
- ``"tryon-lab"`` (the course's models are trained this way): a latent cell is masked when any of
  its pixels is (max-pooling, so thin brush strokes survive), and the masked-image latent is the
  posterior's mode (no randomness in the conditioning).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from PIL import Image

from tryon_lab.data.datasets import image_to_tensor as pil_to_tensor  # one conversion for data and pipelines
from tryon_lab.errors import ConfigError

__all__ = ["COURSE_RULE", "INPAINT_RULES", "InpaintRule", "check_inpaint_rule", "latent_mask", "pil_to_tensor", "tensor_to_pil"]

InpaintRule = Literal["diffusers", "tryon-lab"]
INPAINT_RULES: tuple[str, ...] = ("diffusers", "tryon-lab")
COURSE_RULE: InpaintRule = "tryon-lab"  # the rule the course trains its own models with


def check_inpaint_rule(rule: str) -> InpaintRule:
    """Return ``rule`` if it is one of ``INPAINT_RULES``; ``ConfigError`` naming the choices otherwise."""
    if rule not in INPAINT_RULES:
        raise ConfigError(f"unknown inpaint_rule {rule!r}; choose one of {INPAINT_RULES}")
    return rule  # type: ignore[return-value]


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) in [-1, 1] -> RGB PIL image (values clipped, rounded)."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def latent_mask(pixel_mask: torch.Tensor, latent_size: int, rule: InpaintRule = "tryon-lab") -> torch.Tensor:
    """Pixel mask (B, 1, H, W) in {0, 1} -> latent mask (B, 1, s, s) by ``rule``: "tryon-lab" marks a
    cell where any of its pixels is masked, "diffusers" takes the nearest pixel."""
    if check_inpaint_rule(rule) == "diffusers":
        return F.interpolate(pixel_mask.float(), size=(latent_size, latent_size))
    return F.adaptive_max_pool2d(pixel_mask.float(), latent_size)
