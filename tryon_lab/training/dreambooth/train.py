"""Train and save a DreamBooth garment: full U-Net fine-tuning or LoRA adapters (peft).

``train_dreambooth(base_dir, instances, run_dir, settings)`` loads a fresh copy of the base
pipeline, paints and caches the class images, adds the identifier token, encodes instance and
class images once to latents, and runs the shared ``run_loop`` (accelerate, resumable
checkpoints, losses.csv). ``save_dreambooth`` writes a diffusers pipeline folder (full) or a
LoRA adapter folder that loads onto the unchanged base (``load_dreambooth``, ``GarmentAdapters``,
and diffusers' own ``load_lora_weights`` + ``load_textual_inversion``: see ``lora_files``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE
from tryon_lab.training.dreambooth.instances import InstanceSet, class_images
from tryon_lab.training.dreambooth.lora_files import save_lora_garment
from tryon_lab.training.dreambooth.objective import DreamBoothObjective
from tryon_lab.training.dreambooth.token import TokenVector, add_identifier_token, check_token
from tryon_lab.training.garment_format import FORMAT, RECORD, REFERENCE, read_record
from tryon_lab.training.loop import LoopSettings

# LoRA target presets (peft matches a module whose name ends with one of these).
LORA_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections of every transformer block
LORA_TRANSFORMER = LORA_ATTENTION + ("proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")  # + feed-forward, in/out
LORA_ALL = LORA_TRANSFORMER + ("conv1", "conv2", "conv_shortcut", "time_emb_proj")  # + every resnet (Conv2d LoRA)
LORA_PRESETS = {"attention": LORA_ATTENTION, "transformer": LORA_TRANSFORMER, "all": LORA_ALL}


@dataclass(frozen=True)
class DreamBoothSettings:
    """One DreamBooth run. ``lora_rank`` None (or 0) = full fine-tuning of the U-Net.

    ``lora_targets``: which U-Net layers get adapters, a ``LORA_PRESETS`` name ("attention",
    "transformer" or "all", which adds the resnets' convolutions).
    Learning rates: ``learning_rate`` (full), ``lora_learning_rate`` (adapters) and
    ``token_learning_rate`` (the identifier's embedding, when the text encoder is frozen).
    Steps: ``steps`` (full), ``lora_steps`` (adapters; None: ``steps``), as a LoRA's few parameters may
    need more of them to learn a garment (``train_steps`` is the one this run takes).
    ``batch_size`` instance samples per step, plus as many class samples when prior
    preservation is on (``prior_weight`` > 0 and ``num_class_images`` > 0).
    """

    steps: int = 400
    lora_steps: int | None = None
    batch_size: int = 2
    learning_rate: float = 5e-5
    lora_rank: int | None = None
    lora_alpha: float | None = None
    lora_learning_rate: float = 5e-4
    lora_targets: str = "attention"
    train_text_encoder: bool = False
    train_token: bool = True
    token_learning_rate: float = 2e-3
    prior_weight: float = 1.0
    outside_weight: float = 0.1
    num_class_images: int = 16
    class_steps: int = 25
    class_guidance: float = TEXT_GUIDANCE
    n_people: int = 5
    mask_kinds: tuple[str, ...] = ("shape", "box")
    checkpoint_every: int = 100
    log_every: int = 5
    grad_clip: float = 1.0

    @classmethod
    def from_profile(cls, profile, **overrides) -> "DreamBoothSettings":
        """Settings from a profile's ``dreambooth`` section (evaluation keys ignored), then ``overrides``
        (None values are skipped)."""
        names = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in profile["dreambooth"].items() if k in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def mode(self) -> str:
        """Either "lora" or "full"."""
        return "lora" if self.lora_rank else "full"

    @property
    def train_steps(self) -> int:
        """The steps this run trains: ``lora_steps`` for a LoRA run when set, else ``steps``."""
        return self.lora_steps if self.lora_rank and self.lora_steps is not None else self.steps

    def check(self) -> None:
        """Raise ``ConfigError`` for impossible combinations."""
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps and batch_size must be >= 1, got {self.steps} and {self.batch_size}")
        if self.lora_steps is not None and self.lora_steps < 1:
            raise ConfigError(f"lora_steps must be >= 1 (or unset: steps), got {self.lora_steps}")
        if self.lora_rank is not None and self.lora_rank < 0:
            raise ConfigError(f"lora_rank must be >= 1 (or 0/None for full fine-tuning), got {self.lora_rank}")
        if self.lora_targets not in LORA_PRESETS:
            raise ConfigError(f"lora_targets {self.lora_targets!r} is not one of {', '.join(LORA_PRESETS)}")
        if self.lora_rank and self.train_text_encoder:
            raise ConfigError("LoRA trains U-Net adapters and the identifier token; train_text_encoder needs full "
                              "fine-tuning (no --lora-rank)")

    def loop(self) -> LoopSettings:
        """The generic loop settings: no EMA and no weight decay (short runs on a handful of images)."""
        rate = self.lora_learning_rate if self.lora_rank else self.learning_rate
        return LoopSettings(steps=self.train_steps, learning_rate=rate, checkpoint_every=self.checkpoint_every,
                            log_every=self.log_every, weight_decay=0.0, ema_decay=None, grad_clip=self.grad_clip)


@dataclass
class DreamBoothResult:
    """A trained garment: the pipeline (for LoRA, the base with the adapter active) and what it cost."""

    pipe: Any
    instances: InstanceSet
    settings: DreamBoothSettings
    adapter_name: str
    base_model: str
    run_dir: Path
    trainable_parameters: int
    total_parameters: int
    steps: int
    resumed_from: int
    wall_seconds: float
    steps_per_second: float
    last_losses: dict[str, float] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        """Either "lora" or "full"."""
        return self.settings.mode

    @property
    def instance_prompt(self) -> str:
        """The prompt with the identifier."""
        return self.instances.instance_prompt


def adapter_name_for(instances: InstanceSet) -> str:
    """A peft-safe adapter name: the item id, or ``user-<folder>`` for a folder of photos."""
    raw = instances.item.item_id if instances.item is not None else f"user-{Path(instances.source).name}"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{raw}-{instances.token}")


_RESUMABLE_FIELDS = ("steps", "lora_steps", "checkpoint_every", "log_every")  # a longer run may resume a shorter one


def run_name(instances: InstanceSet, settings: DreamBoothSettings) -> str:
    """A run folder name: ``<adapter name>-<mode>-<hash>``, the hash over every setting that shapes
    the result (not steps or checkpoint cadence), so changed settings never resume a stale run."""
    import hashlib
    import json

    shaping = {k: v for k, v in asdict(settings).items() if k not in _RESUMABLE_FIELDS}
    digest = hashlib.sha1(json.dumps(shaping, sort_keys=True, default=list).encode()).hexdigest()[:8]
    return f"{adapter_name_for(instances)}-{settings.mode}-{digest}"


def lora_config(rank: int, alpha: float | None = None, targets: str = "attention"):
    """The peft LoraConfig of an adapter: rank ``rank`` on the ``targets`` preset's layers, scale
    alpha / rank (``alpha`` None: 1)."""
    from peft import LoraConfig

    if targets not in LORA_PRESETS:
        raise ConfigError(f"LoRA targets {targets!r} is not one of {', '.join(LORA_PRESETS)}")
    return LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian",
                      target_modules=list(LORA_PRESETS[targets]))


def build_objective(pipe, token_id: int, settings: DreamBoothSettings, adapter_name: str = "default") -> DreamBoothObjective:
    """Set what trains on ``pipe``'s U-Net and text encoder and wrap them in the DreamBooth loss.

    Full: the whole U-Net (and text encoder if asked). LoRA: rank-``lora_rank`` adapters on the
    ``lora_targets`` layers, the U-Net frozen. In both, a frozen text encoder gets a ``TokenVector``
    for the identifier (unless ``train_token`` is False).
    """
    from diffusers import DDPMScheduler

    settings.check()
    pipe.vae.requires_grad_(False)
    pipe.text_encoder.requires_grad_(settings.train_text_encoder)
    if settings.lora_rank:
        pipe.unet.requires_grad_(False)
        pipe.unet.add_adapter(lora_config(settings.lora_rank, settings.lora_alpha, settings.lora_targets),
                              adapter_name=adapter_name)
    else:
        pipe.unet.requires_grad_(True)
    token = None
    if settings.train_token and not settings.train_text_encoder:
        rate = settings.lora_learning_rate if settings.lora_rank else settings.learning_rate
        token = TokenVector(pipe.text_encoder, token_id, scale=settings.token_learning_rate / rate)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    return DreamBoothObjective(pipe.unet, pipe.text_encoder, pipe.tokenizer, noise_scheduler,
                               prior_weight=settings.prior_weight, outside_weight=settings.outside_weight, token=token)


def trainable_parameters(module: torch.nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _paired_batches(accelerator, instance_cache, class_cache, batch_size: int):
    """``batches(start_step)``: instance batches, each followed in the same batch by class samples."""
    from tryon_lab.training.common import loader_factory
    from tryon_lab.training.loop import endless

    instance = endless(loader_factory(accelerator, instance_cache, min(batch_size, len(instance_cache))))
    prior = endless(loader_factory(accelerator, class_cache, min(batch_size, len(class_cache)))) if class_cache else None

    def batches(start: int):
        left = instance(start)
        right = prior(start) if prior is not None else None  # one class batch per step, like the instances
        while True:
            batch = dict(next(left))
            flags = torch.zeros(batch["latents"].shape[0], dtype=torch.bool, device=batch["latents"].device)
            if right is not None:
                other = next(right)
                for key in ("latents", "masked_latents", "mask"):
                    batch[key] = torch.cat([batch[key], other[key]])
                batch["caption"] = list(batch["caption"]) + list(other["caption"])
                flags = torch.cat([flags, torch.ones(other["latents"].shape[0], dtype=torch.bool, device=flags.device)])
            batch["prior"] = flags
            yield batch

    return batches


def _announcing(batches, on_step: Callable[[int], None]):
    """``batches`` that call ``on_step(steps done so far)`` before handing out each step's batch."""

    def wrapped(start: int):
        for step, batch in enumerate(batches(start), start):
            on_step(step)
            yield batch

    return wrapped


def train_dreambooth(base_dir: str | Path, instances: InstanceSet, run_dir: str | Path,
                     settings: DreamBoothSettings, seed: int = 0,
                     on_step: Callable[[int], None] | None = None, class_dir: str | Path | None = None) -> DreamBoothResult:
    """Fine-tune a fresh copy of the pipeline in ``base_dir`` on ``instances`` (resumes from ``run_dir``).

    ``run_dir`` keeps class-images/ (or they are cached in ``class_dir``, which runs on the same
    instance set may share), the latent caches, step-NNNNNN checkpoints and losses.csv.
    ``on_step(steps done)`` runs before every step (e.g. ``LiveLossPlot``, which redraws
    losses.csv). Returns a ``DreamBoothResult`` whose ``pipe`` generates the garment for
    ``result.instance_prompt``.
    """
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.common import make_accelerator
    from tryon_lab.training.latent_cache import LatentCache, build_latent_cache
    from tryon_lab.training.loop import run_loop

    settings.check()
    run_dir = Path(run_dir)
    accelerator = make_accelerator(seed)
    pipe = load_inpaint_pipeline(base_dir, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    check_token(pipe.tokenizer, instances.token)
    if instances.images[0].size != (pipe.resolution, pipe.resolution):
        raise ConfigError(f"instance images are {instances.images[0].size[0]}px but the model works at "
                          f"{pipe.resolution}px; build the instance set at the model's resolution")
    use_prior = settings.prior_weight > 0 and settings.num_class_images > 0
    with accelerator.main_process_first():  # the main process paints and encodes; the others then read
        pairs = None
        if use_prior:
            pipe.to(accelerator.device)
            pairs = class_images(pipe, instances, settings.num_class_images, Path(class_dir or run_dir / "class-images"),
                                 steps=settings.class_steps, guidance_scale=settings.class_guidance, seed=seed)
            pipe.to("cpu")
        caches = []
        for label, data in (("instance", instances.dataset()), ("class", pairs)):
            if data is None:
                caches.append(None)
                continue
            cache_dir = run_dir / f"{label}-latents-{data.fingerprint()}"
            if not (cache_dir / "latents.safetensors").is_file():
                build_latent_cache(pipe.vae, data, cache_dir, inpaint_rule=pipe.inpaint_rule)
            caches.append(LatentCache(cache_dir))
    instance_cache, class_cache = caches

    token_id = add_identifier_token(pipe.tokenizer, pipe.text_encoder, instances.token, instances.class_word)
    name = adapter_name_for(instances)
    torch.manual_seed(seed)
    objective = build_objective(pipe, token_id, settings, adapter_name=name)
    trainable = trainable_parameters(objective)
    total = sum(p.numel() for p in pipe.unet.parameters()) + sum(p.numel() for p in pipe.text_encoder.parameters())
    batches = _paired_batches(accelerator, instance_cache, class_cache, settings.batch_size)
    if on_step is not None:
        batches = _announcing(batches, on_step)
    began = time.perf_counter()
    loop = run_loop(accelerator, run_dir, objective, batches, settings.loop(), progress_desc=f"dreambooth {settings.mode}")
    elapsed = time.perf_counter() - began
    if objective.token is not None:
        objective.token.write_back(pipe.text_encoder)
    pipe.unet.requires_grad_(False)
    pipe.text_encoder.requires_grad_(False)
    pipe.to(accelerator.device)
    ran = loop.steps - loop.resumed_from
    return DreamBoothResult(
        pipe=pipe, instances=instances, settings=settings, adapter_name=name, base_model=str(Path(base_dir)),
        run_dir=run_dir, trainable_parameters=trainable, total_parameters=total, steps=loop.steps,
        resumed_from=loop.resumed_from, wall_seconds=loop.wall_seconds,
        steps_per_second=ran / elapsed if ran and elapsed > 0 else 0.0, last_losses=loop.last_losses,
    )


def _record(result: DreamBoothResult, extra: dict | None = None) -> dict:
    from tryon_lab.training.common import run_record

    inst = result.instances
    settings = asdict(result.settings)
    settings["mask_kinds"] = list(settings["mask_kinds"])
    return run_record({
        "format": FORMAT, "mode": result.mode, "adapter_name": result.adapter_name, "token": inst.token,
        "class_word": inst.class_word, "instance_prompt": inst.instance_prompt, "class_prompt": inst.class_prompt,
        "kind": inst.kind, "item_id": inst.item.item_id if inst.item else None,
        "category": inst.item.category if inst.item else inst.class_word,
        "colour": inst.item.colour if inst.item else None, "pattern": inst.item.pattern if inst.item else None,
        "source": inst.source, "lora_rank": result.settings.lora_rank or None, "base_model": result.base_model,
        "trainable_parameters": result.trainable_parameters, "total_parameters": result.total_parameters,
        "steps": result.steps, "wall_seconds": round(result.wall_seconds, 2),
        "steps_per_second": round(result.steps_per_second, 3), "settings": settings, **(extra or {}),
    })


def save_dreambooth(result: DreamBoothResult, out_dir: str | Path, dtype: torch.dtype = torch.float16,
                    metrics: dict | None = None) -> Path:
    """Save atomically: full = a diffusers pipeline folder (weights in ``dtype``); LoRA = an adapter
    folder in diffusers' layout (``pytorch_lora_weights.safetensors`` + the identifier's embedding,
    ``learned_embeds.safetensors``; see ``lora_files``). Both carry ``dreambooth.json`` (token,
    prompts, item, cost, ``metrics``) and ``reference.png``. Returns ``out_dir``."""
    from tryon_lab.training.common import save_atomically, write_json
    from tryon_lab.training.pretrain import save_pipeline

    pipe = result.pipe
    record = _record(result, {"metrics": metrics or {}})

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        if result.mode == "full":
            save_pipeline(pipe, tmp, dtype=dtype)
        else:
            save_lora_garment(pipe, result.adapter_name, result.instances.token, tmp)
        if result.instances.reference is not None:
            result.instances.reference.save(tmp / REFERENCE)
        write_json(tmp / RECORD, record)

    return save_atomically(out_dir, write)


def load_dreambooth(folder: str | Path, base: str | Path | None = None, device: str | None = None):
    """Load a saved garment as a ready pipeline: a full folder directly; an adapter onto ``base``
    (default: the base model recorded at training). Returns the pipeline."""
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.adapters import GarmentAdapters

    record = read_record(folder)
    if record["mode"] == "full":
        return load_inpaint_pipeline(folder, device=device)
    pipe = load_inpaint_pipeline(base or record["base_model"], device=device)
    adapters = GarmentAdapters(pipe)
    adapters.activate(adapters.load(folder).id)
    return pipe


def folder_size(folder: str | Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())

