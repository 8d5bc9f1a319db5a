"""Figures shared by the notebooks and the CLI."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

TITLE_CHARS_PER_INCH = 12  # at font size 8, so titles wrap instead of running into each other


class NotebookFigure(Figure):
    """A matplotlib figure, not attached to pyplot, that shows itself as a PNG when it is a
    notebook cell's value (so it appears once, and only where it is returned)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def image_grid(
    images: Sequence[Image.Image | np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.2,
) -> NotebookFigure:
    """Return a figure showing ``images`` in rows of ``ncols``, each under its title.

    Images may be PIL images, HxWx3 arrays, or HxW arrays (masks, shown black to white over
    [0, 1]). A notebook shows the figure when it is a cell's value; ``fig.savefig(path)``
    writes it to a file.
    """
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = max(1, math.ceil(len(images) / ncols))
    fig = NotebookFigure(figsize=(size * ncols, size * nrows + (0.4 * nrows if titles else 0)))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for index, ax in enumerate(axes):
        ax.set_axis_off()
        if index >= len(images):
            continue
        image = np.asarray(images[index])
        if image.ndim == 2:
            ax.imshow(image.astype(np.float32), cmap="gray", vmin=0.0, vmax=1.0)
        else:
            ax.imshow(image)
        if titles is not None:
            ax.set_title(textwrap.fill(titles[index], int(TITLE_CHARS_PER_INCH * size)), fontsize=8)
    fig.tight_layout()
    return fig
