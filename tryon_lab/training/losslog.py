"""Loss curves: appended to a CSV as training runs, plotted from it afterwards."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path


class LossLog:
    """Append rows of ``step`` + named values to ``<run_dir>/losses.csv`` (survives resumes)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fields: list[str] | None = None
        if self.path.is_file():
            with self.path.open() as handle:
                header = handle.readline().strip()
            self._fields = header.split(",") if header else None

    def append(self, step: int, values: Mapping[str, float]) -> None:
        """Write one row; the first row fixes the columns."""
        row = {"step": step, **{k: float(v) for k, v in values.items()}}
        new = self._fields is None
        if new:
            self._fields = list(row)
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resume replays them from the checkpoint)."""
        rows = read_losses(self.path)
        if not rows:
            return
        kept = [r for r in rows if r["step"] <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp")  # a kill mid-write must not lose the log
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fields)
            writer.writeheader()
            writer.writerows({k: (int(v) if k == "step" else v) for k, v in r.items()} for r in kept)
        os.replace(tmp, self.path)


def read_losses(path: str | Path) -> list[dict[str, float]]:
    """Read a losses.csv into a list of dicts (numbers as floats, step as int)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{k: (int(float(v)) if k == "step" else float(v)) for k, v in row.items()} for row in csv.DictReader(handle)]


def plot_losses(path: str | Path, ax=None, smooth: int = 20):
    """Plot every column of a losses.csv against step (raw, faint; moving average, solid); returns the axes."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = read_losses(path)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    if not rows:
        ax.set_title(f"no losses logged yet in {Path(path).name}")
        return ax
    steps = np.array([r["step"] for r in rows])
    for name in [k for k in rows[0] if k != "step"]:
        values = np.array([r[name] for r in rows])
        line = ax.plot(steps, values, alpha=0.25)[0]
        if len(values) >= smooth > 1:
            kernel = np.ones(smooth) / smooth
            ax.plot(steps[smooth - 1:], np.convolve(values, kernel, mode="valid"), color=line.get_color(), label=name)
        else:
            line.set_label(name)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    return ax
