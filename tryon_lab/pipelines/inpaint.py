"""TryOnInpaintPipeline: text-guided latent inpainting with exact paste-back.

The U-Net sees 9 channels per latent cell: the noisy latent (4), the VAE latent of the photo
with the masked region blanked (4) and the mask itself (1), as in Stable Diffusion inpainting.
The same class loads the shipped mini model and a real SD-1.5-inpainting folder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.data.io import load_image, load_mask
from tryon_lab.errors import TryOnInputError
from tryon_lab.pipelines.compositing import paste_back, to_model_square
from tryon_lab.pipelines.latents import latent_mask, pil_to_tensor, tensor_to_pil


@dataclass
class TryOnPipelineOutput(BaseOutput):
    """``images``: results at the photos' own sizes, pasted back; ``raw``: the model's squares."""

    images: list[Image.Image] | np.ndarray | torch.Tensor
    raw: list[Image.Image]


class TryOnInpaintPipeline(DiffusionPipeline):
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
    ):
        super().__init__()
        self.register_modules(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler)
        self._interrupt = False

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along one side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def resolution(self) -> int:
        """Side of the square the model works at (128 for mini, 512 for SD-1.5)."""
        return self.unet.config.sample_size * self.vae_scale_factor

    def interrupt(self) -> None:
        """Ask a running ``__call__`` to stop after the current step (thread-safe flag)."""
        self._interrupt = True

    @torch.no_grad()
    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        """Return CLIP hidden states (B, max_length, D) for a list of prompts."""
        tokens = self.tokenizer(
            list(prompts), padding="max_length", max_length=self.tokenizer.model_max_length,
            truncation=True, return_tensors="pt",
        )
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE-encode images in [-1, 1] (B, 3, H, W) to scaled latents (mode of the posterior)."""
        latents = self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist.mode()
        return latents * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents to images in [-1, 1] (B, 3, H, W)."""
        return self.vae.decode(latents / self.vae.config.scaling_factor).sample.clamp(-1, 1)

    def _condition(self, images: list[Image.Image], masks: list[np.ndarray]) -> torch.Tensor:
        """Return the 5 conditioning channels: masked-image latent (4) + latent mask (1)."""
        pixels = torch.stack([pil_to_tensor(img) for img in images])
        pixel_masks = torch.stack([torch.from_numpy(m.astype(np.float32))[None] for m in masks])
        masked_latents = self.encode_images(pixels * (1.0 - pixel_masks))
        return torch.cat([masked_latents, latent_mask(pixel_masks, masked_latents.shape[-1]).to(masked_latents)], dim=1)

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
        guidance_scale: float = 4.0,
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
        ``feather_px`` is the seam width in photo pixels (default: 2 model pixels).
        ``callback_on_step_end(pipe, step, timestep, {"latents": ...})`` may return replacements.
        Returns ``TryOnPipelineOutput(images, raw)``; ``output_type`` is "pil", "np" or "pt".
        """
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise TryOnInputError(f"callback tensors {sorted(unknown)} are not offered; only {self._callback_tensor_inputs}")
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
        condition = self._condition([s[0] for s in squares], [s[1] for s in squares])
        if guided:
            condition = torch.cat([condition, condition])

        if generator is None and seed is not None:
            generator = torch.Generator("cpu").manual_seed(seed)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        shape = (batch, self.unet.config.out_channels, self.unet.config.sample_size, self.unet.config.sample_size)
        latents = randn_tensor(shape, generator=generator, device=self.device, dtype=condition.dtype)
        latents = latents * self.scheduler.init_noise_sigma

        self._interrupt = False
        timesteps = self.scheduler.timesteps
        with self.progress_bar(total=len(timesteps)) as progress:
            for step, t in enumerate(timesteps):
                if self._interrupt:
                    break
                model_in = torch.cat([latents, latents]) if guided else latents
                model_in = torch.cat([self.scheduler.scale_model_input(model_in, t), condition], dim=1)
                noise = self.unet(model_in, t, encoder_hidden_states=embeds, return_dict=False)[0]
                if guided:
                    uncond, cond = noise.chunk(2)
                    noise = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(noise, t, latents, generator=generator, return_dict=False)[0]
                if callback_on_step_end is not None:
                    state = {"latents": latents}
                    latents = callback_on_step_end(self, step, t, state).get("latents", latents)
                progress.update()

        raw = [tensor_to_pil(x) for x in self.decode_latents(latents)]
        if feather_px is None:
            feather_px = 2.0 * min(originals[0].size) / self.resolution
        images = [paste_back(o, g, m, feather_px) for o, g, m in zip(originals, raw, masks)]
        images = self._format(images, output_type)
        return TryOnPipelineOutput(images=images, raw=raw) if return_dict else (images, raw)

    def _load_inputs(self, image: Any, mask_image: Any) -> tuple[list[Image.Image], list[np.ndarray]]:
        images = image if isinstance(image, (list, tuple)) else [image]
        masks = mask_image if isinstance(mask_image, (list, tuple)) else [mask_image]
        if len(images) != len(masks):
            raise TryOnInputError(f"got {len(images)} image(s) but {len(masks)} mask(s)")
        if not images:
            raise TryOnInputError("no image given")
        loaded = [load_image(img) for img in images]
        return loaded, [load_mask(m, image=img) for m, img in zip(masks, loaded)]

    @staticmethod
    def _broadcast(value: str | Sequence[str], batch: int, name: str) -> list[str]:
        values = [value] * batch if isinstance(value, str) else list(value)
        if len(values) != batch:
            raise TryOnInputError(f"{name} has {len(values)} entries but {batch} image(s) were given")
        return values

    @staticmethod
    def _format(images: list[Image.Image], output_type: str):
        if output_type == "pil":
            return images
        if output_type not in ("np", "pt"):
            raise TryOnInputError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
        if len({img.size for img in images}) > 1:
            raise TryOnInputError(f"output_type {output_type!r} needs photos of one size; use 'pil'")
        array = np.stack([np.asarray(img, dtype=np.float32) / 255.0 for img in images])
        return array if output_type == "np" else torch.from_numpy(array).permute(0, 3, 1, 2)
