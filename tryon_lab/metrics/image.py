"""Pixel metrics on images in [0, 255] (uint8 arrays or PIL): PSNR, masked PSNR, SSIM.

"Masked PSNR" is PSNR over the pixels inside the inpainting mask only: what the model generated,
not what paste-back copied from the input.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from tryon_lab.data.masks import bounding_box


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def psnr(prediction, target) -> float:
    """PSNR in dB between two same-size 8-bit images (inf when identical)."""
    mse = float(np.mean((_pixels(prediction) - _pixels(target)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def masked_psnr(prediction, target, mask: np.ndarray) -> float:
    """PSNR in dB over the pixels where ``mask`` is True (all channels)."""
    mask = np.asarray(mask, dtype=bool)
    diff = (_pixels(prediction) - _pixels(target))[mask]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def box_ssim(prediction, target, mask: np.ndarray) -> float:
    """SSIM (torchmetrics, gaussian window) over the bounding box of ``mask``."""
    top, left, bottom, right = bounding_box(mask)
    crops = [torch.from_numpy(_pixels(img)[top:bottom, left:right]).permute(2, 0, 1)[None].float() / 255.0
             for img in (prediction, target)]
    side = min(crops[0].shape[-2:])
    kernel = max(3, min(11, side - (1 - side % 2)))  # odd, no larger than the crop
    return float(structural_similarity_index_measure(crops[0], crops[1], data_range=1.0, kernel_size=kernel))
