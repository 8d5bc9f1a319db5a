"""What the app needs from a model: ``generate(image, mask, prompt, steps, seed, on_step, sampler) -> PIL``.

A back end turns one photo, its bool mask and a prompt into the try-on at the photo's size,
calling ``on_step(step, total, preview)`` after every denoising step, where ``preview()``
returns the photo with the current estimate painted in (decoded only when the app asks, so a
back end never pays for previews nobody sees). ``cancel()`` asks a running ``generate`` to stop
soon; it then raises ``GenerationCancelled``. ``samplers`` names what ``generate`` can run, its
default first; ``lcm`` among them lets the app show an instant result first and refine it with
the default. ``PyTorchBackend`` wraps a
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

from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

Preview = Callable[[], Image.Image]
StepCallback = Callable[[int, int, Preview], None]


class GenerationCancelled(Exception):
    """A generation stopped early because ``cancel()`` was called."""


@runtime_checkable
class TryOnBackend(Protocol):
    """The interface the Fitting Room calls; see the module docstring."""

    name: str
    samplers: tuple[str, ...]

    def generate(self, image: Image.Image, mask: np.ndarray, prompt: str, steps: int, seed: int,
                 on_step: StepCallback | None = None, sampler: str | None = None) -> Image.Image:
        """Return the try-on of ``image`` (RGB) inside ``mask`` (bool, the photo's size), sampled
        with ``sampler`` (default: the first of ``samplers``)."""

    def cancel(self) -> None:
        """Ask a running ``generate`` to stop after its current step."""


class PyTorchBackend:
    """Runs a diffusers ``TryOnInpaintPipeline`` (the shipped mini model, a DreamBooth
    fine-tune, or a local SD-1.5-inpainting folder) with DDIM and classifier-free guidance, or, when
    the pipeline holds its LCM LoRA, with 4 unguided LCM steps on request."""

    def __init__(self, pipe: Any, guidance_scale: float = TEXT_GUIDANCE) -> None:
        from tryon_lab.pipelines.samplers import has_lcm

        self.pipe = pipe
        self.guidance_scale = guidance_scale
        self.samplers = ("ddim", "lcm") if has_lcm(pipe) else ("ddim",)
        self.name = f"PyTorch · {Path(pipe.name_or_path).name}" if pipe.name_or_path else "PyTorch"
        self._cancelled = threading.Event()
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_path(cls, path: str | Path | None = None, **kwargs) -> PyTorchBackend:
        """Load a pipeline folder (default: the shipped mini model) on the best device, with its LCM
        LoRA when the folder has one."""
        from tryon_lab.paths import shipped_model
        from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
        from tryon_lab.pipelines.samplers import load_lcm

        pipe = load_inpaint_pipeline(path)
        load_lcm(pipe, path if path is not None else shipped_model(SHIPPED_INPAINT))
        return cls(pipe, **kwargs)

    def generate(self, image: Image.Image, mask: np.ndarray, prompt: str, steps: int, seed: int,
                 on_step: StepCallback | None = None, sampler: str | None = None) -> Image.Image:
        """Inpaint ``mask`` of ``image`` as ``prompt`` says in ``steps`` steps from ``seed`` with
        ``sampler`` (ddim, guided, by default; lcm runs with the guidance distilled in)."""
        from tryon_lab.errors import TryOnInputError
        from tryon_lab.pipelines.compositing import paste_back
        from tryon_lab.pipelines.latents import tensor_to_pil
        from tryon_lab.pipelines.samplers import use_sampler

        sampler = sampler or self.samplers[0]
        if sampler not in self.samplers:
            raise TryOnInputError(f"this model samples with {', '.join(self.samplers)}, not {sampler!r}")
        guidance = use_sampler(self.pipe, sampler).guidance_scale if sampler == "lcm" else self.guidance_scale
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

        try:
            output = self.pipe(image, mask, prompt, num_inference_steps=steps, guidance_scale=guidance,
                               seed=seed, callback_on_step_end=step_end)
        finally:
            if sampler != self.samplers[0]:
                use_sampler(self.pipe, self.samplers[0])  # the adapter off again: the base model exactly
        if self._cancelled.is_set():
            raise GenerationCancelled("the try-on was cancelled")
        return output.images[0]

    def cancel(self) -> None:
        """Stop the running generation after its current step."""
        self._cancelled.set()
        self.pipe.interrupt()
