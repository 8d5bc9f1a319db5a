"""``FittingRoom``: the whole app, its three screens behind a tab bar, in one widget."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from tryon_lab.app.backends import PyTorchBackend, TryOnBackend
from tryon_lab.app.executorch_backend import ExecuTorchBackend, source_model_folder
from tryon_lab.app.finetuned import FineTunedGarments
from tryon_lab.app.garments import GarmentsScreen
from tryon_lab.app.items import (
    GalleryItem,
    SamplePhoto,
    catalog_items,
    catalog_samples,
    matplotlib_sample,
    world_items,
    world_samples,
)
from tryon_lab.app.personalize import PersonalizeScreen
from tryon_lab.app.result import ResultScreen
from tryon_lab.app.style import style_widget
from tryon_lab.app.ui import StatusLine
from tryon_lab.data.catalog import CATALOG_JSON
from tryon_lab.data.domain import is_shipped_model
from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.export.errors import BundleError
from tryon_lab.paths import data_dir

GARMENTS, PERSONALIZE, RESULT = "Garments", "Personalize", "Result"


class FittingRoom:
    """The Fitting Room app: Garments, Personalize and Result screens.

    ``pipeline``: None (the shipped mini model, if it is there), a pipeline folder, a loaded
    ``TryOnInpaintPipeline``, or any ``TryOnBackend``. ``bundle``: instead of a pipeline, a phone
    bundle folder from ``tryon-lab export``, run by the ExecuTorch runtime (a bad bundle opens
    the app with the reason on its status line). ``catalog``: None (``data/`` when it holds a
    catalog, else a small gallery rendered by the world) or a catalog folder. ``garments_dir``:
    a folder of DreamBooth LoRA garments (``tryon-lab dreambooth --lora-rank N``), shown first in
    the gallery, marked fine-tuned; choosing one switches to its adapter on the PyTorch model.
    A shipped model knows only the synthetic world: a photo that is no world render gets a note.
    ``steps`` and ``seed`` start the Result screen's controls. Display it as a cell's value.
    """

    def __init__(self, pipeline: Any = None, catalog: str | Path | None = None, *, bundle: str | Path | None = None,
                 garments_dir: str | Path | None = None, steps: int = 20, seed: int = 0) -> None:
        self.backend, problem = resolve_backend(pipeline, bundle)
        items, samples = resolve_catalog(catalog)
        self.finetuned = None
        if garments_dir is not None and self.backend is not None:
            self.finetuned = FineTunedGarments(self.backend, garments_dir)
            items = [*self.finetuned.items, *items]
        self.status = StatusLine()
        self.garments = GarmentsScreen(items, self.status, self._selected)
        self.personalize = PersonalizeScreen(samples, self.status, lambda: self.garments.selected, self.try_on,
                                             world_only=knows_only_the_world(self.backend))
        self.result = ResultScreen(self.backend, self.status, self.try_on, steps=steps, seed=seed,
                                   unavailable=problem or "")
        self._auto_prompt = ""
        if self.result.jobs is not None:
            self.result.jobs.on_busy(lambda busy: setattr(self.personalize.try_on_button, "disabled", busy))
        self.nav = widgets.ToggleButtons(options=[GARMENTS, PERSONALIZE, RESULT], value=GARMENTS)
        self.nav.add_class("tryon-nav")
        self.nav.observe(lambda change: self._show(change.new), "value")
        self.body = widgets.Box(layout=widgets.Layout(width="100%"))
        title = "no model loaded" if self.backend is None else html.escape(self.backend.name)
        self.header = widgets.HTML(f"<h2>Fitting Room</h2><small>{title}</small>")
        self.header.add_class("tryon-title")
        self.widget = widgets.VBox([style_widget(), self.header, self.nav, self.body, self.status.widget])
        self.widget.add_class("tryon-app")
        self._show(GARMENTS)
        if problem:
            self.status.error(problem, "No model")
        else:
            self.status.show("Pick an item to try on." + self._finetuned_note())

    @property
    def jobs(self):
        """The Result screen's ``JobRunner`` (None without a model)."""
        return self.result.jobs

    def show(self, screen: str) -> None:
        """Switch to ``screen``: "Garments", "Personalize" or "Result"."""
        if screen not in self.nav.options:
            raise TryOnInputError(f"unknown screen {screen!r}; choose one of {', '.join(self.nav.options)}")
        self.nav.value = screen

    def try_on(self) -> None:
        """Start generating the selected item on the photo inside the mask; show the Result."""
        item = self.garments.selected
        if item is None:
            raise TryOnInputError("choose an item in Garments first")
        mask = self.personalize.canvas.mask
        if not mask.any():
            raise TryOnInputError("paint where the item goes first (or press Suggest mask)")
        if self.jobs is not None and self.jobs.busy:
            raise TryOnInputError("a try-on is already running; cancel it or wait")
        self._use_adapter(item)
        # Refill the prompt when the item or the photo's room changed; keep the user's edits otherwise.
        prompt = item.prompt(self.personalize.room)
        if prompt != self._auto_prompt:
            self.result.prompt.value = self._auto_prompt = prompt
        # a fine-tuned garment samples with the full sampler: the LCM LoRA was distilled from the base model
        self.result.generate(self.personalize.canvas.photo, mask, full_sampler=item.finetuned)
        self.show(RESULT)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running try-on ends (for scripts and tests); False on timeout."""
        return self.jobs is None or self.jobs.wait(timeout)

    def _selected(self, item: GalleryItem) -> None:
        switched = None
        if self.jobs is None or not self.jobs.busy:  # never swap weights under a running try-on
            switched = self._use_adapter(item)
        adapter = f" (fine-tuned adapter on in {1000 * switched:.0f} ms, no reload)" \
            if item.finetuned and switched is not None else ""
        self.status.show(f"{item.phrase}{adapter}: now paint where it goes, or press Suggest mask.")
        self.show(PERSONALIZE)

    def _use_adapter(self, item: GalleryItem) -> float | None:
        """Switch the model to ``item``'s fine-tuned adapter (or back to the base model); the
        seconds it took, or None when nothing changed."""
        return None if self.finetuned is None else self.finetuned.use(item)

    def _finetuned_note(self) -> str:
        if self.finetuned is None:
            return ""
        count = len(self.finetuned.items)
        note = f" {count} fine-tuned garment{'s' if count != 1 else ''} from {self.finetuned.folder}."
        if self.finetuned.skipped:
            note += f" Not loaded: {'; '.join(self.finetuned.skipped)}."
        return note

    def _show(self, screen: str) -> None:
        pages = {GARMENTS: self.garments, PERSONALIZE: self.personalize, RESULT: self.result}
        self.body.children = [pages[screen].widget]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def resolve_backend(pipeline: Any, bundle: str | Path | None = None) -> tuple[TryOnBackend | None, str | None]:
    """Return ``(backend, None)``, or ``(None, why)`` when the default model is not there yet or
    ``bundle`` cannot be run."""
    if bundle is not None:
        if pipeline is not None:
            raise TryOnInputError("give a pipeline or a bundle, not both")
        try:
            return ExecuTorchBackend.from_bundle(bundle), None
        except BundleError as error:
            return None, str(error)
    if pipeline is None:
        try:
            return PyTorchBackend.from_path(), None
        except ConfigError as error:
            return None, str(error)
    if isinstance(pipeline, (str, Path)):
        return PyTorchBackend.from_path(pipeline), None
    if isinstance(pipeline, TryOnBackend):
        return pipeline, None
    return PyTorchBackend(pipeline), None


def knows_only_the_world(backend: TryOnBackend | None) -> bool:
    """Whether ``backend`` runs a shipped model (``data/models``), trained on the synthetic world alone: in
    PyTorch, or as a phone bundle exported from one."""
    if isinstance(backend, PyTorchBackend):
        folder = backend.pipe.name_or_path
    elif isinstance(backend, ExecuTorchBackend):
        folder = source_model_folder(backend.model.manifest.source_model)
    else:
        return False
    return bool(folder) and is_shipped_model(folder)


def resolve_catalog(catalog: str | Path | None) -> tuple[list[GalleryItem], list[SamplePhoto]]:
    """Return the gallery items and sample photos for ``catalog`` (see ``FittingRoom``)."""
    if catalog is None:
        catalog = data_dir() if (data_dir() / "catalog" / CATALOG_JSON).is_file() else None
    if catalog is None:
        items, samples = world_items(), world_samples()
    else:
        items, samples = catalog_items(catalog), catalog_samples(catalog) or world_samples()
    return items, [*samples, matplotlib_sample()]
