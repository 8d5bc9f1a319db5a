"""A catalog on disk: item images with a JSON index, and sample scenes with their masks.

Layout written by ``write_catalog``::

    <out>/catalog/<item_id>.png      catalog shot of each item
    <out>/catalog/catalog.json       [{id, kind, category, colour, pattern, motif, split, caption_phrase, file}]
    <out>/scenes/<name>.png          a person or room, as the scene before try-on
    <out>/scenes/<name>_mask.png     the region to repaint (white = repaint)
    <out>/scenes/scenes.json         [{name, kind, file, mask, caption, item, original_item}]
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tryon_lab.data.attributes import N_MOTIFS, ItemSpec, all_items, item_field_error
from tryon_lab.data.masks import mask_to_image
from tryon_lab.data.splits import item_split
from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError, WorldError

CATALOG_JSON = "catalog.json"
SCENES_JSON = "scenes.json"
ENTRY_FIELDS = ("id", "kind", "category", "colour", "pattern", "caption_phrase", "file")
# Stepping through the captions with a stride coprime to their number visits every caption once
# and changes category, colour and pattern at every step, so any prefix is well spread.
_SPREAD_STRIDE = 67


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog item as loaded from ``catalog.json``; ``file`` is an absolute path."""

    id: str
    kind: str
    category: str
    colour: str
    pattern: str
    motif: int
    caption_phrase: str
    file: Path

    @property
    def spec(self) -> ItemSpec:
        """The item this entry shows."""
        return ItemSpec(self.kind, self.category, self.colour, self.pattern, self.motif)


def spread_items(kind: str, n: int) -> list[ItemSpec]:
    """Return ``n`` distinct items of ``kind``, deterministically spread over categories,
    colours, patterns and motifs."""
    items = all_items(kind)
    if not 0 <= n <= len(items):
        raise WorldError(f"the world has {len(items)} {kind} items: cannot write {n} (choose 0 to {len(items)})")
    captions = len(items) // N_MOTIFS
    return [items[(k * _SPREAD_STRIDE) % captions * N_MOTIFS + (k // captions + k) % N_MOTIFS] for k in range(n)]


def write_catalog(
    out_dir: str | Path, world: World, n_garments: int = 24, n_products: int = 16, n_scenes: int = 8
) -> Path:
    """Write a catalog of ``n_garments`` + ``n_products`` items and ``n_scenes`` scenes
    (alternately people and rooms) rendered by ``world`` into ``out_dir``; return its path.

    Only the ``catalog/`` and ``scenes/`` subfolders are written; anything else in ``out_dir``
    (e.g. ``data/models``) is kept. Both are rendered into a temporary folder first and then
    swapped in, so a reader never sees half a catalog. An existing ``catalog/`` is replaced only
    if it holds a catalog; anything else raises ``ConfigError``.
    """
    out_dir = Path(out_dir)
    existing = out_dir / "catalog"
    if existing.exists() and any(existing.iterdir()) and not (existing / CATALOG_JSON).is_file():
        raise ConfigError(f"{existing} exists and is not a catalog; refusing to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".catalog-staging.", dir=out_dir))
    try:
        items = spread_items("garment", n_garments) + spread_items("product", n_products)
        _write_items(staging / "catalog", world, items)
        _write_scenes(staging / "scenes", world, n_scenes)
        for name in ("catalog", "scenes"):
            target = out_dir / name
            if target.exists():
                target.rename(staging / f"old-{name}")
            (staging / name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _write_items(folder: Path, world: World, items: list[ItemSpec]) -> None:
    folder.mkdir()
    entries = []
    for spec in items:
        file = f"{spec.item_id}.png"
        world.catalog_image(spec).save(folder / file)
        entries.append(
            {"id": spec.item_id, "kind": spec.kind, "category": spec.category, "colour": spec.colour,
             "pattern": spec.pattern, "motif": spec.motif, "split": item_split(spec),
             "caption_phrase": spec.caption_phrase, "file": file}
        )
    (folder / CATALOG_JSON).write_text(json.dumps(entries, indent=1))


def _write_scenes(folder: Path, world: World, n_scenes: int) -> None:
    folder.mkdir()
    scenes = []
    for k in range(n_scenes):
        kind = "garment" if k % 2 == 0 else "product"
        sample = world.sample(k, "train", kind=kind)
        name = f"{'person' if kind == 'garment' else 'room'}-{k:02d}"
        sample.scene.save(folder / f"{name}.png")
        mask_to_image(sample.shape_mask).save(folder / f"{name}_mask.png")
        scenes.append(
            {"name": name, "kind": kind, "file": f"{name}.png", "mask": f"{name}_mask.png",
             "caption": sample.caption, "item": sample.item.item_id,
             "original_item": sample.attributes["original_item"]}
        )
    (folder / SCENES_JSON).write_text(json.dumps(scenes, indent=1))


def load_catalog(directory: str | Path) -> list[CatalogEntry]:
    """Read and validate ``catalog.json`` in ``directory`` (a catalog folder, or the folder
    ``write_catalog`` made). Raises ``ConfigError`` naming the entry and field at fault."""
    directory = Path(directory)
    folder = directory / "catalog" if (directory / "catalog" / CATALOG_JSON).is_file() else directory
    path = folder / CATALOG_JSON
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no {CATALOG_JSON} in {directory}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not readable JSON: {err}") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{path} must hold a JSON list of items, got {type(raw).__name__}")
    entries, seen = [], set()
    for i, record in enumerate(raw):
        entry = _entry(record, folder, f"{path}: entry {i}")
        if entry.id in seen:
            raise ConfigError(f"{path}: entry {i}: field 'id': duplicate id {entry.id!r}")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def _entry(record: object, folder: Path, where: str) -> CatalogEntry:
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: must be a JSON object, got {type(record).__name__}")
    for name in ENTRY_FIELDS:
        if not isinstance(record.get(name), str) or not record[name]:
            raise ConfigError(f"{where}: field {name!r} must be a non-empty string, got {record.get(name)!r}")
    fields = (record["kind"], record["category"], record["colour"], record["pattern"], record.get("motif"))
    error = item_field_error(*fields)
    if error is not None:
        raise ConfigError(f"{where}: field {error[0]!r}: {error[1]}")
    spec = ItemSpec(*fields)
    if record["id"] != spec.item_id:
        raise ConfigError(
            f"{where}: field 'id': {record['id']!r} does not match its attributes ({spec.item_id!r})"
        )
    file = record["file"]
    if Path(file).name != file or file in (".", ".."):
        raise ConfigError(f"{where}: field 'file': {file!r} must be a plain file name inside {folder}")
    if not (folder / file).is_file():
        raise ConfigError(f"{where}: field 'file': {folder / file} does not exist")
    return CatalogEntry(
        spec.item_id, spec.kind, spec.category, spec.colour, spec.pattern, spec.motif, record["caption_phrase"],
        folder / file,
    )
