"""What every masked-latent try-on pipeline shares: input loading, VAE helpers, the 5 inpainting
channels (latent mask and masked-image latent, by the model's ``inpaint_rule``), the guided
denoising loop (progress bar, seeds, interrupt, step callbacks) and exact paste-back.
``TryOnInpaintPipeline`` (text) and ``DTCPipeline`` (reference image) subclass it and only say how
to predict the noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from tryon_lab.data.io import load_image, load_mask
from tryon_lab.errors import TryOnInputError
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.pipelines.compositing import SEAM_PX, paste_back
from tryon_lab.pipelines.latents import InpaintRule, latent_mask, pil_to_tensor, tensor_to_pil

# noise = predict(model_input, t): model_input is the 9-channel U-Net input (2B rows when guided).
NoisePredictor = Callable[[torch.Tensor, Any], torch.Tensor]


@dataclass
class TryOnPipelineOutput(BaseOutput):
    """``images``: results at the photos' own sizes, pasted back; ``raw``: the model's squares."""

    images: list[Image.Image] | np.ndarray | torch.Tensor
    raw: list[Image.Image]


class MaskedInpaintPipelineBase(DiffusionPipeline):
    """Shared machinery of the masked-latent inpainting pipelines (needs ``vae``, ``unet``, ``scheduler``)."""

    _callback_tensor_inputs = ["latents"]
    _interrupt = False

    @property
    def device(self) -> torch.device:
        """The device the U-Net's weights are on, where every tensor of a try-on goes. (diffusers'
        ``DiffusionPipeline.device`` walks every module of every component on each call, about 5 ms
        on this CPU, and a try-on asks five times: most of a 4-step try-on's overhead.)"""
        return next(self.unet.parameters()).device

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell along one side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def inpaint_rule(self) -> InpaintRule:
        """How this model was trained to see the mask and the masked image ("diffusers" or "tryon-lab";
        see ``tryon_lab.pipelines.latents``)."""
        return self.config.inpaint_rule

    @property
    def resolution(self) -> int:
        """Side of the square the model works at (128 for mini, 512 for SD-1.5)."""
        return self.unet.config.sample_size * self.vae_scale_factor

    @property
    def sampling_vae(self):
        """The VAE that encodes and decodes for the current sampler: the model's fast VAE while the
        lcm sampler (an ``LCMScheduler``) runs, else ``vae``. Both share one latent space."""
        from diffusers import LCMScheduler

        fast = getattr(self, "fast_vae", None)
        return fast if fast is not None and isinstance(self.scheduler, LCMScheduler) else self.vae

    def interrupt(self) -> None:
        """Ask a running ``__call__`` to stop after the current step (thread-safe flag)."""
        self._interrupt = True

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE-encode images in [-1, 1] (B, 3, H, W) to scaled latents (mode of the posterior)."""
        vae = self.sampling_vae
        latents = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
        return latents * vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents to images in [-1, 1] (B, 3, H, W)."""
        vae = self.sampling_vae
        return vae.decode(latents / vae.config.scaling_factor).sample.clamp(-1, 1)

    @torch.no_grad()
    def encode_inpaint_channels(self, images: list[Image.Image], masks: list[np.ndarray],
                          generator: torch.Generator | None) -> torch.Tensor:
        """The (B, 5, s, s) channels after the noisy latent: latent mask and masked-image latent, made
        by ``inpaint_rule`` (the "diffusers" rule samples the posterior with ``generator``)."""
        pixels = torch.stack([pil_to_tensor(img) for img in images])
        pixel_masks = torch.stack([torch.from_numpy(m.astype(np.float32))[None] for m in masks])
        vae = self.sampling_vae
        masked = (pixels * (1.0 - pixel_masks)).to(self.device, vae.dtype)
        posterior = vae.encode(masked).latent_dist
        sampled = posterior.sample(generator) if self.inpaint_rule == "diffusers" else posterior.mode()
        masked_latents = sampled * vae.config.scaling_factor
        return inpaint_channels(latent_mask(pixel_masks, masked_latents.shape[-1], self.inpaint_rule), masked_latents)

    def _initial_latents(self, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        """Noise (B, 4, s, s) from ``generator``, scaled for the scheduler: drawn before the inpainting
        channels, as diffusers draws them, so one generator gives diffusers' numbers."""
        size = self.unet.config.sample_size
        shape = (batch, self.unet.config.out_channels, size, size)
        noise = randn_tensor(shape, generator=generator, device=self.device, dtype=self.unet.dtype)
        return noise * self.scheduler.init_noise_sigma

    @staticmethod
    def seeded_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
        """``generator`` if given, else a CPU generator seeded with ``seed`` (None: unseeded)."""
        if generator is None and seed is not None:
            return torch.Generator("cpu").manual_seed(seed)
        return generator

    def prepare_sampling(self, images: list[Image.Image], masks: list[np.ndarray], steps: int,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Set the scheduler's ``steps`` and return (initial latents, inpainting channels) for the
        model squares ``images``/``masks``, drawing from ``generator`` in diffusers' order."""
        self.scheduler.set_timesteps(steps, device=self.device)
        latents = self._initial_latents(len(images), generator)
        return latents, self.encode_inpaint_channels(images, masks, generator)

    def _check_callback_inputs(self, names: Sequence[str]) -> None:
        unknown = set(names) - set(self._callback_tensor_inputs)
        if unknown:
            raise TryOnInputError(f"callback tensors {sorted(unknown)} are not offered; only {self._callback_tensor_inputs}")

    def _denoise(
        self,
        latents: torch.Tensor,
        channels: torch.Tensor,
        predict: NoisePredictor,
        *,
        guidance_scale: float,
        generator: torch.Generator | None,
        callback_on_step_end: Callable[[Any, int, Any, dict], dict] | None,
    ) -> torch.Tensor:
        """Denoise ``latents`` (B, 4, s, s) from ``prepare_sampling`` over the scheduler's timesteps.

        ``channels``: the B-row inpainting channels; with ``guidance_scale`` > 1 ``predict``
        receives 2B rows (unconditional first, then conditional) and the two predictions are mixed.
        Honours the progress bar, ``interrupt()`` and the step callback.
        """
        guided = guidance_scale > 1.0
        if guided:
            channels = torch.cat([channels, channels])
        channels = channels.to(latents.dtype)

        self._interrupt = False
        timesteps = self.scheduler.timesteps
        with self.progress_bar(total=len(timesteps)) as progress:
            for step, t in enumerate(timesteps):
                if self._interrupt:
                    break
                model_in = torch.cat([latents, latents]) if guided else latents
                model_in = torch.cat([self.scheduler.scale_model_input(model_in, t), channels], dim=1)
                noise = predict(model_in, t)
                if guided:
                    uncond, cond = noise.chunk(2)
                    noise = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(noise, t, latents, generator=generator, return_dict=False)[0]
                if callback_on_step_end is not None:
                    state = {"latents": latents}
                    latents = callback_on_step_end(self, step, t, state).get("latents", latents)
                progress.update()
        return latents

    def _finish(self, latents: torch.Tensor, originals: list[Image.Image], masks: list[np.ndarray],
                feather_px: float | None, output_type: str, return_dict: bool) -> TryOnPipelineOutput | tuple:
        """Decode, paste back into each photo inside its mask only, and format the output."""
        raw = [tensor_to_pil(x) for x in self.decode_latents(latents)]
        if feather_px is None:
            feather_px = SEAM_PX
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
    def _broadcast(value: Any, batch: int, name: str) -> list:
        values = [value] * batch if isinstance(value, str) or not isinstance(value, (list, tuple)) else list(value)
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
