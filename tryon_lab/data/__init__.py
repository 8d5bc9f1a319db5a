"""Data: the synthetic world (people, garments, products, rooms) with ground truth, PyTorch
datasets over it, the on-disk catalog, hardened image and mask input, mask tools, and a
VITON-HD / DressCode folder reader.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from tryon_lab.data.attributes import (
    ItemSpec,
    PersonSpec,
    RoomSpec,
    attribute_labels,
    caption_twins,
    item_from_id,
    num_classes,
)
from tryon_lab.data.catalog import CatalogEntry, load_catalog, write_catalog
from tryon_lab.data.io import fit_image, fit_mask, load_image, load_mask, open_image
from tryon_lab.data.masks import (
    HINT_LAYOUTS,
    add_stroke,
    bounding_box,
    box_mask,
    content_box,
    dilate,
    erode,
    feather,
    largest_rectangle,
    make_collage,
    mask_to_image,
    overlay,
    stroke_mask,
)
from tryon_lab.data.splits import SPLITS, item_split, person_split, room_split, split_items, split_sizes
from tryon_lab.data.viton import VitonFolder
from tryon_lab.data.world import World, WorldSample

# The datasets import torch, which takes seconds; they load on first use so that image input
# and the world stay quick to import.
_LAZY = {
    name: "tryon_lab.data.datasets"
    for name in ("InpaintDataset", "DreamBoothDataset", "DTCPairDataset", "ItemCropDataset")
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CatalogEntry",
    "DTCPairDataset",
    "DreamBoothDataset",
    "InpaintDataset",
    "HINT_LAYOUTS",
    "ItemCropDataset",
    "ItemSpec",
    "PersonSpec",
    "RoomSpec",
    "SPLITS",
    "VitonFolder",
    "World",
    "WorldSample",
    "add_stroke",
    "attribute_labels",
    "bounding_box",
    "box_mask",
    "caption_twins",
    "content_box",
    "dilate",
    "erode",
    "feather",
    "fit_image",
    "fit_mask",
    "item_from_id",
    "item_split",
    "largest_rectangle",
    "load_catalog",
    "load_image",
    "load_mask",
    "make_collage",
    "mask_to_image",
    "num_classes",
    "open_image",
    "overlay",
    "person_split",
    "room_split",
    "split_items",
    "split_sizes",
    "stroke_mask",
    "write_catalog",
]
