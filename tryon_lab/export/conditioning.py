"""What the U-Net is conditioned on, per kind of model: a text prompt or a reference image (DTC).

A ``Conditioning`` holds everything the export does differently for that choice, so the bundle,
golden data, verification and the phone loop stay one code path:

- ``components``: the components that make the U-Net's conditioning (besides the VAE's);
- ``token_count(pipe)``: rows of the U-Net's ``encoder_hidden_states``;
- ``runtime(pipe)``: its entries of the manifest's runtime contract;
- ``golden_inputs(pipe, sample)``: the fixed try-on's conditioning arrays from a world sample.

The phone loop's side (how the runners turn these into U-Net inputs) is ``runner.unet_conditioning``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tryon_lab.export.errors import BundleError, ExportInputError
from tryon_lab.models.dtc import EMPTY_HINT


class TextConditioning:
    """A text try-on model (``TryOnInpaintPipeline``): prompt token ids -> TextEncoder."""

    name = "text"
    components = ("TextEncoder",)

    def token_count(self, pipe: Any) -> int:
        """The tokenizer's padded length."""
        return int(pipe.tokenizer.model_max_length)

    def runtime(self, pipe: Any) -> dict[str, Any]:
        """``{conditioning, token_length}``."""
        return {"conditioning": self.name, "token_length": self.token_count(pipe)}

    def golden_inputs(self, pipe: Any, sample: Any) -> dict[str, np.ndarray]:
        """Token ids (1, L) int32 of the sample's caption and of the empty negative prompt."""
        def tokens(text: str) -> np.ndarray:
            ids = pipe.tokenizer([text], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                                 truncation=True, return_tensors="np").input_ids
            return ids.astype(np.int32)

        return {"input_ids": tokens(sample.caption), "negative_input_ids": tokens("")}


class ReferenceConditioning:
    """A Diffuse-to-Choose model (``DTCPipeline``): reference image -> ImageEncoder, hint -> HintEncoder."""

    name = "reference"
    components = ("ImageEncoder",)  # and the HintEncoder, unless the model is the no-hint baseline

    def token_count(self, pipe: Any) -> int:
        """The reference encoder's token count (grid cells + the pooled token)."""
        return int(pipe.image_encoder.num_tokens)

    def runtime(self, pipe: Any) -> dict[str, Any]:
        """``{conditioning, reference_tokens, reference, hint, empty_hint}``: how a phone makes the inputs."""
        return {
            "conditioning": self.name,
            "reference_tokens": self.token_count(pipe),
            "reference": "the item's catalog image fitted into the model square (aspect kept, padded white), "
                         "in image_range",
            "hint": "empty_hint everywhere except the pixel mask's largest axis-aligned rectangle, which holds "
                    "the item's image stretched into it (Lanczos); in image_range" if pipe.hint_encoder is not None
                    else None,
            "empty_hint": EMPTY_HINT,
        }

    def golden_inputs(self, pipe: Any, sample: Any) -> dict[str, np.ndarray]:
        """The sample's reference (1, 3, R, R) and its hint in the sample's mask, as ``DTCPipeline`` makes them."""
        return {"reference": pipe.reference_pixels([sample.reference]).numpy(),
                "hint": pipe.make_hints([sample.reference], [sample.shape_mask]).numpy()}


Conditioning = TextConditioning | ReferenceConditioning
TEXT = TextConditioning()
REFERENCE = ReferenceConditioning()
CONDITIONINGS: dict[str, Conditioning] = {c.name: c for c in (TEXT, REFERENCE)}


def of_pipeline(pipe: Any) -> Conditioning:
    """The conditioning of a pipeline: reference for one with an ``image_encoder``, text for one with a
    ``text_encoder``; ``ExportInputError`` for neither."""
    if getattr(pipe, "image_encoder", None) is not None:
        return REFERENCE
    if getattr(pipe, "text_encoder", None) is not None:
        return TEXT
    raise ExportInputError(f"{type(pipe).__name__} has neither a text encoder nor an image encoder to export")


def named(name: Any) -> Conditioning:
    """The conditioning a manifest's ``runtime.conditioning`` names; ``BundleError`` if unknown."""
    if not isinstance(name, str) or name not in CONDITIONINGS:
        raise BundleError(f"unknown conditioning {name!r:.40}; expected one of {sorted(CONDITIONINGS)}")
    return CONDITIONINGS[name]
