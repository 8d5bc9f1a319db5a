"""What this machine offers the course: versions, CPUs, threads, accelerators, profile, paths."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from tryon_lab import __version__
from tryon_lab.paths import build_root
from tryon_lab.profiles import current_profile
from tryon_lab.tables import format_table

REPORTED_PACKAGES = ("torch", "diffusers", "transformers", "coremltools", "executorch")


def package_version(name: str) -> str:
    """Return the installed version of distribution ``name``, or ``"not installed"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> dict[str, Any]:
    """Return versions, CPU count, torch threads, CUDA/MPS availability, profile and build dir."""
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tryon_lab": __version__,
    }
    report.update({name: package_version(name) for name in REPORTED_PACKAGES})
    report.update(
        {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            # Containers and `taskset` can restrict a process to fewer cores than the machine has.
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        }
    )
    report.update(_torch_facts())
    report["profile"] = current_profile().name
    report["build_dir"] = str(build_root().resolve())
    return report


def format_report(report: dict[str, Any]) -> str:
    """Return ``report`` as a two-column text table."""
    rows = [[key, "-" if value is None else value] for key, value in report.items()]
    return format_table(rows, ["item", "value"])


def _torch_facts() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch_threads": None, "cuda": False, "gpu": None, "mps": False}
    cuda = torch.cuda.is_available()
    return {
        "torch_threads": torch.get_num_threads(),
        "cuda": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "mps": torch.backends.mps.is_available(),
    }
