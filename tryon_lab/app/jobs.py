"""Generation off the kernel's main thread: a worker thread, a progress bar, previews, cancel.

The kernel's main thread keeps handling widget messages (brush strokes, buttons) while the
worker runs the back end; every failure in the worker ends as a message on the status line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from PIL import Image

from tryon_lab.app.backends import GenerationCancelled, Preview, TryOnBackend
from tryon_lab.app.ui import StatusLine
from tryon_lab.errors import TryOnInputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One try-on request: the photo, its bool mask, the prompt, steps, seed and the sampler (None:
    the back end's default)."""

    image: Image.Image
    mask: np.ndarray
    prompt: str
    steps: int
    seed: int
    sampler: str | None = None


class JobRunner:
    """Runs one ``Job`` at a time on a worker thread and reports to widgets.

    ``on_preview(image)`` and ``on_result(image)`` are called from the worker thread; previews
    come after the first step and then at most every ``preview_interval`` seconds.
    ``progress`` (a bar) and ``cancel_button`` are widgets for a screen to place. After a job,
    ``seconds`` and ``first_preview_seconds`` time it, and ``error`` holds what made it fail.
    """

    def __init__(self, backend: TryOnBackend, status: StatusLine, on_preview: Callable[[Image.Image], None],
                 on_result: Callable[[Image.Image], None], preview_interval: float = 0.25) -> None:
        self.backend, self.status = backend, status
        self.on_preview, self.on_result = on_preview, on_result
        self.preview_interval = preview_interval
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="auto", flex="1 1 auto"))
        self.progress.add_class("tryon-progress")
        self.cancel_button = widgets.Button(description="Cancel", disabled=True,
                                            layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.cancel_button.add_class("tryon-cancel")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.error: BaseException | None = None
        self.seconds: float | None = None
        self.first_preview_seconds: float | None = None
        self._busy_listeners: list[Callable[[bool], None]] = []
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._thread is not None and self._thread.is_alive()

    def on_busy(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(busy)`` when a job starts (True) and when it ends (False)."""
        self._busy_listeners.append(callback)

    def start(self, job: Job) -> None:
        """Start ``job`` on a worker thread; raises ``TryOnInputError`` if one is running."""
        if self.busy:
            raise TryOnInputError("a try-on is already running; cancel it or wait")
        self._cancel.clear()
        self.error = self.seconds = self.first_preview_seconds = None
        self.progress.max, self.progress.value = job.steps, 0
        self.cancel_button.disabled = False
        self.status.show(f"Starting: {job.steps} steps, seed {job.seed}…")
        self._notify(True)
        self._thread = threading.Thread(target=self._run, args=(job, time.perf_counter()),
                                        name="tryon-generate", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop the running job after its current step (its result is discarded)."""
        if self.busy:
            self.status.show("Cancelling…")  # before the worker can answer "Cancelled."
            self._cancel.set()
            self.backend.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running job (if any) ends; return False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def _run(self, job: Job, began: float) -> None:
        last_preview = -1.0

        def on_step(step: int, total: int, preview: Preview) -> None:
            nonlocal last_preview
            if self._cancel.is_set():
                raise GenerationCancelled("the try-on was cancelled")
            now = time.perf_counter()
            if last_preview < 0 or now - last_preview >= self.preview_interval or step + 1 == total:
                self.on_preview(preview())
                last_preview = time.perf_counter()
                if self.first_preview_seconds is None:
                    self.first_preview_seconds = last_preview - began
            self.progress.value = step + 1
            self.status.show(f"Painting… step {step + 1}/{total}")

        try:
            image = self.backend.generate(job.image, job.mask, job.prompt, job.steps, job.seed, on_step,
                                          sampler=job.sampler)
            self.seconds = time.perf_counter() - began
            self.on_result(image)
            how = f"seed {job.seed}" + (f", {job.steps} {job.sampler.upper()} steps" if job.sampler else "")
            self.status.show(f"Done in {self.seconds:.1f} s ({how}). Paint over it to restore your photo.", "ok")
        except GenerationCancelled:
            self.status.show("Cancelled.")
        except Exception as error:  # noqa: BLE001 - a worker failure must become a message, not a lost thread
            log.debug("try-on failed", exc_info=True)  # the exception stays in ``error``
            self.error = error
            self.status.error(error, "Try-on failed")
        finally:
            self.cancel_button.disabled = True
            self._notify(False)

    def _notify(self, busy: bool) -> None:
        for listener in self._busy_listeners:
            listener(busy)
