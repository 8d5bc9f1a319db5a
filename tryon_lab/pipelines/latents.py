"""Tensor conventions shared by the pipelines and the training loops.

Images are float tensors in [-1, 1], (3, H, W). A pixel mask (B, 1, H, W) becomes a latent
mask by max-pooling, so that any masked pixel marks its latent cell: thin brush strokes survive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from tryon_lab.data.datasets import image_to_tensor as pil_to_tensor  # one conversion for data and pipelines

__all__ = ["latent_mask", "pil_to_tensor", "tensor_to_pil"]


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) in [-1, 1] -> RGB PIL image (values clipped, rounded)."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy(), "RGB")


def latent_mask(pixel_mask: torch.Tensor, latent_size: int) -> torch.Tensor:
    """Pixel mask (B, 1, H, W) in {0, 1} -> latent mask (B, 1, s, s): 1 where any pixel is masked."""
    return F.adaptive_max_pool2d(pixel_mask.float(), latent_size)
