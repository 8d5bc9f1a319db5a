"""TryOnInpaintPipeline: text-guided latent inpainting with exact paste-back.

The U-Net sees 9 channels per latent cell, in diffusers' order: the noisy latent (4), the mask
(1) and the VAE latent of the photo with the masked region blanked (4), as in Stable Diffusion
inpainting. The same class loads the shipped mini model and a real SD-1.5-inpainting folder; given
the same generator, prompt, steps and guidance, an SD folder computes what diffusers'
``StableDiffusionInpaintPipeline`` computes (``inpaint_rule`` "diffusers", the default). The
shipped models are trained with the course's rule ("tryon-lab", recorded in their
``model_index.json``): a latent cell is masked when any of its pixels is, and the masked image's
latent is the VAE posterior's mode. Unlike diffusers, the result is also pasted back into the
photo outside the mask (``raw`` holds the model's own squares). The loop, paste-back and input
handling live in ``MaskedInpaintPipelineBase`` (shared with DTCPipeline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.schedulers import KarrasDiffusionSchedulers
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.errors import TryOnInputError
from tryon_lab.pipelines.base import MaskedInpaintPipelineBase, TryOnPipelineOutput
from tryon_lab.pipelines.compositing import to_model_square
from tryon_lab.pipelines.latents import check_inpaint_rule
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

__all__ = ["TryOnInpaintPipeline", "TryOnPipelineOutput"]


class TryOnInpaintPipeline(MaskedInpaintPipelineBase):
    """Inpaint the masked region of a photo with what the prompt describes."""

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _callback_tensor_inputs = ["latents"]
    _optional_components: list[str] = []

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: UNet2DConditionModel,
        scheduler: KarrasDiffusionSchedulers,
        inpaint_rule: str = "diffusers",
    ):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self.register_to_config(inpaint_rule=check_inpaint_rule(inpaint_rule))
        self._interrupt = False

    @torch.no_grad()
    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        """Return CLIP hidden states (B, max_length, D) for a list of prompts."""
        tokens = self.tokenizer(
            list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        )
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    @torch.no_grad()
    def __call__(
        self,
        image: Any,
        mask_image: Any,
        prompt: str | Sequence[str] | None = None,
        *,
        negative_prompt: str | Sequence[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = TEXT_GUIDANCE,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        output_type: str = "pil",
        feather_px: float | None = None,
        callback_on_step_end: Callable[[Any, int, Any, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        return_dict: bool = True,
    ) -> TryOnPipelineOutput | tuple:
        """Inpaint ``mask_image``'s region of ``image`` as ``prompt`` describes.

        ``image``/``mask_image``: one photo and mask (path, PIL, array) or equal-length lists;
        ``prompt`` or ``prompt_embeds`` (B, L, D); ``guidance_scale`` > 1 enables classifier-free
        guidance against ``negative_prompt`` (default ""); ``seed`` or ``generator`` fixes the noise;
        ``feather_px`` is the seam width in photo pixels (default ``SEAM_PX``: a hard seam, which
        leaves no ghost of the old garment; see ``pipelines.compositing``).
        ``callback_on_step_end(pipe, step, timestep, {"latents": ...})`` may return replacements.
        Returns ``TryOnPipelineOutput(images, raw)``; ``output_type`` is "pil", "np" or "pt".
        """
        self._check_callback_inputs(callback_on_step_end_tensor_inputs)
        originals, masks = self._load_inputs(image, mask_image)
        batch = len(originals)
        if prompt_embeds is None:
            prompts = self._broadcast(prompt if prompt is not None else "", batch, "prompt")
            prompt_embeds = self.encode_prompt(prompts)
        elif prompt_embeds.shape[0] != batch:
            raise TryOnInputError(f"prompt_embeds has batch {prompt_embeds.shape[0]} but {batch} image(s) were given")
        guided = guidance_scale > 1.0
        if guided:
            if negative_prompt_embeds is None:
                negatives = self._broadcast(negative_prompt if negative_prompt is not None else "", batch, "negative_prompt")
                negative_prompt_embeds = self.encode_prompt(negatives)
            embeds = torch.cat([negative_prompt_embeds, prompt_embeds]).to(self.device)
        else:
            embeds = prompt_embeds.to(self.device)

        squares = [to_model_square(img, m, self.resolution) for img, m in zip(originals, masks)]
        generator = self.seeded_generator(generator, seed)
        latents, channels = self.prepare_sampling([s[0] for s in squares], [s[1] for s in squares], num_inference_steps,
                                          generator)

        def predict(model_in: torch.Tensor, t) -> torch.Tensor:
            return self.unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]

        latents = self._denoise(latents, channels, predict, guidance_scale=guidance_scale, generator=generator,
                                callback_on_step_end=callback_on_step_end)
        return self._finish(latents, originals, masks, feather_px, output_type, return_dict)
