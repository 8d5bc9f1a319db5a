"""``python -m benchmarks dreambooth-val``: the DreamBooth protocol on val garments and val people,
where the recipe is tuned (see benchmarks/dreambooth.py); test stays for reporting."""

from __future__ import annotations

from benchmarks.dreambooth import MODELS
from benchmarks.dreambooth import run as run_on

__all__ = ["MODELS", "run"]


def run() -> list[tuple[str, object, str]]:
    """The dreambooth benchmark's rows on the val split."""
    return run_on(split="val")
