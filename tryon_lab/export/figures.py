"""Figures for the export chapter: a palette over its weights, size against quality, layer
sensitivity with the mixed-bit allocation, and chunk sizes. Each returns a ``NotebookFigure``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tryon_lab.export.mixed_bits import Sensitivity
from tryon_lab.plotting import NotebookFigure

BIT_COLOURS = {16: "#7f7f7f", 8: "#1f77b4", 6: "#2ca02c", 4: "#d62728"}


def palette_figure(weights: np.ndarray, palettized: np.ndarray, title: str = "") -> NotebookFigure:
    """Histogram of one layer's ``weights`` with its palette (the distinct values of ``palettized``)."""
    fig = NotebookFigure(figsize=(8, 3))
    ax = fig.subplots()
    ax.hist(np.ravel(weights), bins=120, color="#9ecae1")
    centroids = np.unique(np.ravel(palettized))
    for value in centroids:
        ax.axvline(value, color="#d62728", linewidth=0.8)
    ax.set_title(f"{title}: {np.size(weights)} weights, {len(centroids)} palette entries (red)", fontsize=9)
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    fig.tight_layout()
    return fig


def size_quality_figure(rows: Sequence[Mapping[str, object]]) -> NotebookFigure:
    """PSNR (dB) against stored size relative to fp16, one labelled point per row
    (``{"label", "size_ratio", "psnr"}``)."""
    fig = NotebookFigure(figsize=(6, 3.5))
    ax = fig.subplots()
    for row in rows:
        ax.scatter(row["size_ratio"], row["psnr"], color="#1f77b4")
        ax.annotate(str(row["label"]), (row["size_ratio"], row["psnr"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.axhline(30, color="#d62728", linestyle="--", linewidth=0.8, label="30 dB (palettized bar)")
    ax.axhline(35, color="#2ca02c", linestyle="--", linewidth=0.8, label="35 dB (conversion bar)")
    ax.set_xlabel("weight bytes / fp16 weight bytes")
    ax.set_ylabel("U-Net output PSNR vs PyTorch (dB)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sensitivity_figure(sensitivities: Sequence[Sensitivity], allocation: Mapping[str, int], bits: int = 4) -> NotebookFigure:
    """PSNR when only that layer is palettized at ``bits``, one bar per layer, coloured by the
    width ``allocation`` gave it (lower bars = more sensitive layers)."""
    layers = [s for s in sensitivities if bits in s.psnr]
    fig = NotebookFigure(figsize=(max(6.0, 0.18 * len(layers)), 3.5))
    ax = fig.subplots()
    values = [min(s.psnr[bits], 120.0) for s in layers]
    ax.bar(range(len(layers)), values, color=[BIT_COLOURS.get(allocation.get(s.name, 16), "k") for s in layers])
    ax.set_xticks([])
    ax.set_xlabel("layers, in program order")
    ax.set_ylabel(f"PSNR, only this layer at {bits} bits (dB)")
    for width, colour in BIT_COLOURS.items():
        ax.bar([], [], color=colour, label=f"allocated {width} bits" if width < 16 else "kept fp16")
    ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    return fig


def chunk_figure(names: Sequence[str], weight_bytes: Sequence[int]) -> NotebookFigure:
    """Weight bytes per chunk against the equal share."""
    fig = NotebookFigure(figsize=(5, 3))
    ax = fig.subplots()
    ax.bar(names, [b / 1024 for b in weight_bytes], color="#2ca02c")
    ax.axhline(np.mean(weight_bytes) / 1024, color="k", linestyle="--", linewidth=0.8, label="equal share")
    ax.set_ylabel("weight KiB")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
