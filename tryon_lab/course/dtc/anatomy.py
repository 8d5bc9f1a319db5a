"""A DTC model's anatomy (notebook 03): the U-Net's skip connections, parameters per part, and how
far the hint encoder's secondary encoder has drifted from the U-Net it was copied from."""

from __future__ import annotations

from typing import Any

import torch

from tryon_lab.models.dtc import HintModulation, skip_channels


def skip_names(unet) -> list[str]:
    """Names of the U-Net's skip connections plus the mid block, in ``skip_channels`` order:
    ``conv_in``, ``down1.res1``, ``down1.down``, ..., ``mid``."""
    names = ["conv_in"]
    for b, block in enumerate(unet.down_blocks, start=1):
        names += [f"down{b}.res{r}" for r in range(1, len(block.resnets) + 1)]
        if getattr(block, "downsamplers", None):
            names += [f"down{b}.down"] * len(block.downsamplers)
    return names + ["mid"]


def skip_rows(pipe, modulation: HintModulation) -> list[list]:
    """Rows (level, name, channels, map size) of every skip connection ``modulation`` modulates."""
    names, channels = skip_names(pipe.unet), skip_channels(pipe.unet)
    return [[i, name, c, "x".join(map(str, t.shape[-2:]))]
            for i, (name, c, t) in enumerate(zip(names, channels, modulation.shifts))]


def count_parameters(module: torch.nn.Module | torch.Tensor) -> int:
    """Number of parameters of a module (or elements of a tensor parameter)."""
    if isinstance(module, torch.Tensor):
        return module.numel()
    return sum(p.numel() for p in module.parameters())


def parameter_rows(pipe) -> list[list]:
    """Rows (part, what it does, parameters in millions, fp16 MB) of a DTC pipeline."""
    parts: list[tuple[str, str, Any]] = [
        ("vae", "pixels <-> latents (the base model's)", pipe.vae),
        ("unet", "the main 9-channel U-Net (the base model's)", pipe.unet),
        ("image_encoder", "reference -> cross-attention tokens (DINOv2's role)", pipe.image_encoder),
    ]
    hint = pipe.hint_encoder
    if hint is not None:
        parts += [("hint_encoder.adapter", "4-layer CNN: hint pixels -> latent size", hint.adapter),
                  ("hint_encoder.encoder", "secondary encoder: a copy of conv_in, down and mid blocks", hint.encoder),
                  ("hint_encoder.fusion_layers", "zero-initialised 1x1 convs -> FiLM gamma, beta per skip",
                   hint.fusion_layers)]
        if "time_embed" in dict(hint.named_parameters()):
            parts.append(("hint_encoder.time_embed", "learned constant time embedding", hint.time_embed))
    return [[name, what, round(count_parameters(m) / 1e6, 3), round(count_parameters(m) * 2 / 2**20, 2)]
            for name, what, m in parts]


def encoder_drift(pipe) -> list[list]:
    """Rows (block, relative distance) between the hint encoder's secondary encoder and the main
    U-Net block it was copied from: ||w_hint - w_unet|| / ||w_unet|| over the block's weights
    (conv_in: its masked-latent and mask input channels). 0 everywhere = an exact copy."""
    hint = pipe.hint_encoder.encoder.state_dict()
    main = pipe.unet.state_dict()
    latent = pipe.unet.config.out_channels
    sums: dict[str, list[float]] = {}
    for key, weight in hint.items():
        if key not in main or key.startswith("time_embedding"):
            continue
        source = main[key][:, latent:] if key == "conv_in.weight" else main[key]
        block = ".".join(key.split(".")[:2]) if key.startswith("down_blocks") else key.split(".")[0]
        acc = sums.setdefault(block, [0.0, 0.0])
        acc[0] += float((weight.float() - source.float()).pow(2).sum())
        acc[1] += float(source.float().pow(2).sum())
    return [[block, round((d / max(n, 1e-12)) ** 0.5, 4)] for block, (d, n) in sums.items()]
