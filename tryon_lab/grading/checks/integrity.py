"""The manifest check: manifest.json parses, and every file's hash and every stated size hold on disk."""

from __future__ import annotations

from pathlib import Path

from tryon_lab.export.bundle import folder_bytes
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import Manifest, ManifestError
from tryon_lab.grading.checks.base import MAX_LISTED, Context, Outcome, check, verdict


@check("manifest", "manifest.json parses; every file's sha256 and size match it; its paths stay inside")
def check_manifest(context: Context) -> Outcome:
    """Parse manifest.json (setting ``context.manifest``); fail on any field, hash, size or path it gets wrong."""
    from tryon_lab.export.verify import check_files

    try:
        manifest = context.parse_manifest()
    except BundleError as err:
        details = err.details() if isinstance(err, ManifestError) else []
        return Outcome(False, context.relative(str(err)), [context.relative(d) for d in details[:MAX_LISTED]])
    context.manifest = manifest
    problems = check_files(context.root, manifest) + _size_problems(context.root, manifest)
    return verdict(problems, f"{len(manifest.files)} files: every sha256 and size matches")


def _size_problems(root: Path, manifest: Manifest) -> list[str]:
    """Sizes the manifest states (files' bytes, packages' and programs' size_bytes) against the disk."""
    problems = []
    for relative, entry in manifest.files.items():
        path = root / relative
        if path.is_file() and entry.bytes != path.stat().st_size:
            problems.append(f"{relative}: the manifest says {entry.bytes} bytes, the file has {path.stat().st_size}")
    for name, entry in manifest.components.items():
        if entry.coreml is not None:
            total = 0
            for package in entry.coreml.packages:
                path = root / package.path
                actual = folder_bytes(path) if path.exists() else 0
                total += actual
                if package.size_bytes != actual:
                    problems.append(f"{package.path}: size_bytes {package.size_bytes} in the manifest, {actual} on disk")
            if entry.coreml.size_bytes != total:
                problems.append(f"component {name}: coreml size_bytes {entry.coreml.size_bytes}, packages total {total}")
        if entry.executorch is not None:
            path = root / entry.executorch.path
            actual = path.stat().st_size if path.is_file() else 0
            if entry.executorch.size_bytes != actual:
                problems.append(f"{entry.executorch.path}: size_bytes {entry.executorch.size_bytes}, {actual} on disk")
    return problems
