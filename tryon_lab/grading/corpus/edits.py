"""Edits that make a corpus submission from a bundle folder: copy it, change it, and leave its manifest
honest (re-hashed and re-measured) or lying."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tryon_lab.export.bundle import file_hashes, folder_bytes
from tryon_lab.export.manifest import Manifest, read_manifest, write_manifest

Edit = Callable[[Manifest], Manifest]


def copy_bundle(bundle: Path, target: Path) -> Path:
    """Copy the folder ``bundle`` to ``target`` (links as links); return ``target``."""
    shutil.copytree(bundle, target, symlinks=True)
    return target


def edit_manifest(folder: Path, edit: Edit) -> None:
    """Replace ``folder``'s manifest with ``edit`` of it, as it is (a lie stays a lie)."""
    write_manifest(folder, edit(read_manifest(folder)))


def refresh_manifest(folder: Path, edit: Edit | None = None) -> None:
    """``edit`` ``folder``'s manifest (if given), then re-hash its files and re-measure its packages into
    it: an honest manifest of whatever the folder holds."""
    manifest = read_manifest(folder)
    manifest = edit(manifest) if edit else manifest
    components = {}
    for name, entry in manifest.components.items():
        if entry.coreml is not None:
            packages = tuple(replace(p, size_bytes=folder_bytes(folder / p.path) if (folder / p.path).exists() else 0)
                             for p in entry.coreml.packages)
            entry = replace(entry, coreml=replace(entry.coreml, packages=packages,
                                                  size_bytes=sum(p.size_bytes for p in packages)))
        components[name] = entry
    write_manifest(folder, replace(manifest, components=components, files=file_hashes(folder)))


def changed(bundle: Path, target: Path, change: Callable[[Path], None], honest: bool = True) -> None:
    """A folder submission: ``bundle`` copied to ``target``, ``change``d, its manifest refreshed if ``honest``."""
    copy_bundle(bundle, target)
    change(target)
    if honest:
        refresh_manifest(target)


def lying(bundle: Path, target: Path, edit: Edit) -> None:
    """A folder submission: ``bundle`` copied to ``target`` with its manifest ``edit``ed, then refreshed
    (so only the edit is untrue)."""
    copy_bundle(bundle, target)
    refresh_manifest(target, edit)


def component_changed(manifest: Manifest, name: str, **changes) -> Manifest:
    """``manifest`` with component ``name``'s entry changed as ``dataclasses.replace`` would."""
    return replace(manifest, components={**manifest.components,
                                         name: replace(manifest.components[name], **changes)})


def tensor_changed(spec, side: str, index: int, **changes):
    """``spec`` with tensor ``index`` of ``side`` (inputs or outputs) changed."""
    tensors = list(getattr(spec, side))
    tensors[index] = replace(tensors[index], **changes)
    return replace(spec, **{side: tuple(tensors)})
