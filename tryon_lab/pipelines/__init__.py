"""Diffusers pipelines: TryOnInpaintPipeline (text-guided try-on) and helpers."""

from tryon_lab.pipelines.compositing import paste_back, restore
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline, TryOnPipelineOutput

__all__ = ["TryOnInpaintPipeline", "TryOnPipelineOutput", "paste_back", "restore"]
