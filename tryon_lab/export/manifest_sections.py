"""The manifest's sections besides its components: the ``Runtime`` a phone runner needs, the tokenizer's
files and the golden try-on, each a frozen dataclass with ``to_json`` and ``from_json``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tryon_lab.export.conditioning import CONDITIONINGS
from tryon_lab.export.manifest_fields import (
    Invalid,
    optional,
    read_float,
    read_int,
    read_key,
    read_list,
    read_object,
    read_path,
    read_text,
    show,
)

MAX_STEPS = 1000  # a manifest cannot make verification run for ever


@dataclass(frozen=True)
class Runtime:
    """What a phone runner needs besides the networks (``contract.runtime_contract``): sizes, scaling,
    the U-Net's channel order and the ``conditioning`` with its entries (``token_length`` for text;
    ``reference_tokens``, ``reference``, ``hint`` and ``empty_hint`` for a reference image)."""

    resolution: int
    latent_size: int
    vae_scale_factor: int
    vae_scaling_factor: float
    unet_batch: int
    unet_channels: tuple[str, ...]
    latent_mask: str
    image_range: tuple[float, float]
    conditioning: str = "text"
    token_length: int | None = None
    reference_tokens: int | None = None
    reference: str | None = None
    hint: str | None = None
    empty_hint: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the ``runtime`` section."""
        entry = {"resolution": self.resolution, "latent_size": self.latent_size,
                 "vae_scale_factor": self.vae_scale_factor, "vae_scaling_factor": self.vae_scaling_factor,
                 "unet_batch": self.unet_batch, "unet_channels": list(self.unet_channels),
                 "latent_mask": self.latent_mask, "image_range": list(self.image_range),
                 "conditioning": self.conditioning}
        if self.conditioning == "text":
            return {**entry, "token_length": self.token_length}
        return {**entry, "reference_tokens": self.reference_tokens, "reference": self.reference, "hint": self.hint,
                "empty_hint": self.empty_hint}

    @classmethod
    def from_json(cls, value: Any, name: str = "runtime") -> Runtime:
        """Parse the ``runtime`` section (one without ``conditioning`` predates DTC export: text)."""
        value = read_object(value, name)

        def get(key: str, read: Callable[[Any, str], Any]) -> Any:
            return read(read_key(value, key, name), f"{name}.{key}")

        image_range = get("image_range", lambda v, n: read_list(v, n, read_float, 2))
        if len(image_range) != 2 or not image_range[0] < image_range[1]:
            raise Invalid(f"{name}.image_range", f"must be [low, high], got {show(list(image_range))}")
        sizes = dict(resolution=get("resolution", lambda v, n: read_int(v, n, 1, 1 << 16)),
                     latent_size=get("latent_size", lambda v, n: read_int(v, n, 1, 1 << 16)),
                     vae_scale_factor=get("vae_scale_factor", lambda v, n: read_int(v, n, 1, 1 << 10)),
                     vae_scaling_factor=get("vae_scaling_factor", read_float),
                     unet_batch=get("unet_batch", lambda v, n: read_int(v, n, 1, 1 << 10)),
                     unet_channels=get("unet_channels", lambda v, n: read_list(v, n, read_text, 1)),
                     latent_mask=get("latent_mask", read_text), image_range=image_range)
        conditioning = read_text(value.get("conditioning", "text"), f"{name}.conditioning", tuple(CONDITIONINGS))
        if conditioning == "text":
            return cls(**sizes, token_length=get("token_length", lambda v, n: read_int(v, n, 1, 1 << 16)))
        return cls(**sizes, conditioning=conditioning,
                   reference_tokens=get("reference_tokens", lambda v, n: read_int(v, n, 1, 1 << 16)),
                   reference=get("reference", read_text), hint=get("hint", optional(read_text)),
                   empty_hint=get("empty_hint", read_float))


@dataclass(frozen=True)
class TokenizerFiles:
    """The BPE files a phone tokenizer reads: ``vocab`` and ``merges`` paths, ``max_length`` tokens."""

    vocab: str
    merges: str
    max_length: int

    def to_json(self) -> dict[str, Any]:
        """Return the ``tokenizer`` section."""
        return {"vocab": self.vocab, "merges": self.merges, "max_length": self.max_length}

    @classmethod
    def from_json(cls, value: Any, name: str = "tokenizer") -> TokenizerFiles:
        """Parse the ``tokenizer`` section."""
        value = read_object(value, name)
        return cls(read_path(read_key(value, "vocab", name), f"{name}.vocab"),
                   read_path(read_key(value, "merges", name), f"{name}.merges"),
                   read_int(read_key(value, "max_length", name), f"{name}.max_length", 1, 1 << 16))


@dataclass(frozen=True)
class GoldenTryOn:
    """The golden try-on: its arrays' file ``tryon``, the ``prompt`` (None for a DTC model), and the
    ``steps``, ``guidance_scale`` and ``seed`` it ran with."""

    tryon: str
    prompt: str | None
    steps: int
    guidance_scale: float
    seed: int

    def to_json(self) -> dict[str, Any]:
        """Return the ``golden`` section."""
        return {"tryon": self.tryon, "prompt": self.prompt, "steps": self.steps,
                "guidance_scale": self.guidance_scale, "seed": self.seed}

    @classmethod
    def from_json(cls, value: Any, name: str = "golden") -> GoldenTryOn:
        """Parse the ``golden`` section."""
        value = read_object(value, name)
        return cls(read_path(read_key(value, "tryon", name), f"{name}.tryon"),
                   optional(read_text)(read_key(value, "prompt", name), f"{name}.prompt"),
                   read_int(read_key(value, "steps", name), f"{name}.steps", 1, MAX_STEPS),
                   read_float(read_key(value, "guidance_scale", name), f"{name}.guidance_scale"),
                   read_int(read_key(value, "seed", name), f"{name}.seed"))
