"""A guided sampling loop's inputs and result, exactly as the pipeline makes them (notebook 01's
sampling-loop exercise starts from these and must end where the pipeline does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tryon_lab.data.io import load_image, load_mask
from tryon_lab.models.channels import split_inpaint_channels
from tryon_lab.pipelines.compositing import to_model_square
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline


@dataclass
class SamplingInputs:
    """What a guided sampling loop starts from, exactly as ``pipe(...)`` prepares it for one seed:
    ``latents`` (B, 4, s, s) the initial noise, already multiplied by ``scheduler.init_noise_sigma``;
    ``mask`` (B, 1, s, s) the latent mask; ``masked_image_latents`` (B, 4, s, s); ``text_embeddings``
    (2B, L, D), the negative (empty) prompt's rows first, then the prompt's; the ``scheduler`` with its
    timesteps set."""

    latents: torch.Tensor
    mask: torch.Tensor
    masked_image_latents: torch.Tensor
    text_embeddings: torch.Tensor
    scheduler: Any


def sampling_inputs(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str, *, steps: int,
                    seed: int, scheduler: Any | None = None) -> SamplingInputs:
    """Prepare a guided sampling loop's inputs as ``pipe(image, mask, prompt, seed=seed,
    num_inference_steps=steps)`` does (same generator draws, same inpainting channels); a
    ``scheduler`` given replaces the pipeline's for this call and the next ``pipeline_latents``."""
    if scheduler is not None:
        pipe.scheduler = scheduler
    photo = load_image(image)
    square, square_mask = to_model_square(photo, load_mask(mask, image=photo), pipe.resolution)
    generator = pipe.seeded_generator(None, seed)
    latents, channels = pipe.prepare_sampling([square], [square_mask], steps, generator)
    masked_latents, latent_mask = split_inpaint_channels(channels)
    embeddings = torch.cat([pipe.encode_prompt([""]), pipe.encode_prompt([prompt])])
    return SamplingInputs(latents, latent_mask, masked_latents, embeddings, pipe.scheduler)


def pipeline_latents(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str, *, steps: int, seed: int,
                     guidance_scale: float) -> torch.Tensor:
    """The final latents (B, 4, s, s) of ``pipe(image, mask, prompt, ...)``: what a student's sampling
    loop must reproduce from ``sampling_inputs`` with the same arguments."""
    final: list[torch.Tensor] = []

    def keep(pipeline, step, timestep, state):
        final[:] = [state["latents"].detach().clone()]
        return {}

    pipe(image, mask, prompt, num_inference_steps=steps, seed=seed, guidance_scale=guidance_scale,
         callback_on_step_end=keep)
    return final[0]
