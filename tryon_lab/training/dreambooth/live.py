"""A loss plot that redraws itself while DreamBooth trains (notebook 02).

``LiveLossPlot`` is an ``on_step`` callback for ``train_dreambooth``: every few seconds it reads
the run's losses.csv and replaces the figure shown in the notebook cell. It needs no thread: the
training loop calls it between steps. Outside IPython it draws nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from tryon_lab.plotting import NotebookFigure
from tryon_lab.training.losslog import plot_losses, read_losses


def loss_figure(losses_csv: str | Path, total_steps: int | None = None, title: str = "",
                smooth: int = 5) -> NotebookFigure:
    """Takes a run's losses.csv; returns a figure of every logged loss against step (log scale),
    with the x axis spanning ``total_steps`` when given (so a live plot does not rescale)."""
    fig = NotebookFigure(figsize=(6.5, 3.2))
    ax = fig.subplots()
    plot_losses(losses_csv, ax=ax, smooth=smooth)
    if total_steps:
        ax.set_xlim(0, total_steps)
    rows = read_losses(losses_csv)
    done = rows[-1]["step"] if rows else 0
    ax.set_title(f"{title}  step {done}" + (f" of {total_steps}" if total_steps else ""), fontsize=9)
    fig.tight_layout()
    return fig


class LiveLossPlot:
    """``on_step`` callback: show ``run_dir/losses.csv`` in the current notebook cell, redrawn at
    most every ``every_s`` seconds; ``finish()`` draws the final state."""

    def __init__(self, run_dir: str | Path, total_steps: int, title: str = "", every_s: float = 5.0):
        self.path = Path(run_dir) / "losses.csv"
        self.total_steps, self.title, self.every_s = total_steps, title, every_s
        self._handle = None
        self._last = 0.0

    def __call__(self, step: int) -> None:
        """Redraw if ``every_s`` seconds have passed since the last drawing."""
        if time.perf_counter() - self._last >= self.every_s:
            self.draw()

    def draw(self) -> None:
        """Show the losses logged so far (replacing the previous drawing); no-op outside IPython."""
        self._last = time.perf_counter()
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = loss_figure(self.path, self.total_steps, self.title)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

    def finish(self) -> None:
        """Draw once more, after the last step."""
        self.draw()
