"""Pieces every recipe shares: the accelerator, data loaders, atomic saving of finished models."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed


def make_accelerator(seed: int = 0, gradient_accumulation_steps: int = 1) -> Accelerator:
    """Return an Accelerator (CPU, GPU or ``accelerate launch`` multi-process) with seeds set."""
    # Without cpu=True, accelerate on a machine with no GPU ignores the launcher's process group
    # and every process trains alone; with it, `accelerate launch` processes join a gloo group.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), gradient_accumulation_steps=gradient_accumulation_steps)
    set_seed(seed, device_specific=True)
    return accelerator


def seeded_loader(dataset, batch_size: int, seed: int, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A shuffling DataLoader whose order is fixed by ``seed`` (epoch seeds come from the loop)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, generator=generator,
        num_workers=num_workers, persistent_workers=False,
    )


def data_workers(device: torch.device) -> int:
    """Loader worker processes for rendering world samples: on a GPU every CPU core but one keeps the
    accelerator fed; on a CPU none (the cores train; workers would only contend)."""
    return min(16, (os.cpu_count() or 1) - 1) if device.type == "cuda" else 0


def loader_factory(accelerator: Accelerator, dataset, batch_size: int, num_workers: int = 0) -> Callable[[int], torch.utils.data.DataLoader]:
    """``factory(epoch_seed)`` -> a loader sharded across accelerate processes."""

    def factory(epoch_seed: int):
        return accelerator.prepare_data_loader(seeded_loader(dataset, batch_size, epoch_seed, num_workers))

    return factory


def save_atomically(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_dir)`` then rename ``tmp_dir`` to ``out_dir`` (replacing it); returns out_dir.

    Under ``accelerate launch`` only the main process writes (the others return at once): every
    process holds the same synchronised model, and two writers would race for ``out_dir``.
    """
    out_dir = Path(out_dir)
    if not PartialState().is_main_process:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".tmp-{out_dir.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        write(tmp)
        fsync_tree(tmp)
        if out_dir.exists():
            old = out_dir.parent / f".old-{out_dir.name}-{os.getpid()}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
        fsync_tree(out_dir.parent, recursive=False)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


def fsync_tree(folder: str | Path, recursive: bool = True) -> None:
    """Flush ``folder``'s files (with ``recursive``, all below it) and directory entries to disk.

    A rename is atomic, but without this a machine that goes down right after it can leave the
    renamed folder holding empty or short files.
    """
    folder = Path(folder)
    paths = [*sorted(folder.rglob("*"), reverse=True), folder] if recursive else [folder]
    for path in paths:
        if path.is_symlink():
            continue
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def run_record(extra: dict) -> dict:
    """What a model card needs to say how a model was made: command, versions, machine, plus ``extra``."""
    import diffusers
    import transformers

    return {
        "command": " ".join(["tryon-lab", *sys.argv[1:]]) if sys.argv else "",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores"
        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
        **extra,
    }


def write_json(path: str | Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON."""
    Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def module_fingerprint(module: torch.nn.Module) -> str:
    """First 16 hex digits of the sha256 over a module's parameter and buffer names, shapes and values:
    what a cache built with the module records, so a changed module (e.g. a new VAE) rebuilds it."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]

