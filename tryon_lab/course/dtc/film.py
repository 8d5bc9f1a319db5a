"""Inside FiLM (notebook 03): per-skip statistics and maps of the hint encoder's scales (gamma) and
shifts (beta), and whether they change the skips more inside the mask than outside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from tryon_lab.models.dtc import HintModulation
from tryon_lab.plotting import NotebookFigure

FILM_HEADERS = ["level", "gamma min", "gamma mean", "gamma max", "beta min", "beta mean", "beta max", "in/out of mask"]


def level_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A pixel mask brought to a feature map's (h, w): a cell is masked if any of its pixels is."""
    tensor = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    return F.adaptive_max_pool2d(tensor, size)[0, 0].numpy() > 0.5


def film_rows(modulation: HintModulation, names: Sequence[str], mask: np.ndarray | None = None,
              index: int = 0) -> list[list]:
    """Rows (``FILM_HEADERS``) of per-level statistics of one example (``index``) of
    ``modulation``: level name, gamma min / mean / max, beta min / mean / max, and, with the
    pixel ``mask`` (spatial maps only), the mean |gamma - 1| + |beta| inside the mask over that
    outside it: above 1, the hint changes the skip more where the item goes."""
    rows = []
    scales = modulation.scales or (None,) * len(modulation)
    for name, shift, scale in zip(names, modulation.shifts, scales):
        beta = shift[index].float()
        gamma = scale[index].float() if scale is not None else None
        row = [name]
        row += _min_mean_max(gamma) if gamma is not None else ["", "", ""]
        row += _min_mean_max(beta)
        row.append(_inside_outside(gamma, beta, mask))
        rows.append(row)
    return rows


def _min_mean_max(values: torch.Tensor) -> list[float]:
    return [round(float(f(values)), 4) for f in (torch.min, torch.mean, torch.max)]


def _inside_outside(gamma: torch.Tensor | None, beta: torch.Tensor, mask: np.ndarray | None) -> str | float:
    if mask is None or beta.shape[-2:] == (1, 1):
        return ""
    strength = beta.abs().mean(0) + ((gamma - 1).abs().mean(0) if gamma is not None else 0)
    cells = torch.from_numpy(level_mask(mask, tuple(beta.shape[-2:])))
    if cells.all() or not cells.any():
        return ""
    outside = float(strength[~cells].mean())
    return round(float(strength[cells].mean()) / outside, 2) if outside > 0 else ""


def film_figure(modulation: HintModulation, names: Sequence[str], hint: Image.Image | None = None,
                index: int = 0, size: float = 1.6) -> NotebookFigure:
    """FiLM maps of one example: per level (columns), the channel mean of gamma (top row, centred
    on 1) and of beta (bottom row, centred on 0), each on its own symmetric colour scale (the
    title gives it). Channel-wise FiLM (1x1 maps) shows one value per channel instead.
    ``hint``: shown first for orientation. Addition (no gamma) has only the beta row."""
    rows = [("gamma", modulation.scales, 1.0)] if modulation.scales is not None else []
    rows.append(("beta" if modulation.scales is not None else "residual", modulation.shifts, 0.0))
    ncols = len(names) + (hint is not None)
    fig = NotebookFigure(figsize=(size * ncols, size * len(rows) + 0.6))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (label, maps, centre) in enumerate(rows):
        offset = 0
        if hint is not None:
            axes[r, 0].imshow(hint)
            axes[r, 0].set_title("hint" if r == 0 else "", fontsize=8)
            axes[r, 0].set_axis_off()
            offset = 1
        for c, (name, tensor) in enumerate(zip(names, maps)):
            values = tensor[index].float()
            grid = values.mean(0) if values.shape[-1] > 1 or values.shape[-2] > 1 else values.flatten()[None]
            spread = float((grid - centre).abs().max()) or 1e-6
            ax = axes[r, c + offset]
            ax.imshow(grid.cpu().numpy(), cmap="RdBu_r", vmin=centre - spread, vmax=centre + spread,
                      aspect="auto" if grid.shape[0] == 1 else "equal")
            ax.set_title(f"{name}\n{label} {centre:g}±{spread:.2g}", fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    return fig
