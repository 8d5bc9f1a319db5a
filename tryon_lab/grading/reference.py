"""The reference bundle: the course's own export, whose contract and golden data submissions meet.

Only its manifest and golden arrays are used (its programs are never run): the component specs a
submission must declare, each component's golden inputs and PyTorch outputs, and the golden
try-on (inputs, scheduler, seed and result) that a submission's components must reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tryon_lab.export.contract import ComponentSpec
from tryon_lab.export.errors import BundleError
from tryon_lab.export.golden import load_arrays, split_component_arrays
from tryon_lab.export.manifest import Manifest, read_manifest
from tryon_lab.export.verify import check_files
from tryon_lab.grading.errors import ReferenceBundleError

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Reference:
    """A checked reference bundle: its ``path``, ``manifest`` and component ``specs``."""

    path: Path
    manifest: Manifest

    @property
    def specs(self) -> dict[str, ComponentSpec]:
        """{component: the spec a submission's component must have}."""
        return {name: entry.spec for name, entry in self.manifest.components.items()}

    def golden(self, name: str) -> tuple[Arrays, Arrays]:
        """(inputs, outputs) of component ``name``'s golden call."""
        return split_component_arrays(load_arrays(self.path / self.manifest.components[name].golden))


def load_reference(path: str | Path, check_hashes: bool = True) -> Reference:
    """Read and check the reference bundle at ``path``; ``ReferenceBundleError`` if it is not usable.

    ``check_hashes`` re-hashes every file (a class run does it once, in the parent process).
    """
    path = Path(path)
    if not path.is_dir():
        raise ReferenceBundleError(f"reference bundle {path} is not a folder (unzip it first)")
    try:
        manifest = read_manifest(path)
    except BundleError as err:
        raise ReferenceBundleError(f"reference bundle {path}: {err}") from None
    problems = check_files(path, manifest) if check_hashes else []
    if problems:
        raise ReferenceBundleError(f"reference bundle {path} fails its own manifest: {'; '.join(problems[:5])}")
    return Reference(path, manifest)
