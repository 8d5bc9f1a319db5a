"""The Garments screen: a gallery of catalog and fine-tuned items by category, and adding your own item."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import ipywidgets as widgets

from tryon_lab.app.items import GalleryItem, make_item, uploaded
from tryon_lab.app.ui import LABELS, StatusLine, button, section
from tryon_lab.data.attributes import CATEGORIES
from tryon_lab.errors import TryOnInputError

ALL = "all"
FINETUNED = "finetuned"  # the filter value that shows fine-tuned garments only


class GarmentsScreen:
    """A gallery of ``items``; clicking one selects it and calls ``on_select(item)``."""

    def __init__(self, items: Iterable[GalleryItem], status: StatusLine,
                 on_select: Callable[[GalleryItem], None]) -> None:
        self.status, self.on_select = status, on_select
        self.items: dict[str, GalleryItem] = {}
        self.selected: GalleryItem | None = None
        self._cards: dict[str, widgets.VBox] = {}
        self.filter = widgets.Dropdown(description="Show", style=LABELS)
        self.filter.observe(lambda _: self._show_cards(), "value")
        self.grid = widgets.GridBox(layout=widgets.Layout(grid_template_columns="repeat(3, 1fr)", grid_gap="6px",
                                                          width="100%"))
        self.grid.add_class("tryon-gallery")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Item photo")
        self.category = widgets.Dropdown(options=CATEGORIES, value="tee", description="Category", style=LABELS)
        self.phrase = widgets.Text(placeholder="e.g. green checked tee", description="Words", style=LABELS)
        self.add_button = button("Add to gallery", self._add_uploaded, status, css_class="tryon-add")
        for item in items:
            self._register(item)
        self._update_filter()
        self.widget = widgets.VBox([
            self.filter, self.grid,
            section("Add your own item"),
            widgets.HBox([self.upload, self.add_button]), self.category, self.phrase,
        ])

    def select(self, item_id: str) -> GalleryItem:
        """Select the item ``item_id``, highlight its card and call ``on_select``."""
        if item_id not in self.items:
            raise TryOnInputError(f"no item {item_id!r} in the gallery")
        if self.selected is not None:
            self._cards[self.selected.id].remove_class("tryon-selected")
        self.selected = self.items[item_id]
        self._cards[item_id].add_class("tryon-selected")
        self.on_select(self.selected)
        return self.selected

    def add_item(self, image, category: str, phrase: str) -> GalleryItem:
        """Add an item (any image ``load_image`` reads) to the gallery and select it.

        ``phrase`` is how prompts name it, e.g. "green checked tee". DreamBooth LoRA garments
        come in with their adapters instead: ``FittingRoom(garments_dir=...)``."""
        item = make_item(image, category, phrase)
        self._register(item)
        self._update_filter()
        self.filter.value = ALL
        return self.select(item.id)

    def _add_uploaded(self) -> None:
        if not self.upload.value:
            raise TryOnInputError("choose an image of your item first")
        self.add_item(uploaded(self.upload.value[0]), self.category.value, self.phrase.value)
        self.upload.value = ()
        self.phrase.value = ""

    def _register(self, item: GalleryItem) -> None:
        self.items[item.id] = item
        image = widgets.Image(value=item.thumbnail, format="png", layout=widgets.Layout(width="96px", height="96px"))
        pick = widgets.Button(description=item.phrase, tooltip=item.id)
        pick.on_click(self.status.guard(lambda _: self.select(item.id)))
        parts = [image, pick]
        if item.finetuned:
            badge = widgets.HTML("fine-tuned")
            badge.add_class("tryon-badge")
            parts.insert(0, badge)
        card = widgets.VBox(parts)
        card.add_class("tryon-card")
        if item.finetuned:
            card.add_class("tryon-finetuned")
        self._cards[item.id] = card

    def _update_filter(self) -> None:
        present = [c for c in CATEGORIES if any(i.category == c for i in self.items.values())]
        kinds = [(label, kind) for label, kind in (("Garments", "garment"), ("Products", "product"))
                 if any(i.kind == kind for i in self.items.values())]
        if any(i.finetuned for i in self.items.values()):
            kinds.insert(0, ("Fine-tuned", FINETUNED))
        current = self.filter.value or ALL
        self.filter.options = [("All items", ALL), *kinds, *((c, c) for c in present)]
        self.filter.value = current if current in (value for _, value in self.filter.options) else ALL
        self._show_cards()

    def _show_cards(self) -> None:
        wanted = self.filter.value or ALL
        self.grid.children = [self._cards[i.id] for i in self.items.values()
                              if wanted in (ALL, i.kind, i.category) or (wanted == FINETUNED and i.finetuned)]
