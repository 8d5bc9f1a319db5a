"""Atomic, resumable training checkpoints through ``accelerate``'s save_state / load_state.

A checkpoint is written to a hidden temporary folder and renamed into place, so a run killed
mid-write never leaves a half-written ``step-NNNNNN`` folder behind; resuming picks the newest
complete one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Return the complete checkpoints in ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def replicas_in_sync(accelerator: Accelerator, model: torch.nn.Module) -> bool:
    """True when every process holds the same weights (data-parallel training kept them synchronised)."""
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    gathered = accelerator.gather(checksum.to(accelerator.device))
    return bool(torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=1e-9, atol=0.0))


def save_checkpoint(accelerator: Accelerator, run_dir: str | Path, step: int, keep: int = 2, extra: dict | None = None,
                    model: torch.nn.Module | None = None) -> Path:
    """Save models, optimizers, RNG states and ``step`` atomically; keep the ``keep`` newest.

    Returns the checkpoint folder. Every process must call it (accelerate gathers state);
    only the main process writes the trainer state and renames. With ``model``, the state also
    records whether all processes' weights agree (``replicas_in_sync``).
    """
    extra = {**(extra or {}), "num_processes": accelerator.num_processes}
    if model is not None:
        extra["replicas_in_sync"] = replicas_in_sync(accelerator, model)
    run_dir = Path(run_dir)
    final = run_dir / f"{CHECKPOINT_PREFIX}{step:06d}"
    tmp = run_dir / f".tmp-{final.name}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **extra}))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in checkpoint_dirs(run_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def resume_latest(accelerator: Accelerator, run_dir: str | Path) -> dict:
    """Load the newest complete checkpoint in ``run_dir`` if any; return its trainer state ({} if none)."""
    found = checkpoint_dirs(run_dir)
    if not found:
        return {}
    accelerator.load_state(str(found[-1]))
    return json.loads((found[-1] / STATE_FILE).read_text())
