"""Diffuse to Choose (DTC), as in Seyfioglu et al. 2024: reference tokens, the collage hint, a hint
encoder and FiLM skip fusion.

- ``reference_encoder``: ``ReferenceEncoder``, the catalog image -> N tokens of the U-Net's
  ``cross_attention_dim``, replacing the text prompt (Paint-by-Example style).
- ``hint_encoder``: ``HintEncoder``, the hint -> adapter -> a copy of the main U-Net's encoder ->
  zero-initialised FiLM (or direct-addition) parameters at each of its skip connections.
- ``unet_hooks``: ``dtc_unet_forward``, the main U-Net run with the hint's ``HintModulation``
  (in two halves for FiLM), and the helpers that split it.
- ``perceptual``: ``PerceptualNet``, the perceptual-loss network (VGG stand-in), trained without
  labels and never the judge.
"""

# diffusers loads a saved component by looking up its base classes (ModelMixin) in the module that
# model_index.json names: this package, for every DTC pipeline saved so far.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401

from tryon_lab.models.dtc.hint_encoder import (
    ADAPTER_LAYERS,
    EMPTY_HINT,
    FILM_MODES,
    FUSIONS,
    HintAdapter,
    HintEncoder,
)
from tryon_lab.models.dtc.perceptual import PerceptualNet
from tryon_lab.models.dtc.reference_encoder import ReferenceEncoder, resize_images
from tryon_lab.models.dtc.unet_hooks import (
    HintModulation,
    check_unet_supported,
    dtc_unet_forward,
    skip_channels,
    unet_decode,
    unet_encode,
    unet_init_config,
    unet_time_embedding,
)

# Saved pipelines name a component's class by its module (model_index.json): name the package, so
# moving code between these files never breaks a saved folder (older folders name it too).
for _cls in (HintEncoder, ReferenceEncoder, PerceptualNet):
    _cls.__module__ = __name__

__all__ = [
    "ADAPTER_LAYERS", "EMPTY_HINT", "FILM_MODES", "FUSIONS", "HintAdapter", "HintEncoder", "HintModulation",
    "PerceptualNet", "ReferenceEncoder", "check_unet_supported", "dtc_unet_forward", "resize_images",
    "skip_channels", "unet_decode", "unet_encode", "unet_init_config", "unet_time_embedding",
]
