"""Load a try-on pipeline from a local folder: the shipped mini model or a real SD-1.5-inpainting one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.paths import sha256_file, shipped_model
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.upgrade import DTC_RECORD, WEIGHTS, check_not_legacy

SHIPPED_INPAINT = "mini-sd-inpaint"
SHIPPED_DTC = "dtc"
UNET_WEIGHTS = Path("unet") / WEIGHTS
DTC_UNET_LORA = "unet_lora"  # a DTC parts folder's main-U-Net LoRA, fused into the base's U-Net on load
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # diffusers' LoRA file name


def unet_sha256(pipeline_dir: str | Path) -> str:
    """sha256 of a pipeline folder's U-Net weights file: what a LoRA trained against it records, since
    it fits only that exact U-Net."""
    return sha256_file(Path(pipeline_dir) / UNET_WEIGHTS)


def load_inpaint_pipeline(path: str | Path | None = None, device: str | None = None,
                          dtype: torch.dtype = torch.float32) -> TryOnInpaintPipeline:
    """Return a TryOnInpaintPipeline from ``path`` (default: the shipped mini model), on ``device``.

    Works for any diffusers folder with vae, text_encoder, tokenizer, unet and scheduler
    (e.g. a local copy of SD-1.5-inpainting, which computes what diffusers does); never downloads.
    ``ConfigError`` for a folder saved in the old channel order (``tryon-lab upgrade`` converts it).
    """
    folder = Path(path) if path is not None else shipped_model(SHIPPED_INPAINT)
    if not (folder / "model_index.json").is_file():
        raise ConfigError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    check_not_legacy(folder)
    pipe = TryOnInpaintPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return pipe.to(device)


def load_dtc_pipeline(path: str | Path | None = None, base: str | Path | None = None, device: str | None = None,
                      dtype: torch.dtype = torch.float32):
    """Return a DTCPipeline (DDIM sampler) from ``path`` (default: the shipped ``dtc``), on ``device``.

    ``path`` is either a full DTCPipeline folder (``model_index.json``) or a DTC parts folder
    (``dtc.json`` + ``image_encoder/`` [+ ``hint_encoder/``] [+ ``unet/`` or ``unet_lora/``]) whose VAE,
    and main U-Net unless the parts hold their own ``unet/``, come from ``base`` (default: the base that
    ``dtc.json`` names, among the shipped models). A ``unet_lora/`` is fused into that U-Net; it must be
    the U-Net the LoRA was trained on (``dtc.json``'s ``base_unet_sha256``), else ``ConfigError``.
    """
    from diffusers import DDIMScheduler, UNet2DConditionModel

    from tryon_lab.models.dtc import HintEncoder, ReferenceEncoder
    from tryon_lab.pipelines.dtc import DTCPipeline

    folder = Path(path) if path is not None else shipped_model(SHIPPED_DTC)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    check_not_legacy(folder)
    if (folder / "model_index.json").is_file():
        return DTCPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device)
    if not (folder / DTC_RECORD).is_file():
        raise ConfigError(f"{folder} is neither a DTC pipeline folder (model_index.json) nor DTC parts ({DTC_RECORD})")
    record = json.loads((folder / DTC_RECORD).read_text())
    base_dir = Path(base) if base is not None else shipped_model(record["base"])
    lora = folder / DTC_UNET_LORA
    if lora.is_dir() and unet_sha256(base_dir) != record.get("base_unet_sha256"):
        raise ConfigError(f"{lora} was trained on another U-Net than {base_dir / UNET_WEIGHTS} (sha256 differs from "
                          f"{DTC_RECORD}'s base_unet_sha256): give the base it was trained on")
    base_pipe = load_inpaint_pipeline(base_dir, device, dtype)
    image_encoder = ReferenceEncoder.from_pretrained(folder / "image_encoder", dtype=dtype)
    hint_encoder = (HintEncoder.from_pretrained(folder / "hint_encoder", dtype=dtype)
                    if (folder / "hint_encoder").is_dir() else None)
    # Parts trained against an earlier base keep that base's main U-Net in unet/: the hint encoder
    # learnt that U-Net's features, and the base folder may since hold a retrained one.
    unet = (UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=dtype).to(device)
            if (folder / "unet").is_dir() else base_pipe.unet)
    if lora.is_dir():
        unet.load_lora_adapter(str(lora), weight_name=LORA_WEIGHTS, prefix="unet", adapter_name="dtc",
                               local_files_only=True)
        unet.fuse_lora()
        unet.unload_lora()
    pipe = DTCPipeline(vae=base_pipe.vae, unet=unet, image_encoder=image_encoder, hint_encoder=hint_encoder,
                       scheduler=DDIMScheduler.from_config(base_pipe.scheduler.config), inpaint_rule=base_pipe.inpaint_rule)
    return pipe.to(device)


def load_pipeline(path: str | Path | None = None, device: str | None = None, dtype: torch.dtype = torch.float32):
    """Return the try-on pipeline at ``path`` whatever it is conditioned on, on ``device``.

    A DTC parts folder (``dtc.json``) or a folder whose ``model_index.json`` names ``DTCPipeline``
    gives a DTCPipeline (``load_dtc_pipeline``); any other pipeline folder, or None (the shipped
    mini model), a TryOnInpaintPipeline (``load_inpaint_pipeline``).
    """
    if path is not None and is_dtc_folder(path):
        return load_dtc_pipeline(path, device=device, dtype=dtype)
    return load_inpaint_pipeline(path, device, dtype)


def is_dtc_folder(path: str | Path) -> bool:
    """Whether ``path`` holds a Diffuse to Choose model: DTC parts (``dtc.json``) or a folder whose
    ``model_index.json`` names ``DTCPipeline``."""
    folder = Path(path)
    return (folder / DTC_RECORD).is_file() or _pipeline_class(folder) == "DTCPipeline"


def _pipeline_class(folder: Path) -> str | None:
    index = folder / "model_index.json"
    if not index.is_file():
        return None
    try:
        return json.loads(index.read_text()).get("_class_name")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise ConfigError(f"{index} is not a readable pipeline index: {err}") from None
