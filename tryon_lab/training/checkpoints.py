"""Atomic, resumable training checkpoints through ``accelerate``'s save_state / load_state.

A checkpoint is written to a hidden ``.tmp-step-NNNNNN`` folder, its completion marker
(``trainer_state.json``, listing every file and its size) written last, everything fsynced, and
the folder renamed into place; so a ``step-NNNNNN`` folder is either complete or absent, even
when the process is killed mid-write or the machine goes down. Resuming loads the newest
checkpoint whose marker matches its files, falling back to older ones when one fails to load.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import torch
from accelerate import Accelerator

from tryon_lab.errors import ConfigError
from tryon_lab.training.common import fsync_tree

CHECKPOINT_PREFIX = "step-"
STATE_FILE = "trainer_state.json"
MANIFEST = "files"


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds its completion marker and every file the marker lists, at its size."""
    try:
        # a marker without the list was written by an older version, also only once complete
        manifest = json.loads((folder / STATE_FILE).read_text()).get(MANIFEST, {})
        return all((folder / name).stat().st_size == size for name, size in manifest.items())
    except (OSError, ValueError, AttributeError):
        return False


def checkpoint_step(folder: Path) -> int:
    """The training step a checkpoint folder (``step-NNNNNN``) holds."""
    return int(folder.name.removeprefix(CHECKPOINT_PREFIX))


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """Return the complete checkpoints in ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir()
             if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit()
             and is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def replicas_in_sync(accelerator: Accelerator, model: torch.nn.Module) -> bool:
    """True when every process holds the same weights (data-parallel training kept them synchronised)."""
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    gathered = accelerator.gather(checksum.to(accelerator.device))
    return bool(torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=1e-9, atol=0.0))


def _remove(run_dir: Path, folder: Path) -> None:
    # renamed first so that a kill during the (non-atomic) delete leaves a hidden folder, never a
    # step folder with some of its files gone
    doomed = run_dir / f".old-{folder.name}"
    folder.rename(doomed)
    shutil.rmtree(doomed)


def save_checkpoint(accelerator: Accelerator, run_dir: str | Path, step: int, keep: int = 2, extra: dict | None = None,
                    model: torch.nn.Module | None = None, milestone_every: int | None = None) -> Path:
    """Save models, optimizers, schedulers, registered objects, RNG states and ``step`` atomically.

    Returns the checkpoint folder. Every process must call it (accelerate gathers state); only the
    main process writes the marker, renames and prunes to the ``keep`` newest, after the new one
    is complete; checkpoints at multiples of ``milestone_every`` are never pruned (the points of a
    learning curve). With ``model``, the state also records whether all processes' weights agree
    (``replicas_in_sync``).
    """
    extra = {**(extra or {}), "num_processes": accelerator.num_processes}
    if model is not None:
        extra["replicas_in_sync"] = replicas_in_sync(accelerator, model)
    run_dir = Path(run_dir)
    final = run_dir / f"{CHECKPOINT_PREFIX}{step:06d}"
    tmp = run_dir / f".tmp-{final.name}"
    if accelerator.is_main_process:
        for prefix in (".tmp-", ".old-"):  # folders a killed run left behind
            for stale in run_dir.glob(f"{prefix}{CHECKPOINT_PREFIX}*"):
                shutil.rmtree(stale)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # every process's RNG file is in before the folder moves
    if accelerator.is_main_process:
        files = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **extra, MANIFEST: files}))
        fsync_tree(tmp)
        if final.exists():
            _remove(run_dir, final)
        tmp.rename(final)
        fsync_tree(run_dir, recursive=False)
        for old in checkpoint_dirs(run_dir)[:-keep]:
            if not (milestone_every and checkpoint_step(old) % milestone_every == 0):
                _remove(run_dir, old)
    accelerator.wait_for_everyone()
    return final


def resume_latest(accelerator: Accelerator, run_dir: str | Path) -> dict:
    """Load the newest complete checkpoint in ``run_dir`` if any; return its trainer state ({} if none).

    A checkpoint that fails to load (a damaged file) is skipped with a warning for the next older
    one; when every one fails (most often: the run folder was trained with other settings, so the
    model's shapes differ), ``ConfigError`` says so rather than training from scratch over it.
    """
    found = checkpoint_dirs(run_dir)
    for number, folder in enumerate(reversed(found)):
        try:
            accelerator.load_state(str(folder))
        except Exception as error:
            if number == len(found) - 1:
                raise ConfigError(
                    f"no checkpoint in {run_dir} loads into this model ({len(found)} tried; the oldest says: "
                    f"{' '.join(str(error).split())[:300]}). Was the run folder trained with other settings? "
                    "Resume it with those, or give another run folder.") from error
            warnings.warn(f"checkpoint {folder} does not load ({error}); trying an older one", stacklevel=2)
            continue
        state = json.loads((folder / STATE_FILE).read_text())
        state.pop(MANIFEST, None)
        return state
    return {}
