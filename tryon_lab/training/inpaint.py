"""Recipe: train the inpainting U-Net (9 channels on SD's 4-channel latents) together with its CLIP text encoder.

Each step: noise a target latent at a random timestep, give the U-Net the noisy latent, the
masked-image latent and the latent mask, condition it on the caption (replaced by "" with
probability ``caption_dropout`` so classifier-free guidance works), and regress the noise.

With ``snr_gamma`` the per-sample losses are weighted by min(SNR(t), gamma) / SNR(t) (Min-SNR,
Hang et al. 2023): nearly noise-free timesteps, whose noise is easy to read off and whose
gradients otherwise dominate, stop crowding out the noisy ones that decide a sample's content,
and training converges in fewer steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import compute_snr
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.models.channels import inpaint_channels
from tryon_lab.pipelines.latents import COURSE_RULE
from tryon_lab.training.loop import LoopSettings

LATENT_LAYERS = ("conv_in", "conv_out")  # the U-Net's only layers whose shapes depend on the latent's width


class InpaintObjective(torch.nn.Module):
    """Noise-prediction loss of the inpainting U-Net on a batch from a LatentCache."""

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                 noise_scheduler: DDPMScheduler, caption_dropout: float = 0.1, snr_gamma: float | None = None):
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.tokenizer, self.noise_scheduler, self.caption_dropout = tokenizer, noise_scheduler, caption_dropout
        self.snr_gamma = snr_gamma

    def tokens(self, captions: list[str]) -> torch.Tensor:
        """Token ids (B, max_length) with captions dropped to "" at the dropout rate."""
        keep = torch.rand(len(captions)) >= self.caption_dropout
        texts = [c if k else "" for c, k in zip(captions, keep.tolist())]
        return self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids

    def noise_prediction(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise the batch's latents at random timesteps and run the U-Net on its 9-channel input.

        Takes a LatentCache batch (latents, masked_latents, mask, caption); returns
        (predicted noise, true noise, timesteps (B,)), the first two shaped like the latents.
        """
        latents = batch["latents"]
        noise = torch.randn_like(latents)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, steps)
        hidden = self.text_encoder(self.tokens(batch["caption"]).to(latents.device))[0]
        model_in = torch.cat([noisy, inpaint_channels(batch["mask"], batch["masked_latents"])], dim=1)
        return self.unet(model_in, steps, encoder_hidden_states=hidden, return_dict=False)[0], noise, steps

    def timestep_weights(self, steps: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weights (B,): Min-SNR's min(SNR, gamma) / SNR, or ones without ``snr_gamma``."""
        if self.snr_gamma is None:
            return torch.ones(steps.shape, dtype=torch.float32, device=steps.device)
        snr = compute_snr(self.noise_scheduler, steps)
        return snr.clamp(max=self.snr_gamma) / snr

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (the timestep-weighted MSE between predicted and true noise, {"mse": plain MSE})."""
        prediction, noise, steps = self.noise_prediction(batch)
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        return (per_sample * self.timestep_weights(steps)).mean(), {"mse": float(per_sample.detach().mean())}


@dataclass(frozen=True)
class InpaintSettings:
    """Sizes for one U-Net run (from the profile or the command line)."""

    steps: int
    batch_size: int = 16
    learning_rate: float = 2e-4
    caption_dropout: float = 0.1
    snr_gamma: float | None = None
    ema_decay: float | None = 0.999
    dataset_size: int = 24000
    checkpoint_every: int = 500
    milestone_every: int | None = None  # keep these checkpoints: ``tryon-lab curve`` scores them
    max_minutes: float | None = None  # stop early (resumably) after this much training in one process

    def loop(self) -> LoopSettings:
        """The generic loop settings of this run."""
        return LoopSettings(steps=self.steps, learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                            ema_decay=self.ema_decay, warmup_steps=200, weight_decay=1e-2,
                            milestone_every=self.milestone_every,
                            max_seconds=None if self.max_minutes is None else 60 * self.max_minutes)


def train_inpainting(config, run_dir: str | Path, vae_dir: str | Path, settings: InpaintSettings, seed: int = 0,
                     init_dir: str | Path | None = None):
    """Train (or resume) tokenizer, text encoder and U-Net of ``config`` on the world with a trained VAE.

    With ``init_dir`` (a finished pipeline folder of this config) the run starts from its tokenizer,
    text encoder and U-Net instead of new ones: more training for a shipped model. The pipeline may
    also be one of another latent width (``LATENT_LAYERS`` then start new): its U-Net's body moves to
    the new latent space, as a widened conv_in carried SD into SD-inpainting. Work files
    (tokenizer, latent cache, checkpoints, losses.csv) live in ``run_dir``; returns
    (a ``TryOnInpaintPipeline`` holding the EMA weights if EMA is on, with a DDIM sampler, the LoopResult).
    """
    from diffusers import AutoencoderKL

    from tryon_lab.data.datasets import InpaintDataset
    from tryon_lab.data.world import World
    from tryon_lab.models.components import (
        build_scheduler,
        build_text_encoder,
        build_unet,
    )
    from tryon_lab.models.tokenizer import train_tokenizer
    from tryon_lab.training.common import data_workers, loader_factory, make_accelerator
    from tryon_lab.training.latent_cache import LatentCache, build_latent_cache
    from tryon_lab.training.loop import endless, run_loop

    run_dir = Path(run_dir)
    accelerator = make_accelerator(seed)
    world = World(seed=seed, resolution=config.resolution)
    vae = AutoencoderKL.from_pretrained(vae_dir).eval().requires_grad_(False)
    tokenizer_dir, cache_dir = run_dir / "tokenizer", run_dir / "latent-cache"
    with accelerator.main_process_first():
        if accelerator.is_main_process and not (tokenizer_dir / "vocab.json").is_file():
            if init_dir is not None:
                CLIPTokenizer.from_pretrained(Path(init_dir) / "tokenizer").save_pretrained(tokenizer_dir)
            else:
                captions = (world.sample(i).caption for i in range(settings.dataset_size))
                train_tokenizer(captions, tokenizer_dir, vocab_size=config.tokenizer["vocab_size"],
                                max_length=config.tokenizer["max_length"])
        if accelerator.is_main_process and not (cache_dir / "latents.safetensors").is_file():
            build_latent_cache(vae.to(accelerator.device), InpaintDataset(world, split="train", length=settings.dataset_size),
                               cache_dir, inpaint_rule=COURSE_RULE, num_workers=data_workers(accelerator.device))
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    cache = LatentCache(cache_dir)

    torch.manual_seed(seed)
    unet, text_encoder = build_unet(config), build_text_encoder(config, tokenizer)
    if init_dir is not None:
        load_weights(unet, Path(init_dir) / "unet", fresh=LATENT_LAYERS)
        load_weights(text_encoder, Path(init_dir) / "text_encoder")
    noise_scheduler = build_scheduler(config)
    objective = InpaintObjective(unet, text_encoder, tokenizer, noise_scheduler, settings.caption_dropout,
                                settings.snr_gamma)
    batches = endless(loader_factory(accelerator, cache, settings.batch_size))
    result = run_loop(accelerator, run_dir, objective, batches, settings.loop(), progress_desc="unet")
    if result.ema is not None:
        result.ema.copy_to(objective.parameters())
    return trained_pipeline(vae, text_encoder, tokenizer, unet, noise_scheduler), result


def load_weights(model: torch.nn.Module, folder: Path, fresh: tuple[str, ...] = ()) -> list[str]:
    """Copy the weights saved in ``folder`` (a diffusers/transformers model folder) into ``model``, which
    must have the same architecture (``ConfigError`` naming the folder otherwise) except that parameters
    under the module names in ``fresh`` may differ in shape: those keep ``model``'s own (new) weights.
    Returns the names of the parameters left new."""
    from tryon_lab.errors import ConfigError

    saved = type(model).from_pretrained(folder, torch_dtype=torch.float32).state_dict()
    mine = model.state_dict()
    differ = sorted(k for k in mine if k in saved and saved[k].shape != mine[k].shape)
    if saved.keys() != mine.keys() or any(k.split(".")[0] not in fresh for k in differ):
        raise ConfigError(f"{folder} holds another architecture than this model config: start from scratch, "
                          "or use the config it was trained with")
    model.load_state_dict({**saved, **{k: mine[k] for k in differ}})
    return differ


def trained_pipeline(vae, text_encoder, tokenizer, unet, noise_scheduler: DDPMScheduler):
    """The ``TryOnInpaintPipeline`` of a U-Net run's parts: the course's inpaint rule, sampling with
    DDIM on the training scheduler's noise schedule."""
    from diffusers import DDIMScheduler

    from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline

    return TryOnInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                scheduler=DDIMScheduler.from_config(noise_scheduler.config), inpaint_rule=COURSE_RULE)
