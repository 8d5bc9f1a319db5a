"""Which main-U-Net parameters a DTC run trains: the same set for every variant of the ablation.

The paper fine-tunes the main U-Net for Paint-by-Example and for every DTC variant alike. Here one
setting (``[*.dtc.train] unet``) applies to all: ``"full"`` (every U-Net weight), ``"lora"`` (peft
LoRA adapters of rank ``unet_lora_rank`` on the ``unet_lora_targets`` layers, added with diffusers'
``unet.add_adapter``) or ``"frozen"`` (the old recipe: only the reference and hint encoders train).
After training a LoRA is fused into the U-Net's weights and the adapters removed
(``finish_unet``), so a saved pipeline is a plain diffusers U-Net holding the fine-tuned weights.
"""

from __future__ import annotations

from diffusers import UNet2DConditionModel

from tryon_lab.errors import ConfigError

UNET_MODES = ("frozen", "lora", "full")
ADAPTER_NAME = "dtc"


def check_unet_mode(mode: str, lora_rank: int, lora_targets: str) -> None:
    """``ConfigError`` unless ``mode`` is one of UNET_MODES and, for "lora", the rank and targets are usable."""
    from tryon_lab.training.dreambooth.train import LORA_PRESETS

    if mode not in UNET_MODES:
        raise ConfigError(f"[dtc.train] unet = {mode!r}; choose one of {', '.join(UNET_MODES)}")
    if mode == "lora" and (int(lora_rank) < 1 or lora_targets not in LORA_PRESETS):
        raise ConfigError(f"[dtc.train] unet = 'lora' needs unet_lora_rank >= 1 (got {lora_rank}) and "
                          f"unet_lora_targets in {', '.join(LORA_PRESETS)} (got {lora_targets!r})")


def prepare_unet(unet: UNet2DConditionModel, mode: str, lora_rank: int = 16, lora_targets: str = "all") -> int:
    """Set what of ``unet`` trains (adding the LoRA adapters for "lora"); returns how many of its
    parameters now receive gradients."""
    from tryon_lab.training.dreambooth.train import lora_config

    check_unet_mode(mode, lora_rank, lora_targets)
    unet.requires_grad_(mode == "full")
    if mode == "lora":
        unet.add_adapter(lora_config(lora_rank, None, lora_targets), adapter_name=ADAPTER_NAME)
    return sum(p.numel() for p in unet.parameters() if p.requires_grad)


def finish_unet(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Fuse a trained LoRA into ``unet``'s weights and drop the adapters (a no-op without one); freeze it."""
    if getattr(unet, "_hf_peft_config_loaded", False):
        unet.fuse_lora()
        unet.unload_lora()
    return unet.requires_grad_(False)
