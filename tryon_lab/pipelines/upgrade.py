"""Upgrade a model folder saved before tryon-lab fed the U-Net diffusers' channel order.

Earlier versions fed the inpainting U-Net [noisy latent (4), masked-image latent (4), mask (1)];
every SD-inpainting checkpoint, and tryon-lab now, use [noisy latent, mask, masked-image latent]
(``tryon_lab.models.channels``). Only ``conv_in`` sees that order, so permuting its input
channels makes an old model compute in the new order exactly what it computed in the old one: no
retraining. The DTC hint encoder's ``conv_in`` is a copy of the U-Net's last 5 input channels and
is permuted the same way. An upgraded folder records ``inpaint_rule`` "tryon-lab" (how those
models were trained), which is also how the loader tells an old folder from a new one.

A pipeline folder is old when its ``model_index.json`` names a tryon-lab pipeline class without
an ``inpaint_rule``; a DTC parts folder when its ``dtc.json`` has none. The upgrade works on a
copy and swaps it in, so an interrupted upgrade leaves the folder as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tryon_lab.errors import ConfigError
from tryon_lab.paths import sha256_file
from tryon_lab.pipelines.latents import COURSE_RULE

PIPELINE_INDEX = "model_index.json"
DTC_RECORD = "dtc.json"
OUR_PIPELINES = ("TryOnInpaintPipeline", "DTCPipeline")
WEIGHTS = "diffusion_pytorch_model.safetensors"
# The component folders whose conv_in takes the inpainting channels, and that weight's key.
CONV_IN_KEYS = {"unet": "conv_in.weight", "hint_encoder": "encoder.conv_in.weight"}
UPGRADE_COMMAND = "tryon-lab upgrade"


def legacy_record(folder: str | Path) -> Path | None:
    """The record (``model_index.json`` or ``dtc.json``) that marks ``folder`` as saved in the old
    channel order, or None when the folder is not such a tryon-lab folder."""
    folder = Path(folder)
    for name in (PIPELINE_INDEX, DTC_RECORD):
        path = folder / name
        if not path.is_file():
            continue
        record = _read_json(path)
        ours = name == DTC_RECORD or record.get("_class_name") in OUR_PIPELINES
        return path if ours and "inpaint_rule" not in record else None
    return None


def check_not_legacy(folder: str | Path) -> None:
    """``ConfigError`` naming the fix when ``folder`` was saved in the old channel order."""
    if legacy_record(folder) is not None:
        raise ConfigError(f"{folder} was saved by an earlier tryon-lab that fed the U-Net [noisy latent, masked-image "
                          f"latent, mask]; upgrade it to diffusers' channel order with: {UPGRADE_COMMAND} {folder}")


def upgrade_folders(folders: list[str | Path]) -> dict[str, dict[str, str]]:
    """Upgrade every folder in place (``upgrade_folder``); return {folder: its changed files' hashes}.
    ``ConfigError`` before any folder is changed if one is not a model folder in the old channel order."""
    stale = [str(folder) for folder in folders if legacy_record(folder) is None]
    if stale:
        raise ConfigError(f"not a model folder in the old channel order (nothing to upgrade): {', '.join(stale)}")
    return {str(folder): upgrade_folder(folder) for folder in folders}


def to_diffusers_order(weight: torch.Tensor) -> torch.Tensor:
    """A conv_in weight (out, C, k, k) whose last 5 input channels are [masked-image latent (4), mask (1)]
    -> the same weight for inputs ordered [mask, masked-image latent] (the first C - 5 stay)."""
    channels = weight.shape[1]
    if channels < 5:
        raise ConfigError(f"conv_in has {channels} input channels; an inpainting conv_in has at least 5")
    order = [*range(channels - 5), channels - 1, *range(channels - 5, channels - 1)]
    return weight[:, order].contiguous()


def upgrade_folder(folder: str | Path) -> dict[str, str]:
    """Permute every old ``conv_in`` in ``folder`` (a pipeline or DTC parts folder) to diffusers' order and
    record ``inpaint_rule``; returns {weights file: "sha256 before -> after"}. ``ConfigError`` if the
    folder is not an old tryon-lab model folder."""
    folder = Path(folder)
    record_path = legacy_record(folder)
    if record_path is None:
        raise ConfigError(f"{folder} is not a model folder saved in the old channel order (nothing to upgrade)")
    tmp = folder.parent / f".upgrade-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    changed = {}
    try:
        shutil.copytree(folder, tmp)
        for component, key in CONV_IN_KEYS.items():
            weights = tmp / component / WEIGHTS
            if weights.is_file():
                before = sha256_file(weights)
                _permute_tensor(weights, key)
                changed[f"{component}/{WEIGHTS}"] = f"{before} -> {sha256_file(weights)}"
        record = _read_json(record_path)
        record["inpaint_rule"] = COURSE_RULE
        (tmp / record_path.name).write_text(json.dumps(record, indent=2) + "\n")
        old = folder.parent / f".old-{folder.name}-{os.getpid()}"
        folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return changed


def _permute_tensor(path: Path, key: str) -> None:
    with safe_open(path, "pt") as file:
        metadata = file.metadata()
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    if key not in tensors:
        raise ConfigError(f"{path} has no {key!r}: not a tryon-lab U-Net or hint encoder")
    tensors[key] = to_diffusers_order(tensors[key])
    save_file(tensors, path, metadata=metadata)


def _read_json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not readable JSON: {err}") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return record
