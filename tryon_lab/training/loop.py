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
from typing import TYPE_CHECKING, Any

import torch
from accelerate import Accelerator
from accelerate.data_loader import skip_first_batches
from tqdm.auto import tqdm

from tryon_lab.errors import ConfigError
from tryon_lab.training.checkpoints import resume_latest, save_checkpoint
from tryon_lab.training.losslog import LossLog

if TYPE_CHECKING:
    from diffusers.training_utils import EMAModel


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
    milestone_every: int | None = None  # checkpoints at these multiples are kept (learning curves)
    # Stop (with a checkpoint) once this process has trained this long: a lease on a borrowed GPU
    # ends at a fixed time. The same command with more time continues the run.
    max_seconds: float | None = None
    # (parameter-name prefix, multiplier) pairs: the objective's parameters whose names start with a
    # prefix train at ``learning_rate`` times its multiplier (the first matching prefix counts).
    lr_scales: tuple[tuple[str, float], ...] = ()


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
    """Train the objective ``model`` (not yet prepared) for ``settings.steps`` steps, resuming from ``run_dir``.

    ``batches(start_step)`` returns an endless iterator yielding the batches of steps
    ``start_step + 1, start_step + 2, ...``: the same ones whichever step it starts from
    (``endless`` does this). Checkpoints land in ``run_dir/step-NNNNNN`` every
    ``settings.checkpoint_every`` steps and at the last step (the two newest kept); losses in
    ``run_dir/losses.csv``. Returns a LoopResult; the EMA weights (if any) are in ``result.ema``.

    A checkpoint holds (accelerate's save_state plus ``trainer_state.json``) the trainable
    weights, the AdamW state, the learning-rate schedule's position, the EMA weights and step
    count, accelerate's step counter, the step, the wall time so far, and each process's RNG
    states: python ``random``, numpy, torch CPU and (when present) CUDA. On start the newest
    complete checkpoint is loaded, the loss log is cut back to its step and ``batches(step)``
    resumes the data where it was. Guarantee: a run killed at any point, including during a
    checkpoint write, and started again with the same command, seed and number of processes ends
    with the same weights, EMA and logged losses as a run never interrupted: bit for bit on CPU,
    and on a GPU as far as its kernels are deterministic. This holds when the objective draws its
    randomness from those RNGs and the batches depend only on the step (datasets deterministic
    per index, as the package's are). A half-written checkpoint is never loaded (see
    ``tryon_lab.training.checkpoints``).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(parameter_groups(model, settings), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(settings, step))
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    ema = None
    if settings.ema_decay is not None:
        from diffusers.training_utils import EMAModel  # here: importing diffusers takes seconds

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
    done = start
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
        out_of_time = done % settings.log_every == 0 and over_budget(accelerator, settings.max_seconds, began)
        if done % settings.checkpoint_every == 0 or done == settings.steps or out_of_time:
            wall = elapsed_before + time.perf_counter() - began
            save_checkpoint(accelerator, run_dir, done, extra={"wall_seconds": wall}, model=model,
                            milestone_every=settings.milestone_every)
        if out_of_time:
            bar.write(f"stopped at step {done} of {settings.steps}: the time budget of {settings.max_seconds:.0f} s is spent")
            break
    bar.close()
    model.eval()
    return LoopResult(
        steps=done,
        resumed_from=start,
        wall_seconds=elapsed_before + time.perf_counter() - began,
        last_losses=last,
        ema=ema,
    )


def parameter_groups(model: torch.nn.Module, settings: LoopSettings) -> list[dict[str, Any]]:
    """The optimizer's parameter groups of ``model``'s trainable parameters: one at ``settings.learning_rate``,
    then one per ``settings.lr_scales`` entry (empty groups left out). ``ConfigError`` when a prefix names no
    trainable parameter (a typo would otherwise train everything at the base rate)."""
    groups: list[list[torch.nn.Parameter]] = [[] for _ in range(len(settings.lr_scales) + 1)]
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            index = next((i + 1 for i, (prefix, _) in enumerate(settings.lr_scales) if name.startswith(prefix)), 0)
            groups[index].append(parameter)
    for (prefix, _), params in zip(settings.lr_scales, groups[1:]):
        if not params:
            raise ConfigError(f"learning-rate scale for {prefix!r}: no trainable parameter's name starts with it")
    rates = [settings.learning_rate] + [settings.learning_rate * scale for _, scale in settings.lr_scales]
    return [{"params": params, "lr": rate} for params, rate in zip(groups, rates) if params]


def over_budget(accelerator: Accelerator, max_seconds: float | None, began: float) -> bool:
    """Whether this run has trained ``max_seconds`` since ``began`` (False without a budget); every
    process gets the main process's answer, so they all stop at the same step."""
    if max_seconds is None:
        return False
    flag = torch.tensor([float(time.perf_counter() - began >= max_seconds)], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="max").item())


def learning_rate_factor(settings: LoopSettings, step: int) -> float:
    """The multiplier of ``settings.learning_rate`` at ``step``: linear warmup, then 1 or a cosine to 0."""
    factor = min(1.0, (step + 1) / max(1, settings.warmup_steps))
    if settings.anneal:
        factor *= 0.5 * (1.0 + math.cos(math.pi * min(step, settings.steps) / settings.steps))
    return factor


def endless(loader_factory: Callable[[int], torch.utils.data.DataLoader]) -> Callable[[int], Iterator[Any]]:
    """Turn ``loader_factory(epoch)`` into ``batches(start_step)``: epochs forever, reseeded each pass.

    Epoch ``e`` is ``loader_factory(e)``; ``batches(start_step)`` starts in the epoch and at the
    batch that an iterator begun at step 0 would have reached, skipping the batches before it
    without loading them (accelerate's ``skip_first_batches``).
    """

    def batches(start_step: int) -> Iterator[Any]:
        epoch, skip = divmod(start_step, len(loader_factory(0)))
        while True:
            yield from skip_first_batches(loader_factory(epoch), skip)
            epoch, skip = epoch + 1, 0

    return batches
