"""The I/O contract of the phone components: names, shapes and dtypes a phone runner relies on.

A *component* is one network a phone app calls: ``TextEncoder``, ``Unet``, ``VAEEncoder``,
``VAEDecoder`` (and, for Diffuse to Choose, ``ImageEncoder`` / ``HintEncoder``). Each is built from
a pipeline by a function registered with ``@register_component(name)``, which returns the
component's ``ComponentSpec`` and a wrapper module whose ``forward`` takes the inputs in spec order
and returns the outputs in spec order (one tensor or a tuple); a builder returns None when the
pipeline lacks that part. Adding a component is one builder (and one wrapper) here.
Shapes are fixed: phones run static-shape programs, one resolution per export.

Diffuse to Choose (``DTCPipeline``) has no TextEncoder. Its ``ImageEncoder`` maps the reference
(1, 3, R, R) to ``encoder_hidden_states`` (2, N, D), the null tokens then the reference's tokens;
its ``HintEncoder`` maps (``masked_latent``, ``latent_mask``, ``hint``, ``encoder_hidden_states``),
two guidance rows each, to the hint maps: per U-Net skip ``i`` (the conv_in output, every resnet and
downsampler of the down blocks, the mid block last) ``scale_i`` and ``shift_i`` for FiLM, or
``shift_i`` alone for direct addition. The hint encoder does not take the timestep, so a phone
runs it once per try-on. The DTC main U-Net is the ``Unet`` component with those maps as extra
inputs after ``encoder_hidden_states``, in the same order, so it is palettized and chunked as the
text model's U-Net is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tryon_lab.export import wrappers
from tryon_lab.export.conditioning import of_pipeline
from tryon_lab.export.errors import BundleError, ExportInputError
from tryon_lab.models.channels import CHANNEL_GROUPS

DTYPES = ("float32", "int32")
# diffusers' order, which every SD-inpainting checkpoint expects
UNET_CHANNELS = tuple(name for name, count in CHANNEL_GROUPS for _ in range(count))


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of fixed ``shape`` and ``dtype`` (``float32`` or ``int32``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_json(self) -> dict[str, Any]:
        """Return ``{"name", "shape", "dtype"}``."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, entry: Any) -> TensorSpec:
        """Parse a manifest entry, raising ``BundleError`` if it is malformed."""
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise BundleError(f"a tensor entry must be an object with a name, got {entry!r:.80}")
        shape, dtype = entry.get("shape"), entry.get("dtype")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s < 2**20
                                                  for s in shape):
            raise BundleError(f"tensor {entry['name']!r}: shape must be a list of positive integers, got {shape!r:.80}")
        if dtype not in DTYPES:
            raise BundleError(f"tensor {entry['name']!r}: dtype must be one of {DTYPES}, got {dtype!r:.40}")
        return cls(entry["name"], tuple(shape), dtype)


@dataclass(frozen=True)
class ComponentSpec:
    """A component's ``name`` and its ordered ``inputs`` and ``outputs``."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        """Return ``{"inputs": [...], "outputs": [...]}`` (the name is the manifest key)."""
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}

    @classmethod
    def from_json(cls, name: str, entry: Any) -> ComponentSpec:
        """Parse a manifest component entry, raising ``BundleError`` if it is malformed."""
        if not isinstance(entry, dict) or not isinstance(entry.get("inputs"), list) \
                or not isinstance(entry.get("outputs"), list):
            raise BundleError(f"component {name!r} must list its inputs and outputs")
        return cls(name, tuple(TensorSpec.from_json(t) for t in entry["inputs"]),
                   tuple(TensorSpec.from_json(t) for t in entry["outputs"]))


@dataclass(frozen=True)
class Component:
    """A contract ``spec`` with the PyTorch ``module`` that computes it."""

    spec: ComponentSpec
    module: torch.nn.Module

    @property
    def name(self) -> str:
        """The component's contract name, e.g. ``"Unet"``."""
        return self.spec.name


Builder = Callable[[Any], "Component | None"]
_BUILDERS: dict[str, Builder] = {}


def register_component(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``builder(pipe) -> Component | None`` makes component ``name`` (in registration order)."""

    def register(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        return builder

    return register


def component_names() -> tuple[str, ...]:
    """Return every registered component name, in export order."""
    return tuple(_BUILDERS)


def pipeline_components(pipe: Any, only: tuple[str, ...] | None = None) -> dict[str, Component]:
    """Return ``{name: Component}`` for every registered component ``pipe`` has (or just ``only``)."""
    built = {}
    for name, builder in _BUILDERS.items():
        if only is not None and name not in only:
            continue
        component = builder(pipe)
        if component is not None:
            built[name] = component
    return built


def runtime_contract(pipe: Any) -> dict[str, Any]:
    """Return what a phone runner needs besides the networks: sizes, scaling, U-Net channel order,
    and the conditioning's entries (``conditioning.Conditioning.runtime``)."""
    return {
        "resolution": int(pipe.resolution),
        "latent_size": int(pipe.unet.config.sample_size),
        "vae_scale_factor": int(pipe.vae_scale_factor),
        "vae_scaling_factor": float(pipe.vae.config.scaling_factor),
        "unet_batch": guidance_rows(pipe),
        "unet_channels": list(UNET_CHANNELS),
        "latent_mask": "max-pool of the pixel mask (1 = repaint) to the latent grid; masked-image latent: "
                       "the VAEEncoder's posterior mode",
        "image_range": [-1.0, 1.0],
        **of_pipeline(pipe).runtime(pipe),
    }


def guidance_rows(pipe: Any) -> int:
    """Rows of every U-Net call: 2 for classifier-free guidance (unconditional, then conditional, in
    one call), 1 for a pipeline that samples with its LCM LoRA (the guidance is distilled into it)."""
    return 1 if type(pipe.scheduler).__name__ == "LCMScheduler" else 2


def _hint_encoder_of(pipe: Any):
    """``pipe``'s hint encoder, or None; ``ExportInputError`` for one that needs the timestep."""
    encoder = getattr(pipe, "hint_encoder", None)
    if encoder is not None and encoder.config.timestep_conditioning:
        raise ExportInputError("a timestep-conditioned hint encoder would run at every step; the export supports "
                               "hint encoders computed once per image (timestep_conditioning=False)")
    return encoder


def _tokens_spec(pipe: Any) -> TensorSpec:
    return TensorSpec("encoder_hidden_states",
                      (guidance_rows(pipe), of_pipeline(pipe).token_count(pipe), pipe.unet.config.cross_attention_dim))


def _hint_specs(pipe: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of the HintEncoder; the map shapes are measured with one pass on zeros."""
    side, latent = pipe.resolution, pipe.unet.config.sample_size
    channels = pipe.unet.config.out_channels
    rows = guidance_rows(pipe)
    inputs = (TensorSpec("masked_latent", (rows, channels, latent, latent)),
              TensorSpec("latent_mask", (rows, 1, latent, latent)),
              TensorSpec("hint", (rows, 3, side, side)),
              _tokens_spec(pipe))
    with torch.no_grad():
        maps = wrappers.HintEncoderWrapper(pipe.hint_encoder)(*(torch.zeros(t.shape) for t in inputs))
    kinds = ("scale", "shift") if pipe.hint_encoder.config.fusion == "film" else ("shift",)
    names = [f"{kind}_{i}" for i in range(len(maps) // len(kinds)) for kind in kinds]
    return inputs, tuple(TensorSpec(name, tuple(m.shape)) for name, m in zip(names, maps))


@register_component("TextEncoder")
def _text_encoder(pipe: Any) -> Component | None:
    if getattr(pipe, "text_encoder", None) is None:  # e.g. a pipeline conditioned on a reference image
        return None
    length = pipe.tokenizer.model_max_length
    width = pipe.text_encoder.config.hidden_size
    spec = ComponentSpec("TextEncoder", (TensorSpec("input_ids", (1, length), "int32"),),
                         (TensorSpec("last_hidden_state", (1, length, width)),))
    return Component(spec, wrappers.TextEncoderWrapper(pipe.text_encoder))


@register_component("Unet")
def _unet(pipe: Any) -> Component:
    config = pipe.unet.config
    side = config.sample_size
    hint = _hint_encoder_of(pipe)
    maps = _hint_specs(pipe)[1] if hint is not None else ()
    rows = guidance_rows(pipe)
    spec = ComponentSpec(
        "Unet",
        (TensorSpec("sample", (rows, config.in_channels, side, side)),
         TensorSpec("timestep", (rows,)),
         _tokens_spec(pipe), *maps),
        (TensorSpec("noise_pred", (rows, config.out_channels, side, side)),),
    )
    return Component(spec, wrappers.UnetWrapper(pipe.unet, film=hint is not None and hint.config.fusion == "film"))


@register_component("VAEEncoder")
def _vae_encoder(pipe: Any) -> Component:
    side, latent = pipe.resolution, pipe.unet.config.sample_size
    channels = pipe.vae.config.latent_channels
    spec = ComponentSpec("VAEEncoder", (TensorSpec("image", (1, 3, side, side)),),
                         (TensorSpec("latent", (1, channels, latent, latent)),))
    return Component(spec, wrappers.VAEEncoderWrapper(pipe.vae))


@register_component("VAEDecoder")
def _vae_decoder(pipe: Any) -> Component:
    side, latent = pipe.resolution, pipe.unet.config.sample_size
    channels = pipe.vae.config.latent_channels
    spec = ComponentSpec("VAEDecoder", (TensorSpec("latent", (1, channels, latent, latent)),),
                         (TensorSpec("image", (1, 3, side, side)),))
    return Component(spec, wrappers.VAEDecoderWrapper(pipe.vae))


@register_component("ImageEncoder")
def _image_encoder(pipe: Any) -> Component | None:
    if getattr(pipe, "image_encoder", None) is None:  # a text-conditioned pipeline
        return None
    side = pipe.resolution
    spec = ComponentSpec("ImageEncoder", (TensorSpec("reference", (1, 3, side, side)),), (_tokens_spec(pipe),))
    return Component(spec, wrappers.ImageEncoderWrapper(pipe.image_encoder, side, guidance_rows(pipe)))


@register_component("HintEncoder")
def _hint_encoder(pipe: Any) -> Component | None:
    if _hint_encoder_of(pipe) is None:  # a text pipeline, or the no-hint DTC baseline
        return None
    return Component(ComponentSpec("HintEncoder", *_hint_specs(pipe)), wrappers.HintEncoderWrapper(pipe.hint_encoder))
