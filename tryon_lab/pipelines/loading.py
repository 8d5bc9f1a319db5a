"""Load a try-on pipeline from a local folder: the shipped mini model or a real SD-1.5-inpainting one."""

from __future__ import annotations

from pathlib import Path

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline

SHIPPED_INPAINT = "mini-sd-inpaint"


def load_inpaint_pipeline(path: str | Path | None = None, device: str | None = None,
                          dtype: torch.dtype = torch.float32) -> TryOnInpaintPipeline:
    """Return a TryOnInpaintPipeline from ``path`` (default: the shipped mini model), on ``device``.

    Works for any diffusers folder with vae, text_encoder, tokenizer, unet and scheduler
    (e.g. a local copy of SD-1.5-inpainting); never downloads.
    """
    folder = Path(path) if path is not None else shipped_model(SHIPPED_INPAINT)
    if not (folder / "model_index.json").is_file():
        raise ConfigError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    pipe = TryOnInpaintPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return pipe.to(device)
