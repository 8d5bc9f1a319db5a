"""One DTC training run: a DTCPipeline built on a text inpainting model, trained on the latent cache.

The main U-Net (``unet_tuning``: the same parameter set for every variant), the reference encoder
and the hint path train together under the shared loop (``run_loop``: resumable, EMA optional).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tryon_lab.data.masks import HINT_LAYOUTS
from tryon_lab.errors import ConfigError
from tryon_lab.models.dtc import FILM_MODES, PerceptualNet
from tryon_lab.profiles import settings_from_mapping
from tryon_lab.training.dtc.cache import DTCCache, ensure_dtc_cache
from tryon_lab.training.dtc.objective import DTCObjective
from tryon_lab.training.dtc.unet_tuning import (
    ADAPTER_NAME,
    check_unet_mode,
    finish_unet,
    prepare_unet,
)
from tryon_lab.training.loop import LoopSettings


@dataclass(frozen=True)
class DTCSettings:
    """Sizes and choices of one DTC run (the profile's ``[*.dtc.train]``).

    ``unet``: "frozen", "lora" or "full" (which main-U-Net parameters train; ``unet_lora_rank`` and
    ``unet_lora_targets`` for "lora"). ``hint_timestep``: the hint encoder takes the timestep
    (``HintEncoder(timestep_conditioning=True)``, recomputed every sampling step); the ablation sets
    it per variant (``+t``). ``hint_layout``: how the hint collage lays out the reference
    (``masks.HINT_LAYOUTS``; "rectangle" is the paper's), in training and in the pipeline it saves.
    ``hint_lr_scale``: the hint path (hint encoder and its zero-initialised fusion layers) trains at
    ``learning_rate`` times this; the main U-Net and the reference encoder at ``learning_rate``.
    ``max_minutes`` > 0: a run stops there even before ``steps`` (a safety
    net for a borrowed machine's fixed time; the run's record says how many steps it took)."""

    steps: int
    batch_size: int = 8
    learning_rate: float = 1e-4
    drop_rate: float = 0.1
    perceptual_weight: float = 0.1
    perceptual_batch: int | None = 4
    dataset_size: int = 4000
    checkpoint_every: int = 250
    ema_decay: float | None = None
    film_mode: str = "spatial"
    hint_timestep: bool = False
    hint_layout: str = "rectangle"
    hint_lr_scale: float = 1.0
    unet: str = "lora"
    unet_lora_rank: int = 16
    unet_lora_targets: str = "all"
    warmup_steps: int = 50
    max_minutes: float = 0.0

    def __post_init__(self):
        check_unet_mode(self.unet, self.unet_lora_rank, self.unet_lora_targets)
        if self.film_mode not in FILM_MODES:
            raise ConfigError(f"[dtc.train] film_mode = {self.film_mode!r}; choose one of {', '.join(FILM_MODES)}")
        if self.hint_layout not in HINT_LAYOUTS:
            raise ConfigError(f"[dtc.train] hint_layout = {self.hint_layout!r}; choose one of {', '.join(HINT_LAYOUTS)}")
        if not self.hint_lr_scale > 0:
            raise ConfigError(f"[dtc.train] hint_lr_scale = {self.hint_lr_scale!r}; it must be > 0")
        if self.steps < 1 or self.batch_size < 1 or self.dataset_size < 1:
            raise ConfigError("[dtc.train] steps, batch_size and dataset_size must be >= 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DTCSettings:
        """Settings from a profile table; ``ConfigError`` naming an unknown or missing key."""
        return settings_from_mapping(cls, values, "dtc.train")

    def loop(self, hint: bool = True) -> LoopSettings:
        """The generic loop settings of this run; ``hint`` False for the no-hint baseline (no hint path to scale)."""
        scales = (("hint_encoder.", self.hint_lr_scale),) if hint and self.hint_lr_scale != 1.0 else ()
        return LoopSettings(steps=self.steps, learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                            ema_decay=self.ema_decay, warmup_steps=self.warmup_steps, weight_decay=1e-2,
                            max_seconds=60 * self.max_minutes if self.max_minutes > 0 else None, lr_scales=scales)


def dtc_cache(accelerator, base, dataset_size: int, world_seed: int, cache_dir: str | Path,
              hint_layout: str = "rectangle") -> DTCCache:
    """The latent cache of ``dataset_size`` training pairs of world ``world_seed`` (hints laid out with
    ``hint_layout``) for DTC runs on the text inpainting pipeline ``base`` (built in ``cache_dir`` on first
    use, with ``base``'s VAE on ``accelerator``'s device); every run of an ablation shares it."""
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.dtc import reference_size

    return ensure_dtc_cache(accelerator, base.vae.eval().requires_grad_(False), World(world_seed, base.resolution),
                            cache_dir, dataset_size, reference_size(base.resolution), base.inpaint_rule, hint_layout)


def train_dtc(base, run_dir: str | Path, settings: DTCSettings, *, fusion: str | None = "film",
              perceptual: PerceptualNet | str | Path | None = None, cache_dir: str | Path | None = None,
              seed: int = 0, world_seed: int | None = None, lora_dir: str | Path | None = None):
    """Train (or resume) a DTC model on top of the text inpainting pipeline ``base`` (a folder or a
    TryOnInpaintPipeline). ``fusion``: "film", "add" or None (the no-hint baseline);
    ``perceptual``: a PerceptualNet (or its folder) to add the perceptual loss, None for none;
    ``seed``: initialisation and noise; ``world_seed`` (default ``seed``): the training pairs;
    ``lora_dir``: where the trained U-Net LoRA (``unet = "lora"``) is also written, before it is fused.

    Work files (checkpoints, losses.csv; the latent cache unless ``cache_dir``) live in ``run_dir``.
    Returns ``(DTCPipeline with a DDIM sampler, its U-Net's LoRA fused, LoopResult)``.
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.dreambooth.lora_files import save_unet_lora
    from tryon_lab.training.loop import endless, run_loop

    run_dir = Path(run_dir)
    accelerator = make_accelerator(seed)
    if isinstance(base, (str, Path)):
        base = load_inpaint_pipeline(base, device="cpu")
    if isinstance(perceptual, (str, Path)):
        perceptual = PerceptualNet.from_pretrained(perceptual)
    vae = base.vae.eval().requires_grad_(False)
    torch.manual_seed(seed)
    pipe = DTCPipeline.from_base(base, fusion, film_mode=settings.film_mode, hint_layout=settings.hint_layout,
                                 timestep_conditioning=settings.hint_timestep,
                                 scheduler=DDIMScheduler.from_config(base.scheduler.config))
    prepare_unet(pipe.unet, settings.unet, settings.unet_lora_rank, settings.unet_lora_targets)
    cache = dtc_cache(accelerator, base, settings.dataset_size, seed if world_seed is None else world_seed,
                      cache_dir or run_dir / "dtc-cache", settings.hint_layout)
    objective = DTCObjective(pipe.unet, pipe.image_encoder, pipe.hint_encoder,
                             DDPMScheduler.from_config(base.scheduler.config), vae=vae, perceptual=perceptual,
                             perceptual_weight=settings.perceptual_weight, perceptual_batch=settings.perceptual_batch,
                             drop_rate=settings.drop_rate)
    batches = endless(loader_factory(accelerator, cache, settings.batch_size))
    result = run_loop(accelerator, run_dir, objective, batches, settings.loop(hint=fusion is not None),
                      progress_desc="dtc")
    if result.ema is not None:
        result.ema.copy_to(objective.parameters())
    if lora_dir is not None and settings.unet == "lora":
        save_unet_lora(pipe.unet, ADAPTER_NAME, lora_dir)
    finish_unet(pipe.unet)
    for part in (pipe.image_encoder, pipe.hint_encoder):
        if part is not None:
            part.requires_grad_(False)
    return pipe, result
