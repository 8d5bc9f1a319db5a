"""The synthetic world: deterministic try-on and try-all samples with ground truth.

A garment sample shows a person wearing an original garment (``scene``) and the same person
wearing the reference garment (``target``); a product sample shows a room with an original
product or an empty spot, and the same room with the reference product. Both images are
identical outside ``shape_mask``.

Every sample is a pure function of (seed, split, index, kind). The splits (train, val, test;
see ``splits.py``) use disjoint random streams, and a sample of a split shows only that
split's items, people and rooms, in the scene as in the target.

Every item carries a motif (see ``render.items.Motif``) in its scenes and its catalog shot; the
caption does not name it, so only pictures tell an item from its caption twins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from tryon_lab.data.attributes import (
    BACKDROP_TONES,
    KINDS,
    ItemSpec,
    PersonSpec,
    RoomSpec,
    all_items,
    article,
    caption_index,
    item_index,
    person_from_id,
    room_from_id,
)
from tryon_lab.data.masks import bounding_box, box_mask
from tryon_lab.data.render.items import ItemShape, Motif, motif_designs, paint_item, product_shape
from tryon_lab.data.render.people import build_body, figure, garment_shape, render_body
from tryon_lab.data.render.rooms import busy_background, person_background, product_box, room_background
from tryon_lab.data.splits import SPLIT_CODES, SPLITS, check_split, context_ids, split_items
from tryon_lab.errors import WorldError

__all__ = ["SPLITS", "SPLIT_CODES", "World", "WorldSample", "caption_for"]

KIND_CODES = {"garment": 0, "product": 1}
# Random streams other than the per-sample ones: [seed, stream, ...] never collides with
# [seed, split_code, index, kind_code] because stream codes are not split codes (0-2).
_CATALOG_STREAM, _INSTANCE_STREAM, _ITEM_STREAM, _MOTIF_STREAM = 3, 4, 12, 13
PRODUCT_WITH_ORIGINAL = 0.6
BUSY_REFERENCE = 0.3
WHITE = (255, 255, 255)
CATALOG_CACHE_BYTES = 192 * 2**20  # holds every train item's catalog shots (plain and busy) at 128 px


@dataclass
class WorldSample:
    """One sample. ``scene`` and ``target`` are identical outside ``shape_mask`` (the union of
    the original and the reference item's pixels); ``item_mask`` is the reference item's own
    pixels in ``target``; ``box_mask`` is the bounding box of ``shape_mask``."""

    scene: Image.Image
    target: Image.Image
    shape_mask: np.ndarray
    box_mask: np.ndarray
    item_mask: np.ndarray
    reference: Image.Image
    caption: str
    item: ItemSpec
    attributes: dict[str, Any] = field(default_factory=dict)
    kind: str = "garment"
    index: int = 0
    split: str = "train"


def caption_for(phrase: str, kind: str, room: str | None = None) -> str:
    """Return the caption of a sample showing the item named ``phrase``: on a person, or for a
    product in ``room``."""
    if kind == "garment":
        return f"a photo of a person wearing {article(phrase)} {phrase}"
    return f"a photo of {article(phrase)} {phrase} in {article(room or '')} {room}"


class World:
    """The deterministic synthetic world at ``resolution`` px (square images)."""

    def __init__(self, seed: int = 0, resolution: int = 128) -> None:
        if seed < 0:
            raise WorldError(f"seed must be >= 0, got {seed}")
        if resolution < 32:
            raise WorldError(f"resolution must be >= 32 px, got {resolution}")
        self.seed = int(seed)
        self.resolution = int(resolution)
        self._motifs = lru_cache(maxsize=None)(self._motif_designs)
        # Every sample shows its item's catalog shot; rendering each once halves the time per sample.
        entries = max(CATALOG_CACHE_BYTES // (3 * self.resolution**2), 1)
        self._catalog = lru_cache(maxsize=entries)(self._render_catalog)

    def __getstate__(self) -> dict[str, int]:
        # DataLoader workers started by "spawn" (macOS, Windows) receive the world pickled: the
        # seed and resolution define it; the cache is rebuilt.
        return {"seed": self.seed, "resolution": self.resolution}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"World(seed={self.seed}, resolution={self.resolution})"

    def items(self, kind: str | None = None, split: str | None = None) -> list[ItemSpec]:
        """Return every item (all category x colour x pattern x motif combinations) of ``kind``,
        or of both kinds when None; only those of ``split`` unless it is None."""
        if split is None:
            return all_items(kind)
        return [item for k in ((kind,) if kind else KINDS) for item in split_items(split, k)]

    @staticmethod
    def kind_of(index: int) -> str:
        """Return the kind ``sample(index)`` shows by default: 3 of every 5 indices are garments."""
        return "garment" if index % 5 < 3 else "product"

    def rng(self, split: str, index: int, kind: str) -> np.random.Generator:
        """Return the random stream of sample ``index`` of ``kind`` in ``split``."""
        return np.random.default_rng([self.seed, _split_code(split), int(index), KIND_CODES[kind]])

    def sample(self, index: int, split: str = "train", kind: str | None = None, motif: Motif | None = None
               ) -> WorldSample:
        """Return sample ``index`` of ``split``; ``kind`` None picks garment or product from the
        index (60% / 40%). ``motif`` replaces the item's own motif in the target and catalog shot
        (the judge's motif reader trains on such samples); the rest of the sample is unchanged."""
        kind, rng, context, item = self._draw(index, split, kind)
        return self._compose(kind, context, item, rng, index, split, motif)

    def item(self, index: int, split: str = "train", kind: str | None = None) -> ItemSpec:
        """Return the item ``sample(index, split, kind)`` shows, without rendering it."""
        return self._draw(index, split, kind)[3]

    def _draw(self, index: int, split: str, kind: str | None) -> tuple[str, np.random.Generator, int, ItemSpec]:
        kind = self.kind_of(index) if kind is None else _check_kind(kind)
        rng = self.rng(split, index, kind)
        context = _pick_context(kind, split, rng)
        items = split_items(split, kind)
        return kind, rng, context, items[int(rng.integers(len(items)))]

    def person(self, index: int, split: str = "train") -> PersonSpec:
        """Return the person shown by the garment sample ``index`` of ``split``."""
        return person_from_id(_pick_context("garment", split, self.rng(split, index, "garment")))

    def render_person(self, person: PersonSpec, item: ItemSpec) -> tuple[Image.Image, np.ndarray]:
        """Return ``person`` wearing the garment ``item`` as (RGB image, bool mask of the garment)."""
        if item.kind != "garment":
            raise WorldError(f"render_person needs a garment, got {item.item_id}")
        return self._render(person, item)

    def render_room(self, room: RoomSpec, item: ItemSpec | None) -> tuple[Image.Image, np.ndarray]:
        """Return ``room`` with the product ``item`` (or an empty spot when None) as (RGB image,
        bool mask of the product)."""
        if item is not None and item.kind != "product":
            raise WorldError(f"render_room needs a product, got {item.item_id}")
        return self._render(room, item)

    def _render(
        self, context: PersonSpec | RoomSpec, item: ItemSpec | None
    ) -> tuple[Image.Image, np.ndarray]:
        base, shape_of = self._setting(context)
        if item is None:
            return Image.fromarray(base), np.zeros(base.shape[:2], dtype=bool)
        shape = shape_of(item)
        return Image.fromarray(self._paint(base, shape, item)), shape.mask

    def catalog_image(self, spec: ItemSpec, busy: bool = False, motif: Motif | None = None) -> Image.Image:
        """Return the catalog shot of ``spec``: a flat-lay garment or a product, centred, on
        white or (``busy``) on a cluttered backdrop. The same item always looks the same;
        ``motif`` paints another motif in place of its own."""
        if motif is not None:
            return self._render_catalog(spec, bool(busy), motif)
        return self._catalog(spec, bool(busy)).copy()

    def _render_catalog(self, spec: ItemSpec, busy: bool, motif: Motif | None = None) -> Image.Image:
        size = self.resolution
        if spec.kind == "garment":
            shape = garment_shape(figure("regular", "flat", size, scale=1.3), spec.category)
        else:
            box = (0.18 * size, 0.1 * size, 0.82 * size, 0.9 * size)
            shape = product_shape(spec.category, box, size)
        top, left, bottom, right = bounding_box(shape.mask)
        shape = shape.shifted(int(round((size - left - right) / 2)), int(round((size - top - bottom) / 2)))
        if busy:
            rng = np.random.default_rng([self.seed, _CATALOG_STREAM, item_index(spec), KIND_CODES[spec.kind]])
            canvas = busy_background(rng, size)
        else:
            canvas = np.full((size, size, 3), WHITE, dtype=np.uint8)
        return Image.fromarray(self._paint(canvas, shape, spec, motif))

    def instance_samples(self, item: ItemSpec, n_people: int, split: str = "train") -> list[WorldSample]:
        """Return ``n_people`` samples of one ``item`` (of any split) on different people of
        ``split`` (for a product: in different rooms), e.g. a DreamBooth instance set; the
        items they replace are ``split``'s."""
        key = [self.seed, _INSTANCE_STREAM, item_index(item), KIND_CODES[item.kind], _split_code(split)]
        rng = np.random.default_rng(key)
        ids = context_ids(split, item.kind)
        contexts = rng.choice(ids.size, size=n_people, replace=False)
        return [self._compose(item.kind, int(ids[c]), item, rng, i, split) for i, c in enumerate(contexts)]

    def _pick_other(self, item: ItemSpec, split: str, rng: np.random.Generator) -> ItemSpec:
        items = split_items(split, item.kind)
        while (other := items[int(rng.integers(len(items)))]) == item:
            pass
        return other

    def _compose(
        self, kind: str, context: int, item: ItemSpec, rng: np.random.Generator, index: int, split: str,
        motif: Motif | None = None,
    ) -> WorldSample:
        original: ItemSpec | None = self._pick_other(item, split, rng)
        busy = False
        if kind == "garment":
            setting: PersonSpec | RoomSpec = person_from_id(context)
            caption = caption_for(item.caption_phrase, kind)
        else:
            setting = room_from_id(context)
            caption = caption_for(item.caption_phrase, kind, setting.room)
            if rng.random() >= PRODUCT_WITH_ORIGINAL:
                original = None  # an empty spot: try-all adds a product rather than swapping one
            busy = bool(rng.random() < BUSY_REFERENCE)
        base, shape_of = self._setting(setting)
        item_shape = shape_of(item)
        target = self._paint(base, item_shape, item, motif)
        shape_mask = item_shape.mask
        scene = base
        if original is not None:
            original_shape = shape_of(original)
            scene = self._paint(base, original_shape, original)
            shape_mask = shape_mask | original_shape.mask
        attributes = {
            "category": item.category,
            "colour": item.colour,
            "pattern": item.pattern,
            "motif": item.motif,
            "item_id": item.item_id,
            "original_item": None if original is None else original.item_id,
            "reference_busy": busy,
            **vars(setting),
        }
        return WorldSample(
            scene=Image.fromarray(scene),
            target=Image.fromarray(target),
            shape_mask=shape_mask,
            box_mask=box_mask(bounding_box(shape_mask), (self.resolution, self.resolution)),
            item_mask=item_shape.mask,
            reference=self.catalog_image(item, busy=busy, motif=motif),
            caption=caption,
            item=item,
            attributes=attributes,
            kind=kind,
            index=int(index),
            split=split,
        )

    def _setting(self, context: PersonSpec | RoomSpec) -> tuple[np.ndarray, Callable[[ItemSpec], ItemShape]]:
        """The scene without an item (HxWx3 uint8) and the function giving an item's shape in it."""
        size = self.resolution
        if isinstance(context, PersonSpec):
            fig = figure(context.body, context.pose, size)
            body = build_body(context, fig)
            backdrop = person_background(context.background, BACKDROP_TONES[context.backdrop], size)
            return render_body(body, backdrop), lambda spec: garment_shape(fig, spec.category, body)
        box = product_box(context, size)
        return room_background(context, size), lambda spec: product_shape(spec.category, box, size)

    def motif(self, item: ItemSpec) -> Motif:
        """Return the motif that tells ``item`` from its caption twins."""
        return self._motifs(item.kind, caption_index(item), item.colour)[item.motif]

    def _motif_designs(self, kind: str, caption: int, colour: str) -> tuple[Motif, ...]:
        return motif_designs(colour, np.random.default_rng([self.seed, _MOTIF_STREAM, caption, KIND_CODES[kind]]))

    def _paint(self, canvas: np.ndarray, shape: ItemShape, item: ItemSpec, motif: Motif | None = None) -> np.ndarray:
        # One stream per caption, so an item's pattern phase, logo and word are the same in every
        # scene, target and catalog shot, and caption twins differ in their motif only.
        key = [self.seed, _ITEM_STREAM, caption_index(item), KIND_CODES[item.kind]]
        return paint_item(canvas, shape, item, np.random.default_rng(key), motif or self.motif(item))


def _split_code(split: str) -> int:
    return SPLIT_CODES[check_split(split)]


def _pick_context(kind: str, split: str, rng: np.random.Generator) -> int:
    ids = context_ids(split, kind)
    return int(ids[rng.integers(ids.size)])


def _check_kind(kind: str) -> str:
    if kind not in KIND_CODES:
        raise WorldError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return kind
