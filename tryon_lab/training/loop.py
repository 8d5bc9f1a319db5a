"""The one training loop every recipe uses: accelerate, resumable checkpoints, CSV losses, EMA.

A recipe supplies an *objective*: an ``nn.Module`` holding the trainable parts whose
``forward(batch)`` returns ``(loss, {name: value})`` (going through ``forward`` is what lets
DistributedDataParallel synchronise gradients under ``accelerate launch``), and an endless batch
iterator; the loop does the rest identically for the VAE, the world encoder, the inpainting
U-Net, DreamBooth and DTC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from tryon_lab.training.checkpoints import resume_latest, save_checkpoint
from tryon_lab.training.losslog import LossLog


@dataclass(frozen=True)
class LoopSettings:
    """How long and how to train: steps, learning rate, logging and checkpoint cadence."""

    steps: int
    learning_rate: float
    checkpoint_every: int = 500
    log_every: int = 10
    weight_decay: float = 0.0
    ema_decay: float | None = None
    grad_clip: float = 1.0
    warmup_steps: int = 0
    anneal: bool = False  # after warmup, a cosine decay of the learning rate to zero at ``steps``


@dataclass
class LoopResult:
    """What a finished (or resumed-and-finished) run reports."""

    steps: int
    resumed_from: int
    wall_seconds: float
    last_losses: dict[str, float]
    ema: EMAModel | None


def run_loop(
    accelerator: Accelerator,
    run_dir: str | Path,
    model: torch.nn.Module,
    batches: Callable[[int], Iterator[Any]],
    settings: LoopSettings,
    progress_desc: str = "training",
) -> LoopResult:
    """Train the objective ``model`` (not yet prepared) for ``settings.steps`` steps.

    ``batches(start_step)`` returns an endless iterator of batches (seeded by the start step so a
    resumed run draws fresh data). Checkpoints land in ``run_dir/step-NNNNNN``; losses in
    ``run_dir/losses.csv``. Returns a LoopResult; the EMA weights (if any) are in ``result.ema``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(settings, step))
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    ema = None
    if settings.ema_decay is not None:
        ema = EMAModel(accelerator.unwrap_model(model).parameters(), decay=settings.ema_decay)
        accelerator.register_for_checkpointing(ema)

    state = resume_latest(accelerator, run_dir)
    start = int(state.get("step", 0))
    log = LossLog(run_dir / "losses.csv")
    if accelerator.is_main_process:
        log.truncate_after(start)
    elapsed_before = float(state.get("wall_seconds", 0.0))
    began = time.perf_counter()
    last: dict[str, float] = {}
    data = batches(start)
    model.train()
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, desc=progress_desc,
               disable=not accelerator.is_local_main_process, dynamic_ncols=True)
    for step in bar:
        batch = next(data)
        with accelerator.accumulate(model):
            loss, logs = model(batch)
            accelerator.backward(loss)
            if accelerator.sync_gradients and settings.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(accelerator.unwrap_model(model).parameters())
        last = {"loss": float(loss.detach()), **logs}
        done = step + 1
        if accelerator.is_main_process and (done % settings.log_every == 0 or done == settings.steps):
            log.append(done, last)
            bar.set_postfix({k: f"{v:.4f}" for k, v in last.items()})
        if done % settings.checkpoint_every == 0 or done == settings.steps:
            wall = elapsed_before + time.perf_counter() - began
            save_checkpoint(accelerator, run_dir, done, extra={"wall_seconds": wall}, model=model)
    model.eval()
    return LoopResult(
        steps=settings.steps,
        resumed_from=start,
        wall_seconds=elapsed_before + time.perf_counter() - began,
        last_losses=last,
        ema=ema,
    )


def learning_rate_factor(settings: LoopSettings, step: int) -> float:
    """The multiplier of ``settings.learning_rate`` at ``step``: linear warmup, then 1 or a cosine to 0."""
    factor = min(1.0, (step + 1) / max(1, settings.warmup_steps))
    if settings.anneal:
        factor *= 0.5 * (1.0 + math.cos(math.pi * min(step, settings.steps) / settings.steps))
    return factor


def endless(loader_factory: Callable[[int], torch.utils.data.DataLoader]) -> Callable[[int], Iterator[Any]]:
    """Turn ``loader_factory(epoch_seed)`` into ``batches(start_step)``: epochs forever, reseeded each pass."""

    def batches(start_step: int) -> Iterator[Any]:
        epoch = 0
        while True:
            yield from loader_factory(start_step * 1000 + epoch)
            epoch += 1

    return batches
