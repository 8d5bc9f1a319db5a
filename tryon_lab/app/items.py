"""What the app offers: gallery items and sample photos, from a catalog folder or the world.

A catalog folder is what ``tryon-lab world render --out DIR`` writes (``DIR/catalog`` and
``DIR/scenes``); without one, the world renders a small gallery and a few scenes on the fly.
Users add their own items (an image, a category and a few words the prompt uses).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from tryon_lab.data.attributes import CATEGORIES, GARMENT_CATEGORIES
from tryon_lab.data.catalog import SCENES_JSON, load_catalog, spread_items
from tryon_lab.data.io import load_image
from tryon_lab.data.world import World, caption_for
from tryon_lab.errors import ConfigError, TryOnInputError

THUMBNAIL = 112
PHOTO_MAX_SIDE = 768  # photos are worked on at most this size: plenty for a 128-512 px model
DEFAULT_ROOM = "living room"  # for a product on a photo whose room is unknown (the prompt stays editable)


@dataclass(frozen=True)
class GalleryItem:
    """One garment or product the user can try on; ``phrase`` names it in the prompt.

    A fine-tuned garment also names its LoRA ``adapter`` and the ``identifier_prompt`` it was
    trained with (e.g. "a photo of a person wearing a sks tee")."""

    id: str
    kind: str
    category: str
    phrase: str
    thumbnail: bytes
    adapter: str | None = None
    identifier_prompt: str | None = None

    @property
    def finetuned(self) -> bool:
        """Whether trying this item on needs its fine-tuned adapter."""
        return self.adapter is not None

    def prompt(self, room: str | None = None) -> str:
        """The prompt for this item: its identifier prompt when fine-tuned, else on a person,
        or (a product) in ``room``."""
        if self.identifier_prompt:
            return self.identifier_prompt
        return caption_for(self.phrase, self.kind, room or DEFAULT_ROOM)


@dataclass(frozen=True)
class SamplePhoto:
    """A photo to start from; ``room`` is the room type when the world rendered a room."""

    name: str
    image: Image.Image
    room: str | None = None


def make_item(image, category: str, phrase: str, item_id: str | None = None) -> GalleryItem:
    """Build a gallery item from any image ``load_image`` reads, a category and its words."""
    if category not in CATEGORIES:
        raise TryOnInputError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
    phrase = " ".join(str(phrase).split())
    if not phrase:
        raise TryOnInputError("describe the item in a few words, e.g. 'green checked tee'")
    kind = "garment" if category in GARMENT_CATEGORIES else "product"
    return GalleryItem(item_id or f"user-{category}-{'-'.join(phrase.lower().split())}", kind, category, phrase,
                       thumbnail_png(load_image(image)))


def uploaded(file: dict) -> io.BytesIO:
    """An ipywidgets ``FileUpload`` entry as a file object named after the user's file (so that
    an error message names it)."""
    stream = io.BytesIO(file["content"].tobytes())
    stream.name = file["name"]
    return stream


def thumbnail_png(image: Image.Image, side: int = THUMBNAIL) -> bytes:
    """PNG bytes of ``image`` fitted into a ``side`` square (aspect kept)."""
    buffer = io.BytesIO()
    ImageOps.contain(image, (side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def work_photo(image) -> Image.Image:
    """Load a photo for the app: RGB, EXIF-oriented, at most ``PHOTO_MAX_SIDE`` on a side."""
    photo = load_image(image)
    return ImageOps.contain(photo, (PHOTO_MAX_SIDE, PHOTO_MAX_SIDE)) if max(photo.size) > PHOTO_MAX_SIDE else photo


def catalog_items(directory: str | Path) -> list[GalleryItem]:
    """The items of a catalog folder (see ``tryon_lab.data.catalog.load_catalog``)."""
    return [make_item(entry.file, entry.category, entry.caption_phrase, entry.id) for entry in load_catalog(directory)]


def world_items(n_garments: int = 12, n_products: int = 6) -> list[GalleryItem]:
    """A gallery rendered by the world: spread over categories, colours and patterns."""
    world = World(seed=0, resolution=THUMBNAIL)
    specs = spread_items("garment", n_garments) + spread_items("product", n_products)
    return [GalleryItem(s.item_id, s.kind, s.category, s.caption_phrase, thumbnail_png(world.catalog_image(s)))
            for s in specs]


def catalog_samples(directory: str | Path) -> list[SamplePhoto]:
    """The scenes of a catalog folder (``scenes/scenes.json``), or [] when it has none."""
    path = Path(directory) / "scenes" / SCENES_JSON
    if not path.is_file():
        return []
    try:
        return [_scene(record, path.parent) for record in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{path} is not a readable scenes index: {error}") from None


def _scene(record: dict, folder: Path) -> SamplePhoto:
    room = None
    if record["kind"] == "product":
        # A room scene's caption ends "... in a <room type>" (see caption_for).
        room = record["caption"].rpartition(" in ")[2].split(" ", 1)[1]
    return SamplePhoto(record["name"], work_photo(folder / Path(record["file"]).name), room)


def world_samples(n: int = 4, resolution: int = 256) -> list[SamplePhoto]:
    """``n`` scenes rendered by the world, alternately people and rooms."""
    world = World(seed=0, resolution=resolution)
    samples = []
    for k in range(n):
        kind = "garment" if k % 2 == 0 else "product"
        sample = world.sample(k, kind=kind)
        name = f"{'person' if kind == 'garment' else 'room'}-{k:02d}"
        samples.append(SamplePhoto(name, sample.scene, sample.attributes.get("room")))
    return samples


def matplotlib_sample() -> SamplePhoto:
    """A real photo shipped with matplotlib (Grace Hopper), for trying the app on a person."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return SamplePhoto("Grace Hopper (photo)", work_photo(handle))
