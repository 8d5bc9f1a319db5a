"""The world's vocabulary as data: item categories, colours, patterns, and the people and rooms
that items are shown on.

Everything the renderer and the captions need to name is listed here once. People and rooms are
enumerated: an integer id decodes (mixed radix) into a ``PersonSpec`` or ``RoomSpec``, so that
splits (see ``splits.py``) are plain sets of ids.

An item is (category, colour, pattern, motif): the caption names the first three; the motif, a
small emblem only the pictures show, tells apart the ``N_MOTIFS`` items ("caption twins") that
share a caption.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

from tryon_lab.errors import ConfigError, WorldError

RGB = tuple[int, int, int]

KINDS = ("garment", "product")
GARMENT_CATEGORIES = ("tee", "longsleeve", "tank", "dress", "jacket", "hoodie")
PRODUCT_CATEGORIES = ("mug", "lamp", "vase", "plant", "bag", "shoe", "frame", "chair")
CATEGORIES = GARMENT_CATEGORIES + PRODUCT_CATEGORIES

# Saturated and far apart in RGB, so that a 4x16x16 latent keeps them distinguishable.
COLOURS: dict[str, RGB] = {
    "red": (214, 32, 40),
    "orange": (245, 130, 20),
    "yellow": (250, 214, 30),
    "green": (40, 165, 60),
    "teal": (0, 150, 150),
    "blue": (30, 75, 205),
    "purple": (120, 50, 170),
    "pink": (245, 125, 185),
    "white": (246, 246, 246),
    "black": (30, 30, 32),
}

PATTERNS = ("solid", "stripes", "checks", "dots", "logo", "text")
PATTERN_WORDS = {
    "solid": "plain",
    "stripes": "striped",
    "checks": "checked",
    "dots": "dotted",
    "logo": "logo",
    "text": "lettered",
}

ATTRIBUTE_NAMES = ("category", "colour", "pattern")
# Items per caption: enough twins that telling one from the others is a real retrieval task.
N_MOTIFS = 4

# People. Skin and hair tones are muted so that garment colours stay the saturated ones.
SKIN_TONES: dict[str, RGB] = {
    "porcelain": (247, 222, 200),
    "light": (236, 198, 160),
    "tan": (212, 165, 120),
    "olive": (180, 135, 90),
    "brown": (140, 96, 62),
    "deep": (92, 62, 42),
}
HAIR_COLOURS: dict[str, RGB] = {
    "black": (35, 28, 26),
    "brown": (105, 65, 35),
    "blonde": (222, 190, 120),
    "auburn": (150, 65, 35),
    "grey": (168, 168, 165),
}
HAIR_STYLES = ("short", "long")
BODY_SHAPES = ("slim", "regular", "broad")
ARM_POSES = ("down", "raised", "out", "hip")
BACKGROUNDS = ("solid", "gradient", "wall-with-floor", "stripes-wallpaper")
BACKDROP_TONES: dict[str, RGB] = {
    "stone": (214, 212, 206),
    "sand": (226, 212, 186),
    "mist": (192, 206, 218),
    "sage": (196, 210, 188),
    "lilac": (212, 202, 222),
    "taupe": (182, 172, 162),
}
SHORTS_COLOURS: dict[str, RGB] = {
    "slate": (88, 98, 114),
    "khaki": (176, 156, 116),
    "umber": (112, 82, 62),
}

# Rooms, where products stand on a table or a shelf.
ROOM_TYPES = ("living room", "kitchen", "bedroom", "office")
WALL_TONES: dict[str, RGB] = {
    "cream": (236, 228, 210),
    "grey": (205, 205, 200),
    "blue": (196, 210, 222),
    "green": (204, 216, 196),
}
FLOOR_TONES: dict[str, RGB] = {
    "oak": (170, 130, 88),
    "walnut": (112, 80, 58),
    "tile": (178, 178, 172),
}
SURFACES = ("table", "shelf")
SPOTS = (0.32, 0.5, 0.68)  # horizontal centre of the product spot, as a fraction of the width


@dataclass(frozen=True)
class ItemSpec:
    """One catalog item: a garment or a product in one colour and pattern, with motif number
    ``motif`` (which of the caption's twins it is)."""

    kind: str
    category: str
    colour: str
    pattern: str
    motif: int = 0

    def __post_init__(self) -> None:
        error = item_field_error(self.kind, self.category, self.colour, self.pattern, self.motif)
        if error is not None:
            raise ConfigError(error[1])

    @property
    def item_id(self) -> str:
        """A file-name-safe id, e.g. ``garment-tee-red-stripes-2``."""
        return f"{self.kind}-{self.category}-{self.colour}-{self.pattern}-{self.motif}"

    @property
    def caption_phrase(self) -> str:
        """The words a caption uses for this item, e.g. ``red striped tee``."""
        return f"{self.colour} {PATTERN_WORDS[self.pattern]} {self.category}"


def item_field_error(
    kind: str, category: str, colour: str, pattern: str, motif: object = 0
) -> tuple[str, str] | None:
    """Return (field name, message) for the first invalid field of an item, or None."""
    if kind not in KINDS:
        return "kind", f"kind must be one of {KINDS}, got {kind!r}"
    allowed = GARMENT_CATEGORIES if kind == "garment" else PRODUCT_CATEGORIES
    if category not in allowed:
        return "category", f"category {category!r} is not a {kind} category {allowed}"
    if colour not in COLOURS:
        return "colour", f"colour {colour!r} is not one of {tuple(COLOURS)}"
    if pattern not in PATTERNS:
        return "pattern", f"pattern {pattern!r} is not one of {PATTERNS}"
    if type(motif) is not int or not 0 <= motif < N_MOTIFS:
        return "motif", f"motif must be a whole number in [0, {N_MOTIFS}), got {motif!r}"
    return None


def all_items(kind: str | None = None) -> list[ItemSpec]:
    """Return every (category, colour, pattern, motif) item of ``kind`` (both kinds when None),
    in a fixed order: category, then colour, then pattern, then motif."""
    kinds = KINDS if kind is None else (kind,)
    return [
        ItemSpec(k, category, colour, pattern, motif)
        for k in kinds
        for category in (GARMENT_CATEGORIES if k == "garment" else PRODUCT_CATEGORIES)
        for colour in COLOURS
        for pattern in PATTERNS
        for motif in range(N_MOTIFS)
    ]


def caption_index(item: ItemSpec) -> int:
    """Return the index of ``item``'s caption (category, colour, pattern) among its kind's
    captions; caption twins share it."""
    categories = GARMENT_CATEGORIES if item.kind == "garment" else PRODUCT_CATEGORIES
    colour = tuple(COLOURS).index(item.colour)
    return (categories.index(item.category) * len(COLOURS) + colour) * len(PATTERNS) + PATTERNS.index(
        item.pattern
    )


def item_index(item: ItemSpec) -> int:
    """Return the position of ``item`` in ``all_items(item.kind)``."""
    return caption_index(item) * N_MOTIFS + item.motif


def global_item_index(item: ItemSpec) -> int:
    """Return the position of ``item`` in ``all_items()`` (both kinds: garments first)."""
    garments = len(GARMENT_CATEGORIES) * len(COLOURS) * len(PATTERNS) * N_MOTIFS
    return item_index(item) + (0 if item.kind == "garment" else garments)


def caption_twins(item: ItemSpec) -> list[ItemSpec]:
    """Return the ``N_MOTIFS`` items sharing ``item``'s caption (``item`` included), by motif."""
    return [replace(item, motif=motif) for motif in range(N_MOTIFS)]


def item_from_id(item_id: str) -> ItemSpec:
    """Parse an id such as ``garment-tee-red-stripes-2``; without the motif number
    (``garment-tee-red-stripes``) it names motif 0. Raises ``ConfigError`` naming what is wrong."""
    parts = str(item_id).split("-")
    if len(parts) not in (4, 5):
        raise ConfigError(f"item id {item_id!r} must look like KIND-CATEGORY-COLOUR-PATTERN[-MOTIF], "
                          "e.g. garment-tee-red-stripes-2 (see `tryon-lab world render`)")
    motif = parts[4] if len(parts) == 5 else "0"
    try:
        if not motif.isdigit():
            raise ValueError(f"motif {motif!r} is not a whole number")
        return ItemSpec(*parts[:4], int(motif))
    except ValueError as err:
        raise ConfigError(f"item id {item_id!r}: {err}") from None


def attribute_labels(spec: ItemSpec) -> dict[str, int]:
    """Return the class index of each attribute in ``ATTRIBUTE_NAMES``; categories index the
    union list ``CATEGORIES`` (garments first, then products)."""
    return {
        "category": CATEGORIES.index(spec.category),
        "colour": tuple(COLOURS).index(spec.colour),
        "pattern": PATTERNS.index(spec.pattern),
    }


def num_classes() -> dict[str, int]:
    """Return the number of classes of each attribute in ``ATTRIBUTE_NAMES``."""
    return {"category": len(CATEGORIES), "colour": len(COLOURS), "pattern": len(PATTERNS)}


def article(word: str) -> str:
    """Return ``a`` or ``an`` for the word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class PersonSpec:
    """The look of one person: every field is a key of the vocabulary above."""

    person_id: int
    skin: str
    hair: str
    hair_style: str
    body: str
    pose: str
    background: str
    backdrop: str
    shorts: str


@dataclass(frozen=True)
class RoomSpec:
    """One room with a spot on a table or shelf where a product stands."""

    room_id: int
    room: str
    wall: str
    floor: str
    surface: str
    spot: int  # index into SPOTS


_PERSON_AXES = (
    tuple(SKIN_TONES),
    tuple(HAIR_COLOURS),
    HAIR_STYLES,
    BODY_SHAPES,
    ARM_POSES,
    BACKGROUNDS,
    tuple(BACKDROP_TONES),
    tuple(SHORTS_COLOURS),
)
_ROOM_AXES = (ROOM_TYPES, tuple(WALL_TONES), tuple(FLOOR_TONES), SURFACES, tuple(range(len(SPOTS))))

N_PEOPLE = prod(len(axis) for axis in _PERSON_AXES)
N_ROOMS = prod(len(axis) for axis in _ROOM_AXES)


def _decode(value: int, axes: tuple[tuple, ...], limit: int, name: str) -> list:
    if not 0 <= value < limit:
        raise WorldError(f"{name} must be in [0, {limit}), got {value}")
    fields = []
    for axis in axes:
        value, digit = divmod(value, len(axis))
        fields.append(axis[digit])
    return fields


def person_from_id(person_id: int) -> PersonSpec:
    """Decode ``person_id`` in ``[0, N_PEOPLE)`` into a ``PersonSpec`` (skin varies fastest)."""
    return PersonSpec(person_id, *_decode(person_id, _PERSON_AXES, N_PEOPLE, "person_id"))


def room_from_id(room_id: int) -> RoomSpec:
    """Decode ``room_id`` in ``[0, N_ROOMS)`` into a ``RoomSpec`` (room type varies fastest)."""
    return RoomSpec(room_id, *_decode(room_id, _ROOM_AXES, N_ROOMS, "room_id"))
