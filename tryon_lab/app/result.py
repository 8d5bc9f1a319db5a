"""The Result screen: the try-on as it forms, before/after, the restore brush, seed and steps, save.

With a back end that can sample with the model's LCM LoRA, a try-on comes first in the LCM
sampler's few steps (an instant result) and "Refine" runs the same photo, mask, prompt and seed
again with the full sampler and the Steps slider."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
from PIL import Image

from tryon_lab.app.backends import TryOnBackend
from tryon_lab.app.canvas import MaskCanvas
from tryon_lab.app.jobs import Job, JobRunner
from tryon_lab.app.ui import LABELS, StatusLine, button
from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.paths import build_dir

AFTER, BEFORE = "After", "Before"
INSTANT = "lcm"  # the sampler of the first, instant result when the back end has it
MAX_SEED = 2**31 - 1


class ResultScreen:
    """Shows generations of ``backend`` (None: ``unavailable`` says why) and lets the user paint
    the original photo back over the result. "New seed" calls ``on_again()`` with the seed
    advanced by one; "Refine" (shown when the back end can sample instantly) re-runs the last
    try-on with the full sampler."""

    def __init__(self, backend: TryOnBackend | None, status: StatusLine, on_again: Callable[[], None],
                 steps: int = 20, seed: int = 0, canvas_size: tuple[int, int] = (336, 420),
                 unavailable: str = "no model is loaded") -> None:
        self.status, self.unavailable = status, unavailable
        self.original: Image.Image | None = None
        self.generated: Image.Image | None = None
        self.instant = backend is not None and INSTANT in getattr(backend, "samplers", ())
        self._last: tuple[Image.Image, object] | None = None
        self.jobs = JobRunner(backend, status, self.show_preview, self.set_result) if backend is not None else None
        self.canvas = MaskCanvas(*canvas_size, colour=(0, 170, 120), alpha=0.5, keep_overlay=False,
                                 css_class="tryon-result-canvas")
        self.canvas.enabled = False
        self.canvas.on_change(lambda _: self._refresh())
        self.view = widgets.ToggleButtons(options=[AFTER, BEFORE], value=AFTER, style={"button_width": "72px"})
        self.view.add_class("tryon-view")
        self.view.observe(lambda _: self._refresh(), "value")
        self.prompt = widgets.Textarea(description="Prompt", rows=2, style=LABELS)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=MAX_SEED, description="Seed",
                                           style=LABELS, layout=widgets.Layout(width="170px"))
        self.steps = widgets.IntSlider(value=steps, min=1, max=100, description="Steps", style=LABELS)
        self.download = widgets.HTML()

        def again() -> None:
            self.seed.value = (self.seed.value + 1) % (MAX_SEED + 1)
            on_again()

        self.again_button = button("New seed", again, status, css_class="tryon-again")
        self.save_button = button("Save PNG", self._save_clicked, status, css_class="tryon-save")
        self.refine_button = button("Refine", self.refine, status, css_class="tryon-refine",
                                    tooltip="run this try-on again with the full sampler and the Steps slider")
        self.refine_button.disabled = True
        self.refine_button.layout.display = None if self.instant else "none"
        progress = []
        if self.jobs is not None:
            progress = [self.jobs.progress, self.jobs.cancel_button]
            self.jobs.on_busy(lambda busy: setattr(self.again_button, "disabled", busy))
            self.jobs.on_busy(lambda busy: setattr(self.refine_button, "disabled", busy or self._last is None))
        self.widget = widgets.VBox([
            self.canvas.widget,
            widgets.HBox([self.view, button("Undo", self.canvas.undo, status),
                          button("Redo", self.canvas.redo, status)]),
            widgets.HTML("<small>Paint over the result to bring your own photo back there.</small>"),
            widgets.HBox(progress),
            self.prompt,
            widgets.HBox([self.seed, self.again_button, self.refine_button]),
            self.steps,
            widgets.HBox([self.save_button, self.download]),
        ])

    @property
    def result(self) -> Image.Image | None:
        """The try-on with the restore brush applied, or None before the first one."""
        # tryon_lab.pipelines imports torch and diffusers: a back end has loaded them by now.
        from tryon_lab.pipelines.compositing import restore

        if self.generated is None or self.original is None:
            return None
        mask = self.canvas.mask
        return restore(self.generated, self.original, mask) if mask.any() else self.generated

    def generate(self, photo: Image.Image, mask, full_sampler: bool = False) -> None:
        """Start a try-on of ``photo`` inside ``mask`` (bool, the photo's size) with the screen's
        prompt and seed: in the instant sampler's steps when the back end has it and
        ``full_sampler`` is False, else with the full sampler and the screen's steps."""
        if self.jobs is None:
            raise ConfigError(f"cannot try on: {self.unavailable}")
        if self.jobs.busy:
            raise TryOnInputError("a try-on is already running; cancel it or wait")
        prompt = self.prompt.value.strip()
        if not prompt:
            raise TryOnInputError("write a prompt: what should appear inside the mask?")
        if self.instant and not full_sampler:
            from tryon_lab.pipelines.samplers import SAMPLERS

            job = Job(photo, mask, prompt, SAMPLERS[INSTANT].steps, int(self.seed.value), INSTANT)
        else:
            job = Job(photo, mask, prompt, int(self.steps.value), int(self.seed.value))
        self._last = (photo, mask)
        # The canvas must hold the photo before the worker's first preview arrives.
        self.original, self.generated = photo, None
        self.download.value = ""
        self.view.value = AFTER
        self.canvas.enabled = False
        self.canvas.set_photo(photo)
        self.jobs.start(job)

    def refine(self) -> None:
        """Run the last try-on again with the full sampler and the screen's steps."""
        if self._last is None:
            raise TryOnInputError("try an item on first; Refine runs that try-on again with the full sampler")
        self.generate(*self._last, full_sampler=True)

    def show_preview(self, image: Image.Image) -> None:
        """Show a step preview (called from the worker thread)."""
        self.canvas.show(image)

    def set_result(self, image: Image.Image) -> None:
        """Show a finished try-on and enable the restore brush (called from the worker thread)."""
        self.generated = image
        self.canvas.set_photo(image)
        self.canvas.enabled = True
        self._refresh()

    def save(self, path: str | Path) -> Path:
        """Write the result (restore brush applied) as a PNG file and return its path."""
        result = self.result
        if result is None:
            raise TryOnInputError("there is no result to save yet; try an item on first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        result.save(path, format="PNG")
        return path

    def _save_clicked(self) -> None:
        path = self.save(build_dir("fitting-room") / f"tryon-seed{self.seed.value}.png")
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.download.value = (f'<a download="{html.escape(path.name)}" href="data:image/png;base64,{data}">'
                               "Download</a>")
        self.status.show(f"Saved {path}", "ok")

    def _refresh(self) -> None:
        if self.generated is None or self.original is None:
            return
        before = self.view.value == BEFORE
        self.canvas.enabled = not before
        self.canvas.show(self.original if before else self.result)
