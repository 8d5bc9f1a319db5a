"""What the app needs from a model: ``generate(image, mask, prompt, steps, seed, on_step) -> PIL``.

A back end turns one photo, its bool mask and a prompt into the try-on at the photo's size,
calling ``on_step(step, total, preview)`` after every denoising step, where ``preview()``
returns the photo with the current estimate painted in (decoded only when the app asks, so a
back end never pays for previews nobody sees). ``cancel()`` asks a running ``generate`` to stop
soon; it then raises ``GenerationCancelled``. ``PyTorchBackend`` wraps a
``TryOnInpaintPipeline``; ``ExecuTorchBackend`` (``tryon_lab.app.executorch_backend``)
implements the same two methods over an exported phone bundle's programs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

Preview = Callable[[], Image.Image]
StepCallback = Callable[[int, int, Preview], None]


class GenerationCancelled(Exception):
    """A generation stopped early because ``cancel()`` was called."""


@runtime_checkable
class TryOnBackend(Protocol):
    """The interface the Fitting Room calls; see the module docstring."""

    name: str

    def generate(self, image: Image.Image, mask: np.ndarray, prompt: str, steps: int, seed: int,
                 on_step: StepCallback | None = None) -> Image.Image:
        """Return the try-on of ``image`` (RGB) inside ``mask`` (bool, the photo's size)."""

    def cancel(self) -> None:
        """Ask a running ``generate`` to stop after its current step."""


class PyTorchBackend:
    """Runs a diffusers ``TryOnInpaintPipeline`` (the shipped mini model, a DreamBooth
    fine-tune, or a local SD-1.5-inpainting folder) with classifier-free guidance."""

    def __init__(self, pipe: Any, guidance_scale: float = 4.0) -> None:
        self.pipe = pipe
        self.guidance_scale = guidance_scale
        self.name = f"PyTorch · {Path(pipe.name_or_path).name}" if pipe.name_or_path else "PyTorch"
        self._cancelled = threading.Event()
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_path(cls, path: str | Path | None = None, **kwargs) -> PyTorchBackend:
        """Load a pipeline folder (default: the shipped mini model) on the best device."""
        from tryon_lab.pipelines.loading import load_inpaint_pipeline

        return cls(load_inpaint_pipeline(path), **kwargs)

    def generate(self, image: Image.Image, mask: np.ndarray, prompt: str, steps: int, seed: int,
                 on_step: StepCallback | None = None) -> Image.Image:
        """Inpaint ``mask`` of ``image`` as ``prompt`` says in ``steps`` steps from ``seed``."""
        from tryon_lab.pipelines.compositing import paste_back
        from tryon_lab.pipelines.latents import tensor_to_pil

        self._cancelled.clear()

        def step_end(pipe, step: int, timestep, tensors: dict) -> dict:
            # The pipeline clears its interrupt flag when its loop starts; asking again here
            # also covers a cancel() that came while the prompt was being encoded.
            if self._cancelled.is_set():
                pipe.interrupt()
            elif on_step is not None:
                latents = tensors["latents"]
                on_step(step, steps, lambda: paste_back(image, tensor_to_pil(pipe.decode_latents(latents[:1])[0]),
                                                        mask, 0.0))
            return {}

        output = self.pipe(image, mask, prompt, num_inference_steps=steps, guidance_scale=self.guidance_scale,
                           seed=seed, callback_on_step_end=step_end)
        if self._cancelled.is_set():
            raise GenerationCancelled("the try-on was cancelled")
        return output.images[0]

    def cancel(self) -> None:
        """Stop the running generation after its current step."""
        self._cancelled.set()
        self.pipe.interrupt()
