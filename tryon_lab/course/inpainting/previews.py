"""Sampling step by step (notebook 01): the noisy latent and the predicted clean latent at every few
steps of one real pipeline call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from tryon_lab.course.inpainting.noise import noise_schedule
from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline, TryOnPipelineOutput
from tryon_lab.pipelines.latents import tensor_to_pil
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE
from tryon_lab.plotting import NotebookFigure, image_grid


@dataclass
class DenoisingPreviews:
    """Previews recorded during one ``pipe(...)`` call: at each recorded ``steps[i]`` (timestep
    ``timesteps[i]``), ``latents[i]`` decodes the noisy latent the U-Net saw and ``predicted[i]``
    decodes its estimate of the clean latent x0 at that step. ``output`` is the call's result."""

    steps: list[int] = field(default_factory=list)
    timesteps: list[float] = field(default_factory=list)
    latents: list[Image.Image] = field(default_factory=list)
    predicted: list[Image.Image] = field(default_factory=list)
    output: TryOnPipelineOutput | None = None

    def figure(self, size: float = 1.8) -> NotebookFigure:
        """Two rows: the noisy latents (top) and the predicted x0 (bottom), one column per step."""
        titles = [f"step {s} (t={t:.0f})\nx_t" for s, t in zip(self.steps, self.timesteps)]
        titles += [f"step {s}\npredicted x0" for s in self.steps]
        return image_grid(self.latents + self.predicted, titles, ncols=len(self.steps), size=size)


class _UNetTap:
    """Forward hook that keeps the U-Net's latest input latents, timestep and output."""

    def __init__(self) -> None:
        self.sample: torch.Tensor | None = None
        self.timestep: float = 0.0
        self.output: torch.Tensor | None = None

    def __call__(self, module, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        self.sample = sample.detach()
        self.timestep = float(timestep)
        self.output = (output[0] if isinstance(output, tuple) else output.sample).detach()


def predicted_x0(x_t: torch.Tensor, model_output: torch.Tensor, alpha_cumprod: float,
                 prediction_type: str = "epsilon") -> torch.Tensor:
    """The clean latent a U-Net output implies at a step with ᾱ_t = ``alpha_cumprod``:
    epsilon: (x_t - sqrt(1-ᾱ) eps) / sqrt(ᾱ); v_prediction: sqrt(ᾱ) x_t - sqrt(1-ᾱ) v; sample: as is."""
    a, b = alpha_cumprod**0.5, (1.0 - alpha_cumprod) ** 0.5
    if prediction_type == "epsilon":
        return (x_t - b * model_output) / a
    if prediction_type == "v_prediction":
        return a * x_t - b * model_output
    if prediction_type == "sample":
        return model_output
    raise ConfigError(f"unknown prediction_type {prediction_type!r}")


def denoising_previews(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str = "", *,
                       steps: int = 25, every: int = 5, seed: int = 0, guidance_scale: float = TEXT_GUIDANCE,
                       **call_kwargs) -> DenoisingPreviews:
    """Run ``pipe(image, mask, prompt, ...)`` once and record previews every ``every`` steps (and
    at the last step) through ``callback_on_step_end``.

    A forward hook on the U-Net keeps the latent it saw (after the scheduler's input scaling,
    so every sampler's x_t is on the same scale) and its noise prediction (combined with
    classifier-free guidance as the pipeline does); the callback decodes x_t and the implied x0.
    Extra ``call_kwargs`` go to the pipeline call.
    """
    if every < 1:
        raise TryOnInputError(f"every must be at least 1, got {every}")
    schedule = noise_schedule(pipe.scheduler)
    prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")
    channels = pipe.unet.config.out_channels
    tap, previews = _UNetTap(), DenoisingPreviews()

    def record(pipeline, step, timestep, state):
        if step % every and step != steps - 1:
            return {}
        output = tap.output
        if guidance_scale > 1.0:
            uncond, cond = output.chunk(2)
            output = uncond + guidance_scale * (cond - uncond)
        x_t = tap.sample[: output.shape[0], :channels]
        x0 = predicted_x0(x_t, output, schedule.at(tap.timestep), prediction_type)
        decoded = pipeline.decode_latents(torch.cat([x_t[:1], x0[:1]]))
        previews.steps.append(step)
        previews.timesteps.append(tap.timestep)
        previews.latents.append(tensor_to_pil(decoded[0]))
        previews.predicted.append(tensor_to_pil(decoded[1]))
        return {}

    handle = pipe.unet.register_forward_hook(tap, with_kwargs=True)
    try:
        previews.output = pipe(image, mask, prompt, num_inference_steps=steps, guidance_scale=guidance_scale,
                               seed=seed, callback_on_step_end=record, **call_kwargs)
    finally:
        handle.remove()
    return previews
