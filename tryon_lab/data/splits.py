"""Splits by identity: every item, person and room belongs to exactly one of train, val, test.

Training sees train ids only; val is for tuning; reported results come from test, so they
measure items, people and rooms that no training saw. Splits are fixed functions of the ids
(the same in every world seed), so an id names its split once and for all.

Fractions are 70 / 15 / 15 of each id set (val and test rounded down, train the rest).

Caption twins (the ``N_MOTIFS`` items of one caption) are split *apart*: motifs 0 and 1 of
every caption are train items, and the other motifs are dealt to train, val and test so that
the totals meet the fractions. So every caption is learnt from some train twins, and a val or
test item differs from its train twins only in its motif: what a model gets right on it beyond
the caption is identity, not a new word combination. Retrieving a generated test item among its
twins compares it with distractors from any split (distractors are only compared, never
trained on).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tryon_lab.data.attributes import KINDS, N_MOTIFS, N_PEOPLE, N_ROOMS, ItemSpec, all_items, item_index
from tryon_lab.errors import ConfigError

SPLITS = ("train", "val", "test")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}
TRAIN_TWINS = 2  # motifs below this are train items in every caption
# Key of the split permutations; independent of the world seed on purpose (see above).
_SPLIT_KEY = 20_261_203
_ITEMS, _PEOPLE, _ROOMS = {"garment": 0, "product": 1}, 2, 3


def check_split(split: str) -> str:
    """Return ``split`` if it is one of ``SPLITS``; otherwise raise ``ConfigError``."""
    if split not in SPLIT_CODES:
        raise ConfigError(f"unknown split {split!r}; choose one of {SPLITS}")
    return split


def _deal(n: int, n_held: int, stream: int) -> np.ndarray:
    """Split codes for ``n`` slots: ``n_held`` val and ``n_held`` test, at seeded places."""
    codes = np.zeros(n, dtype=np.int8)
    order = np.random.default_rng([_SPLIT_KEY, stream]).permutation(n)
    codes[order[:n_held]] = SPLIT_CODES["val"]
    codes[order[n_held : 2 * n_held]] = SPLIT_CODES["test"]
    return codes


def _held(n: int) -> int:
    return int(n * FRACTIONS["test"])


@lru_cache(maxsize=None)
def _item_codes(kind: str) -> np.ndarray:
    n_items = len(all_items(kind))
    twins = np.arange(n_items) % N_MOTIFS
    codes = np.zeros(n_items, dtype=np.int8)
    codes[twins >= TRAIN_TWINS] = _deal(int((twins >= TRAIN_TWINS).sum()), _held(n_items), _ITEMS[kind])
    return codes


@lru_cache(maxsize=None)
def _context_codes(kind: str) -> np.ndarray:
    n = N_PEOPLE if kind == "garment" else N_ROOMS
    return _deal(n, _held(n), _PEOPLE if kind == "garment" else _ROOMS)


def item_split(item: ItemSpec) -> str:
    """Return the split ``item`` belongs to."""
    return SPLITS[_item_codes(item.kind)[item_index(item)]]


def person_split(person_id: int) -> str:
    """Return the split person ``person_id`` belongs to."""
    return SPLITS[_context_codes("garment")[person_id]]


def room_split(room_id: int) -> str:
    """Return the split room ``room_id`` belongs to."""
    return SPLITS[_context_codes("product")[room_id]]


@lru_cache(maxsize=None)
def split_items(split: str, kind: str) -> tuple[ItemSpec, ...]:
    """Return the items of ``kind`` in ``split``, in ``all_items`` order."""
    code = SPLIT_CODES[check_split(split)]
    return tuple(item for item, c in zip(all_items(kind), _item_codes(kind)) if c == code)


@lru_cache(maxsize=None)
def context_ids(split: str, kind: str) -> np.ndarray:
    """Return the ids of the contexts of ``kind``'s samples in ``split``: people for garments,
    rooms for products (sorted, read-only)."""
    ids = np.flatnonzero(_context_codes(kind) == SPLIT_CODES[check_split(split)])
    ids.flags.writeable = False
    return ids


def split_sizes() -> dict[str, dict[str, int]]:
    """Return, per split, how many garments, products, people, rooms and twin groups (captions
    with at least one of the split's items) it holds."""
    sizes = {}
    for split in SPLITS:
        counts = {f"{kind}s": len(split_items(split, kind)) for kind in KINDS}
        counts["people"] = len(context_ids(split, "garment"))
        counts["rooms"] = len(context_ids(split, "product"))
        counts["twin_groups"] = len(
            {(i.kind, i.caption_phrase) for kind in KINDS for i in split_items(split, kind)}
        )
        sizes[split] = counts
    return sizes
