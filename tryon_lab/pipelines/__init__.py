"""Diffusers pipelines: TryOnInpaintPipeline (text-guided try-on) and helpers.

The names below load on first use, so that light modules of this package (``samplers``, the
sampler registry the CLI's help lists) import without torch and diffusers.
"""

from importlib import import_module

_EXPORTS = {"TryOnInpaintPipeline": "inpaint", "TryOnPipelineOutput": "inpaint", "paste_back": "compositing",
            "restore": "compositing"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"tryon_lab.pipelines.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tryon_lab.pipelines' has no attribute {name!r}")
