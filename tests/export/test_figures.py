"""The chapter's figures render from plain data."""

import numpy as np
import pytest

from tryon_lab.export.figures import chunk_figure, palette_figure, sensitivity_figure, size_quality_figure
from tryon_lab.export.mixed_bits import Sensitivity


def test_every_figure_renders_a_png():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(500).astype(np.float32)
    palettized = np.round(weights * 2) / 2
    layers = [Sensitivity("a", 10, {6: 50.0, 4: 38.0}), Sensitivity("b", 20, {6: 45.0, 4: float("inf")})]
    figures = [
        palette_figure(weights, palettized, "layer"),
        size_quality_figure([{"label": "fp16", "size_ratio": 1.0, "psnr": 60.0},
                             {"label": "4-bit", "size_ratio": 0.3, "psnr": 31.0}]),
        sensitivity_figure(layers, {"a": 4, "b": 16}, bits=4),
        chunk_figure(["chunk 1", "chunk 2"], [1000, 1100]),
    ]
    for figure in figures:
        assert figure._repr_png_().startswith(b"\x89PNG")
        assert figure.axes and all(ax.has_data() for ax in figure.axes if ax.get_visible())
    bars = [patch.get_height() for patch in figures[3].axes[0].patches]
    assert bars == pytest.approx([1000 / 1024, 1100 / 1024])  # the chunks' weights, in KiB
