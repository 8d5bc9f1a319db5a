"""DTC training and try-ons (notebook 03): a model folder's loss logs as figures, and try-ons of several
pipelines side by side with the ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from tryon_lab.data.masks import make_collage, overlay
from tryon_lab.data.world import WorldSample
from tryon_lab.plotting import NotebookFigure, image_grid
from tryon_lab.training.dtc import dtc_method
from tryon_lab.training.losslog import plot_losses

SHORT_RUN_POINTS = 20  # loss curves with at most this many logged points get markers


def dtc_logs(folder: Path | None, variants: Sequence[str] | None = None) -> dict[str, Path]:
    """The loss logs a shipped DTC folder carries (``logs/<variant>_losses.csv``, "+" written
    "_"), by variant name, only ``variants`` if given; {} without a folder."""
    if folder is None or not (folder / "logs").is_dir():
        return {}
    logs = {p.stem.removesuffix("_losses"): p for p in sorted((folder / "logs").glob("*_losses.csv"))}
    if variants is None:
        return logs
    return {v: logs[v.replace("+", "_")] for v in variants if v.replace("+", "_") in logs}


def loss_figure(curves: Mapping[str, Path], smooth: int = 5, size: tuple[float, float] = (4.5, 3.0)) -> NotebookFigure:
    """One panel per ``{title: losses.csv}``: every logged loss against step (log scale)."""
    fig = NotebookFigure(figsize=(size[0] * len(curves), size[1]))
    for ax, (title, path) in zip(fig.subplots(1, len(curves), squeeze=False)[0], curves.items()):
        plot_losses(path, ax=ax, smooth=smooth)
        for line in ax.get_lines():
            if len(line.get_xdata()) <= SHORT_RUN_POINTS:  # a short run logs a few points: show them
                line.set_marker("o")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def run_tryons(pipes: Mapping[str, Any], samples: Sequence[WorldSample], *, steps: int, guidance_scale: float,
               seed: int = 0) -> dict[str, list[Image.Image]]:
    """Each pipeline's try-ons of ``samples`` (shape masks, same seeds): {name: images}."""
    return {name: dtc_method(pipe, steps, guidance_scale, seed)(samples) for name, pipe in pipes.items()}


def tryon_figure(samples: Sequence[WorldSample], outputs: Mapping[str, Sequence[Image.Image]],
                 size: float = 1.9) -> NotebookFigure:
    """Per sample: scene + mask, reference, hint, each method's try-on, ground truth."""
    images, titles = [], []
    for i, sample in enumerate(samples):
        images += [overlay(sample.scene, sample.shape_mask), sample.reference,
                   make_collage(sample.reference, sample.shape_mask)]
        images += [outs[i] for outs in outputs.values()] + [sample.target]
        titles += [f"{sample.kind}: scene + mask", "reference", "hint", *outputs, "ground truth"]
    return image_grid(images, titles, ncols=4 + len(outputs), size=size)
