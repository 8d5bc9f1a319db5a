"""The synthetic world: deterministic try-on and try-all samples with ground truth.

A garment sample shows a person wearing an original garment (``scene``) and the same person
wearing the reference garment (``target``); a product sample shows a room with an original
product or an empty spot, and the same room with the reference product. Both images are
identical outside ``shape_mask``.

Every sample is a pure function of (seed, split, index, kind). The two splits use disjoint
random streams and disjoint (context, item) combinations: ``is_heldout_combo`` decides, by
arithmetic on the person or room id and the item's index, which combinations only the
held-out split shows.
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
    N_PEOPLE,
    N_ROOMS,
    ItemSpec,
    PersonSpec,
    RoomSpec,
    all_items,
    article,
    item_index,
    person_from_id,
    room_from_id,
)
from tryon_lab.data.masks import bounding_box, box_mask
from tryon_lab.data.render.items import ItemShape, paint_item, product_shape
from tryon_lab.data.render.people import build_body, figure, garment_shape, render_body
from tryon_lab.data.render.rooms import busy_background, person_background, product_box, room_background

SPLITS = ("train", "heldout")
SPLIT_CODES = {"train": 0, "heldout": 1}
KIND_CODES = {"garment": 0, "product": 1}
# Random streams other than the per-sample ones: [seed, stream, ...] never collides with
# [seed, split_code, index, kind_code] because stream codes are not split codes.
_ITEM_STREAM, _CATALOG_STREAM, _INSTANCE_STREAM = 2, 3, 4
HELDOUT_MODULUS = 5
PRODUCT_WITH_ORIGINAL = 0.6
BUSY_REFERENCE = 0.3
WHITE = (255, 255, 255)
CATALOG_CACHE_BYTES = 96 * 2**20  # holds every catalog shot (all items, plain and busy) at 128 px


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


def is_heldout_combo(person_id: int, item: ItemSpec) -> bool:
    """Return whether showing ``item`` on person ``person_id`` (for a product: in room
    ``person_id``) is a held-out combination, which only the ``heldout`` split produces."""
    return (person_id * 7 + item_index(item)) % HELDOUT_MODULUS == 0


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
            raise ValueError(f"seed must be >= 0, got {seed}")
        if resolution < 32:
            raise ValueError(f"resolution must be >= 32 px, got {resolution}")
        self.seed = int(seed)
        self.resolution = int(resolution)
        self._items = {kind: all_items(kind) for kind in KINDS}
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

    def items(self, kind: str | None = None) -> list[ItemSpec]:
        """Return every item (all category x colour x pattern combinations) of ``kind``, or of
        both kinds when None."""
        return all_items(kind)

    @staticmethod
    def kind_of(index: int) -> str:
        """Return the kind ``sample(index)`` shows by default: 3 of every 5 indices are garments."""
        return "garment" if index % 5 < 3 else "product"

    def rng(self, split: str, index: int, kind: str) -> np.random.Generator:
        """Return the random stream of sample ``index`` of ``kind`` in ``split``."""
        return np.random.default_rng([self.seed, _split_code(split), int(index), KIND_CODES[kind]])

    def sample(self, index: int, split: str = "train", kind: str | None = None) -> WorldSample:
        """Return sample ``index`` of ``split``; ``kind`` None picks garment or product from the
        index (60% / 40%)."""
        kind = self.kind_of(index) if kind is None else _check_kind(kind)
        rng = self.rng(split, index, kind)
        context = int(rng.integers(N_PEOPLE if kind == "garment" else N_ROOMS))
        item = self._pick_item(kind, context, split, rng)
        return self._compose(kind, context, item, rng, index, split)

    def person(self, index: int, split: str = "train") -> PersonSpec:
        """Return the person shown by the garment sample ``index`` of ``split``."""
        return person_from_id(int(self.rng(split, index, "garment").integers(N_PEOPLE)))

    def render_person(self, person: PersonSpec, item: ItemSpec) -> tuple[Image.Image, np.ndarray]:
        """Return ``person`` wearing the garment ``item`` as (RGB image, bool mask of the garment)."""
        if item.kind != "garment":
            raise ValueError(f"render_person needs a garment, got {item.item_id}")
        return self._render(person, item)

    def render_room(self, room: RoomSpec, item: ItemSpec | None) -> tuple[Image.Image, np.ndarray]:
        """Return ``room`` with the product ``item`` (or an empty spot when None) as (RGB image,
        bool mask of the product)."""
        if item is not None and item.kind != "product":
            raise ValueError(f"render_room needs a product, got {item.item_id}")
        return self._render(room, item)

    def _render(
        self, context: PersonSpec | RoomSpec, item: ItemSpec | None
    ) -> tuple[Image.Image, np.ndarray]:
        base, shape_of = self._setting(context)
        if item is None:
            return Image.fromarray(base), np.zeros(base.shape[:2], dtype=bool)
        shape = shape_of(item)
        return Image.fromarray(self._paint(base, shape, item)), shape.mask

    def catalog_image(self, spec: ItemSpec, busy: bool = False) -> Image.Image:
        """Return the catalog shot of ``spec``: a flat-lay garment or a product, centred, on
        white or (``busy``) on a cluttered backdrop. The same item always looks the same."""
        return self._catalog(spec, bool(busy)).copy()

    def _render_catalog(self, spec: ItemSpec, busy: bool) -> Image.Image:
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
        return Image.fromarray(self._paint(canvas, shape, spec))

    def instance_samples(self, item: ItemSpec, n_people: int, split: str = "train") -> list[WorldSample]:
        """Return ``n_people`` samples of one ``item`` on different people (for a product: in
        different rooms), each a combination allowed in ``split`` (a DreamBooth instance set)."""
        code = _split_code(split)
        key = [self.seed, _INSTANCE_STREAM, item_index(item), KIND_CODES[item.kind], code]
        rng = np.random.default_rng(key)
        n_contexts = N_PEOPLE if item.kind == "garment" else N_ROOMS
        wanted_heldout = split == "heldout"
        contexts: list[int] = []
        while len(contexts) < n_people:
            context = int(rng.integers(n_contexts))
            if is_heldout_combo(context, item) == wanted_heldout and context not in contexts:
                contexts.append(context)
        return [self._compose(item.kind, c, item, rng, i, split) for i, c in enumerate(contexts)]

    def _pick_item(self, kind: str, context: int, split: str, rng: np.random.Generator) -> ItemSpec:
        items = self._items[kind]
        heldout = (context * 7 + np.arange(len(items))) % HELDOUT_MODULUS == 0
        allowed = np.flatnonzero(heldout if split == "heldout" else ~heldout)
        return items[int(allowed[rng.integers(allowed.size)])]

    def _pick_other(self, item: ItemSpec, rng: np.random.Generator) -> ItemSpec:
        items = self._items[item.kind]
        k = int(rng.integers(len(items) - 1))
        return items[k + (k >= item_index(item))]

    def _compose(
        self, kind: str, context: int, item: ItemSpec, rng: np.random.Generator, index: int, split: str
    ) -> WorldSample:
        original: ItemSpec | None = self._pick_other(item, rng)
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
        target = self._paint(base, item_shape, item)
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
            reference=self.catalog_image(item, busy=busy),
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

    def _paint(self, canvas: np.ndarray, shape: ItemShape, item: ItemSpec) -> np.ndarray:
        # One stream per item, so an item's pattern phase, logo and word are the same in every
        # scene, target and catalog shot.
        rng = np.random.default_rng([self.seed, _ITEM_STREAM, item_index(item), KIND_CODES[item.kind]])
        return paint_item(canvas, shape, item, rng)


def _split_code(split: str) -> int:
    try:
        return SPLIT_CODES[split]
    except KeyError:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}") from None


def _check_kind(kind: str) -> str:
    if kind not in KIND_CODES:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    return kind
