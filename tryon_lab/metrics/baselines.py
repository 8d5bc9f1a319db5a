"""Classical inpainting baseline: OpenCV's Telea fast-marching method."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from tryon_lab.data.io import load_image, load_mask


def telea_inpaint(image, mask, radius: int = 3) -> Image.Image:
    """Fill the masked region from its surroundings (no learning, no text); returns an RGB PIL image."""
    picture = load_image(image)
    region = load_mask(mask, image=picture).astype(np.uint8) * 255
    return Image.fromarray(cv2.inpaint(np.asarray(picture), region, radius, cv2.INPAINT_TELEA), "RGB")
