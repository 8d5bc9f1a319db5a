"""Recipe: latent consistency distillation of the inpainting U-Net as a LoRA (LCM-LoRA).

The teacher is the trained U-Net itself with the adapter switched off; the student is the same
U-Net with a LoRA switched on, so one base serves both samplers (25-step DDIM without the
adapter, 4-step LCM with it). Each step, for a training latent (Luo et al. 2023, "Latent
Consistency Models", and the LCM-LoRA report):

1. pick one of ``ddim_timesteps`` skipping points t_n and noise the latent to it;
2. the teacher, guided with a scale w drawn from [w_min, w_max], takes one DDIM step from t_n to
   t_{n-k} (the teacher's guided ODE solver step);
3. the student maps the noisy latent at t_n to a clean latent, through the consistency
   parametrisation f(x, t) = c_skip(t) x + c_out(t) x0_pred(x, t), whose boundary conditions
   (c_skip(0) = 1, c_out(0) = 0) make f the identity at t = 0;
4. the target is the same function at the teacher's x_{t_{n-k}} under ``no_grad`` (the LoRA
   version uses no EMA target), and the loss is a pseudo-Huber distance between the two.

Guidance is distilled in: the student never sees w, and samples with ``guidance_scale`` 1.
Inpainting changes only the input: the student, teacher and target all receive the same mask and
masked-image channels after the noisy latent. What the U-Net is conditioned on is a ``Conditioning``:
the caption for the text model (``TextConditioning``; unconditional: the empty caption), the reference
tokens and hint modulation for Diffuse to Choose (``ReferenceConditioning``; unconditional: the null
tokens and the empty hint, as the DTC pipeline guides).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.pipelines.samplers import LCM_ADAPTER, LCM_FOLDER
from tryon_lab.training.loop import LoopSettings

SIGMA_DATA = 0.5  # the consistency parametrisation's data scale (LCM's and diffusers' LCMScheduler's)
TIMESTEP_SCALING = 10.0  # LCMScheduler's default: the boundary condition acts within a few timesteps of 0


def boundary_scalings(timesteps: torch.Tensor, sigma_data: float = SIGMA_DATA,
                      timestep_scaling: float = TIMESTEP_SCALING) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) of the consistency function at integer ``timesteps`` (B,), as diffusers'
    ``LCMScheduler`` computes them: c_skip -> 1 and c_out -> 0 as t -> 0."""
    scaled = timesteps.float() * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def _per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


class DDIMSolver:
    """The teacher's ODE solver on ``n`` skipping timesteps of a ``num_train_timesteps`` schedule
    with cumulative alphas ``alphas_cumprod``: index i is timestep (i + 1) * T / n - 1."""

    def __init__(self, alphas_cumprod: torch.Tensor, n: int = 50):
        steps = len(alphas_cumprod)
        if not 1 <= n <= steps:
            raise ConfigError(f"ddim_timesteps must be in 1..{steps}, got {n}")
        self.step_ratio = steps // n
        self.timesteps = (torch.arange(1, n + 1) * self.step_ratio).round().long() - 1
        self.alphas = alphas_cumprod[self.timesteps]
        self.alphas_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[self.timesteps[:-1]]])

    def step(self, x0: torch.Tensor, eps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM from ``timesteps[index]`` to the previous skipping point, given the
        predicted clean latent ``x0`` and noise ``eps``."""
        prev = _per_sample(self.alphas_prev.to(x0.device)[index], x0)
        return prev.sqrt() * x0 + (1 - prev).sqrt() * eps


class TextConditioning(torch.nn.Module):
    """The text model's condition: the caption's text-encoder states (unconditional: the empty caption)."""

    def __init__(self, text_encoder, tokenizer):
        super().__init__()
        self.text_encoder, self.tokenizer = text_encoder, tokenizer

    @torch.no_grad()
    def embed(self, captions: list[str]) -> torch.Tensor:
        """The text encoder's hidden states of ``captions``."""
        ids = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.text_encoder.device))[0]

    def encode(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(the batch's condition, the guided pair: the unconditional one then it, stacked), encoded once."""
        captions = list(batch["caption"])
        guided = self.embed([""] * len(captions) + captions)
        return guided[len(captions):], guided

    @staticmethod
    def predict(unet, model_in: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The U-Net's noise prediction under ``condition``."""
        return unet(model_in, t, encoder_hidden_states=condition, return_dict=False)[0]


class ReferenceConditioning(torch.nn.Module):
    """Diffuse to Choose's condition: the reference encoder's tokens and the hint encoder's modulation
    (unconditional: the null tokens and the empty hint). Both encoders stay frozen; a hint encoder that
    takes the timestep is run at every prediction, any other once per batch."""

    def __init__(self, image_encoder, hint_encoder=None):
        super().__init__()
        self.image_encoder, self.hint_encoder = image_encoder, hint_encoder

    @torch.no_grad()
    def encode(self, batch: dict):
        """(the batch's condition, the guided pair: unconditional then conditional, stacked), each as
        (tokens, modulation at timestep t); the encoders run once, on the stacked pair."""
        from tryon_lab.models.dtc import EMPTY_HINT, HintModulation
        from tryon_lab.training.dtc.cache import to_float

        reference, masked, mask = to_float(batch["reference"]), batch["masked_latents"], batch["mask"]
        n = len(reference)
        tokens = torch.cat([self.image_encoder.null(n), self.image_encoder.tokens(reference)])
        if self.hint_encoder is None:
            return (tokens[n:], lambda t: None), (tokens, lambda t: None)
        hint = to_float(batch["hint"])
        masked, mask = torch.cat([masked, masked]), torch.cat([mask, mask])
        hint = torch.cat([torch.full_like(hint, EMPTY_HINT), hint])

        def conditional(modulation):
            return HintModulation(tuple(x[n:] for x in modulation.shifts),
                                  None if modulation.scales is None else tuple(x[n:] for x in modulation.scales))

        if self.hint_encoder.config.timestep_conditioning:  # computed at each call's t, on its own rows
            rows = (masked[n:], mask[n:], hint[n:], tokens[n:])
            return ((tokens[n:], lambda t: self.hint_encoder(*rows, timestep=t)),
                    (tokens, lambda t: self.hint_encoder(masked, mask, hint, tokens, timestep=t)))
        modulation = self.hint_encoder(masked, mask, hint, tokens)
        cached = conditional(modulation)
        return (tokens[n:], lambda t: cached), (tokens, lambda t: modulation)

    @staticmethod
    def predict(unet, model_in: torch.Tensor, t: torch.Tensor, condition) -> torch.Tensor:
        """The U-Net's noise prediction with the reference tokens and the hint's modulation."""
        from tryon_lab.models.dtc import dtc_unet_forward

        tokens, modulation = condition
        return dtc_unet_forward(unet, model_in, t, tokens, modulation(t))


class ConsistencyDistillObjective(torch.nn.Module):
    """Pseudo-Huber consistency loss of the LoRA student against its own adapter-free teacher on a
    latent-cache batch (latents, masked_latents, mask, and what ``conditioning`` reads: a caption, or a
    reference and hint)."""

    def __init__(self, unet, conditioning: TextConditioning | ReferenceConditioning, alphas_cumprod: torch.Tensor, *,
                 ddim_timesteps: int = 50, w_min: float = 2.0, w_max: float = 8.0, huber_c: float = 0.001):
        super().__init__()
        self.unet, self.conditioning = unet, conditioning
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)
        self.solver = DDIMSolver(self.alphas_cumprod, ddim_timesteps)
        self.w_min, self.w_max, self.huber_c = w_min, w_max, huber_c

    def _x0(self, x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha = _per_sample(self.alphas_cumprod[t], x)
        return (x - (1 - alpha).sqrt() * eps) / alpha.sqrt()

    def _consistency(self, x: torch.Tensor, channels: torch.Tensor, t: torch.Tensor, condition) -> torch.Tensor:
        eps = self.conditioning.predict(self.unet, torch.cat([x, channels], dim=1), t, condition)
        c_skip, c_out = boundary_scalings(t)
        return _per_sample(c_skip, x) * x + _per_sample(c_out, x) * self._x0(x, eps, t)

    @torch.no_grad()
    def _teacher_step(self, noisy: torch.Tensor, channels: torch.Tensor, start: torch.Tensor, index: torch.Tensor,
                      guided_condition) -> torch.Tensor:
        self.unet.disable_adapters()
        try:
            model_in = torch.cat([noisy, channels], dim=1).repeat(2, 1, 1, 1)
            eps_u, eps_c = self.conditioning.predict(self.unet, model_in, start.repeat(2), guided_condition).chunk(2)
        finally:
            self.unet.enable_adapters()
        w = _per_sample(torch.empty(len(noisy), device=noisy.device).uniform_(self.w_min, self.w_max), noisy)
        eps = eps_c + (w - 1) * (eps_c - eps_u)  # guidance scale w in the pipeline's convention
        return self.solver.step(self._x0(noisy, eps, start), eps, index)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (the pseudo-Huber consistency loss, {"l2": its squared-error counterpart})."""
        latents = batch["latents"]
        channels = inpaint_channels(batch["mask"], batch["masked_latents"]).to(latents.dtype)
        condition, guided = self.conditioning.encode(batch)
        index = torch.randint(0, len(self.solver.timesteps), (len(latents),), device=latents.device)
        start = self.solver.timesteps.to(latents.device)[index]
        end = (start - self.solver.step_ratio).clamp(min=0)
        alpha = _per_sample(self.alphas_cumprod[start], latents)
        noisy = alpha.sqrt() * latents + (1 - alpha).sqrt() * torch.randn_like(latents)

        prediction = self._consistency(noisy, channels, start, condition)
        previous = self._teacher_step(noisy, channels, start, index, guided)
        with torch.no_grad():
            target = self._consistency(previous, channels, end, condition)
        squared = (prediction.float() - target.float()) ** 2
        loss = (torch.sqrt(squared + self.huber_c**2) - self.huber_c).mean()
        return loss, {"l2": float(squared.detach().mean())}


@dataclass(frozen=True)
class DistillSettings:
    """One LCM-LoRA run: ``steps`` at ``batch_size``, the LoRA's ``rank`` on the ``targets`` preset,
    the teacher's guidance range and solver skipping points, the latent cache's ``dataset_size``."""

    steps: int
    batch_size: int = 8
    learning_rate: float = 1e-4
    rank: int = 32
    targets: str = "all"
    ddim_timesteps: int = 50
    w_min: float = 2.0
    w_max: float = 8.0
    huber_c: float = 0.001
    dataset_size: int = 4000
    checkpoint_every: int = 200
    warmup_steps: int = 50

    def check(self) -> None:
        """``ConfigError`` naming the first setting out of range."""
        if self.steps < 1 or self.batch_size < 1 or self.rank < 1 or self.dataset_size < 1:
            raise ConfigError("distill steps, batch_size, rank and dataset_size must be >= 1")
        if not 1.0 <= self.w_min <= self.w_max:
            raise ConfigError(f"distill guidance range needs 1 <= w_min <= w_max, got [{self.w_min}, {self.w_max}]")

    def loop(self) -> LoopSettings:
        """The generic loop settings of this run."""
        return LoopSettings(steps=self.steps, learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                            warmup_steps=self.warmup_steps)


def distill_lcm(pipe, run_dir: str | Path, settings: DistillSettings, seed: int = 0):
    """Distil ``pipe`` (a trained ``TryOnInpaintPipeline``, or a ``DTCPipeline``) into an LCM LoRA on
    its U-Net, training on the world's train split (captions, or DTC's try-all pairs with their
    references and hints); resumes from ``run_dir``. Returns (the pipeline with the adapter
    ``LCM_ADAPTER`` attached and active, the loop's ``LoopResult``)."""
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.dreambooth.train import lora_config
    from tryon_lab.training.loop import endless, run_loop

    settings.check()
    run_dir = Path(run_dir)
    accelerator = make_accelerator(seed)
    dataset, conditioning = _distillation_data(accelerator, pipe, run_dir, settings.dataset_size, seed)
    for frozen in (pipe.vae, pipe.unet, *conditioning.children()):
        frozen.requires_grad_(False)
    torch.manual_seed(seed)
    pipe.unet.add_adapter(lora_config(settings.rank, targets=settings.targets), adapter_name=LCM_ADAPTER)
    pipe.unet.set_adapter(LCM_ADAPTER)
    objective = ConsistencyDistillObjective(
        pipe.unet, conditioning, pipe.scheduler.alphas_cumprod,
        ddim_timesteps=settings.ddim_timesteps, w_min=settings.w_min, w_max=settings.w_max, huber_c=settings.huber_c)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
    result = run_loop(accelerator, run_dir, objective, batches, settings.loop(), progress_desc="lcm distill")
    return pipe, result


def _distillation_data(accelerator, pipe, run_dir: Path, size: int, seed: int):
    """(the latent cache of ``size`` train-split pairs in ``run_dir``, built on first use; the
    Conditioning) for ``pipe``: captioned inpainting samples for a text model, try-all pairs with
    references and hints for a DTC model."""
    from tryon_lab.data.world import World

    if getattr(pipe, "image_encoder", None) is not None:
        from tryon_lab.training.dtc.train import dtc_cache

        cache = dtc_cache(accelerator, pipe, size, seed, run_dir / "dtc-cache")
        return cache, ReferenceConditioning(pipe.image_encoder, pipe.hint_encoder)
    from tryon_lab.data.datasets import InpaintDataset
    from tryon_lab.training.latent_cache import LatentCache, build_latent_cache

    cache_dir = run_dir / "latent-cache"
    with accelerator.main_process_first():
        if accelerator.is_main_process and not (cache_dir / "latents.safetensors").is_file():
            build_latent_cache(pipe.vae, InpaintDataset(World(seed=seed, resolution=pipe.resolution), split="train",
                                                        length=size), cache_dir, inpaint_rule=pipe.inpaint_rule)
    return LatentCache(cache_dir), TextConditioning(pipe.text_encoder, pipe.tokenizer)


def save_lcm(pipe, folder: str | Path, extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``pipe``'s LCM adapter into pipeline folder ``folder`` (``folder/lcm``, diffusers' LoRA
    layout), with whatever ``extra(lora_folder)`` adds (a card, logs), atomically; returns the LoRA folder."""
    from tryon_lab.training.common import save_atomically
    from tryon_lab.training.dreambooth.lora_files import save_unet_lora

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        save_unet_lora(pipe.unet, LCM_ADAPTER, tmp, dtype=torch.float16)  # shipped in fp16, as the pipeline is
        if extra is not None:
            extra(tmp)

    return save_atomically(Path(folder) / LCM_FOLDER, write)
