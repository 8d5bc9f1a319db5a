"""The Personalization screen: your photo, the mask you paint on it, and a suggested mask."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets

from tryon_lab.app.canvas import BRUSH, ERASER, MaskCanvas
from tryon_lab.app.items import GalleryItem, SamplePhoto, uploaded, work_photo
from tryon_lab.app.ui import LABELS, StatusLine, button
from tryon_lab.data.attributes import article
from tryon_lab.data.domain import looks_like_world_render, outside_world_note
from tryon_lab.data.suggest import suggest_mask
from tryon_lab.errors import TryOnInputError


class PersonalizeScreen:
    """Pick a sample or upload a photo, then paint where the item goes.

    ``item()`` returns the selected gallery item (for the suggested mask); the "Try it on"
    button calls ``on_try_on()``. ``world_only``: the model knows only the synthetic world, so a
    photo that is no world render gets a note on the status line.
    """

    def __init__(self, samples: Sequence[SamplePhoto], status: StatusLine,
                 item: Callable[[], GalleryItem | None], on_try_on: Callable[[], None],
                 canvas_size: tuple[int, int] = (336, 420), world_only: bool = False) -> None:
        self.samples, self.status, self.item, self.world_only = list(samples), status, item, world_only
        self.room: str | None = None
        self.canvas = MaskCanvas(*canvas_size)
        self.canvas.on_change(lambda _: self._update())
        self.picker = widgets.Dropdown(options=[(s.name, k) for k, s in enumerate(self.samples)], value=None,
                                       description="Photo", style=LABELS,
                                       layout=widgets.Layout(width="auto", flex="1 1 auto"))
        self.picker.observe(status.guard(lambda change: self.use_sample(change.new)), "value")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                         layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.upload.observe(status.guard(self._uploaded), "value")
        self.tool = widgets.ToggleButtons(options=[("Brush", BRUSH), ("Eraser", ERASER)], value=BRUSH,
                                          style={"button_width": "80px"})
        self.tool.observe(lambda change: setattr(self.canvas, "tool", change.new), "value")
        self.size = widgets.IntSlider(value=self.canvas.brush_size, min=4, max=48, description="Size", style=LABELS)
        self.size.observe(lambda change: setattr(self.canvas, "brush_size", change.new), "value")
        self.undo_button = button("Undo", self.canvas.undo, status)
        self.redo_button = button("Redo", self.canvas.redo, status)
        self.info = widgets.HTML()
        self.info.add_class("tryon-mask-info")
        self.try_on_button = button("Try it on", on_try_on, status, style="primary", css_class="tryon-tryon")
        self.try_on_button.add_class("tryon-wide")
        self.widget = widgets.VBox([
            widgets.HBox([self.picker, self.upload]),
            self.canvas.widget,
            widgets.HBox([self.tool, button("Suggest mask", self.suggest, status, css_class="tryon-suggest",
                                             tooltip="Start from where the chosen item usually goes")]),
            self.size,
            widgets.HBox([self.undo_button, self.redo_button, button("Clear", self.canvas.clear, status), self.info]),
            self.try_on_button,
        ])
        if self.samples:
            self.picker.value = 0
        self._update()

    def use_photo(self, image, room: str | None = None) -> None:
        """Start over on a photo (anything ``load_image`` reads); ``room`` names a room's type."""
        photo = work_photo(image)
        self.canvas.set_photo(photo)
        self.room = room
        self._update()
        if self.world_only and not looks_like_world_render(photo):
            self.status.show(outside_world_note("This photo"))

    def use_sample(self, index: int | None) -> None:
        """Start over on sample photo number ``index``."""
        if index is not None:
            sample = self.samples[index]
            self.use_photo(sample.image, sample.room)

    def suggest(self) -> None:
        """Replace the mask by the usual region of the selected item's category (undoable)."""
        item = self.item()
        if item is None:
            raise TryOnInputError("choose an item in Garments first; the suggestion depends on its category")
        self.canvas.set_mask(suggest_mask(self.canvas.photo, item.category))
        self.status.show(f"Suggested where {article(item.category)} {item.category} goes: brush or erase to adjust it.")

    def _uploaded(self, change) -> None:
        if change.new:
            self.use_photo(uploaded(change.new[0]))
            self.picker.value = None
            self.upload.value = ()  # so that choosing the same file again loads it again

    def _update(self) -> None:
        self.undo_button.disabled = not self.canvas.can_undo
        self.redo_button.disabled = not self.canvas.can_redo
        self.info.value = f"Mask: {100 * self.canvas.coverage:.1f}%"
