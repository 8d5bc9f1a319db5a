"""Fine-tuned garments in the app: DreamBooth LoRA adapters as gallery entries.

``FineTunedGarments(backend, folder)`` loads every LoRA garment saved under ``folder`` (what
``tryon-lab dreambooth --lora-rank N --out DIR`` writes, or a folder from diffusers' DreamBooth-LoRA
script, named after its garment: see ``FineTunedGarment.from_folder``) into the PyTorch back end's
pipeline once, through ``GarmentAdapters``, and lists them as gallery items marked fine-tuned. Before a
try-on, ``use(item)`` makes that item's adapter the active one (or, for any other item, goes
back to the base model): a switch of adapter and identifier embedding, never a reload.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tryon_lab.app.items import THUMBNAIL, GalleryItem, thumbnail_png
from tryon_lab.data.io import load_image
from tryon_lab.errors import ConfigError, TryOnInputError

PLACEHOLDER = (236, 236, 242)  # the card's background, for a garment saved without reference.png


class FineTunedGarments:
    """The LoRA garments of ``folder`` loaded side by side on ``backend``'s pipeline.

    ``items``: their gallery entries (sorted by id); ``skipped``: "<id> (why)" for each garment
    that could not be loaded (a full fine-tune, an adapter made for another base model).
    Raises ``ConfigError`` when ``backend`` has no PyTorch pipeline or ``folder`` is not a folder.
    """

    def __init__(self, backend, folder: str | Path) -> None:
        from tryon_lab.training.adapters import GarmentAdapters, finetuned_catalog

        pipe = getattr(backend, "pipe", None)
        if pipe is None:
            raise ConfigError(f"fine-tuned garments are LoRA adapters on the PyTorch model; the {backend.name} back "
                              "end cannot switch them (export a fine-tuned model as its own bundle instead)")
        self.folder = Path(folder)
        self.adapters = GarmentAdapters(pipe)
        self.items: list[GalleryItem] = []
        self.skipped: list[str] = []
        for garment in finetuned_catalog(self.folder):
            if garment.mode != "lora":
                self.skipped.append(f"{garment.id} (a full fine-tune: open it as the model instead)")
                continue
            try:
                item = gallery_item(garment)
                self.adapters.load(garment.adapter)  # named by its id, as the item's adapter says
                self.items.append(item)
            except TryOnInputError as error:  # an adapter for another base model, an unreadable picture
                self.skipped.append(f"{garment.id} ({error})")

    def use(self, item: GalleryItem | None) -> float | None:
        """Make ``item``'s adapter the active one (the base model for an item that is not
        fine-tuned); return the seconds the switch took, or None when nothing changed."""
        wanted = item.adapter if item is not None else None
        if wanted == self.adapters.active:
            return None
        return self.adapters.activate(wanted) if wanted is not None else self.adapters.deactivate()


def gallery_item(garment) -> GalleryItem:
    """The gallery entry of a ``FineTunedGarment`` (from ``finetuned_catalog``): its reference
    picture (or a plain card), identifier phrase (e.g. "sks tee") and prompt, and its adapter."""
    picture = load_image(garment.file) if garment.file is not None else \
        Image.new("RGB", (THUMBNAIL, THUMBNAIL), PLACEHOLDER)
    return GalleryItem(f"finetuned-{garment.id}", garment.kind, garment.category, garment.caption_phrase,
                       thumbnail_png(picture), adapter=garment.id, identifier_prompt=garment.prompt)
