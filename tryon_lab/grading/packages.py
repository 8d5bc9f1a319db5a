"""Read a submission's Core ML package as data only: its own manifest first, then the program.

coremltools finds a package's model and weights through ``Manifest.json`` item paths, so those
are checked here before coremltools sees the package: every path must stay inside the package's
``Data`` folder and name what is there. The program is then parsed with coremltools (protobuf
plus weight blobs; nothing is compiled or executed) through ``tryon_lab.export.mil``, and its
weights are read back: bits per weight (``palettize.weight_report``) and non-finite values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tryon_lab.export.palettize import WeightReport
from tryon_lab.grading.errors import PackageError

MAX_PACKAGE_MANIFEST_BYTES = 1 << 20
MODEL_FILE = "Data/com.apple.CoreML/model.mlmodel"
WEIGHTS_FILE = "Data/com.apple.CoreML/weights/weight.bin"


@dataclass(frozen=True)
class LoadedPackage:
    """One package read back: the coremltools ``model`` (uncompiled), its pymil ``program``, its
    ``weights`` report, declared ``io`` (``{"inputs", "outputs"}`` contract entries) and
    ``non_finite``: {weight op name: count of NaN / inf values}."""

    model: Any
    program: Any
    weights: WeightReport
    io: dict[str, list[dict[str, Any]]]
    non_finite: dict[str, int]

    @property
    def palettized(self) -> bool:
        """Whether any weight is stored in fewer than 16 bits."""
        return any(bits < 16 for bits in self.weights.histogram)


def check_listing(package: Path) -> None:
    """Check ``package/Manifest.json``: JSON, a root model, and item paths that stay inside ``Data``."""
    path = package / "Manifest.json"
    if not path.is_file():
        raise PackageError("it has no Manifest.json")
    if path.stat().st_size > MAX_PACKAGE_MANIFEST_BYTES:
        raise PackageError("its Manifest.json is too large to be a package manifest")
    try:
        listing = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise PackageError("its Manifest.json is not valid JSON") from None
    entries = listing.get("itemInfoEntries") if isinstance(listing, dict) else None
    if not isinstance(entries, dict) or listing.get("rootModelIdentifier") not in entries:
        raise PackageError("its Manifest.json names no root model among its itemInfoEntries")
    data = package / "Data"
    for key, entry in entries.items():
        item = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(item, str) or not item:
            raise PackageError(f"its Manifest.json item {key!r:.60} has no path")
        pure = PurePosixPath(item)
        if pure.is_absolute() or ".." in pure.parts or "\\" in item:
            raise PackageError(f"its Manifest.json item path {item!r:.80} leaves the package")
        if not (data / pure).exists():
            raise PackageError(f"its Manifest.json names Data/{item:.80}, which is not in the package")
    if not (data / entries[listing["rootModelIdentifier"]]["path"]).is_file():
        raise PackageError("its Manifest.json root model is not a file")


def load_package(package: Path) -> LoadedPackage:
    """Read ``package`` (a ``.mlpackage`` folder) as data; ``PackageError`` says why it cannot be."""
    from google.protobuf.message import DecodeError

    from tryon_lab.export.bundle import package_io
    from tryon_lab.export.errors import ExportInputError
    from tryon_lab.export.mil import as_mlmodel, load_program
    from tryon_lab.export.palettize import weight_report

    check_listing(package)
    try:
        model = as_mlmodel(package)
        program = load_program(model)
        weights = weight_report(program)
        io = package_io(model)
    except DecodeError:
        raise PackageError("its model.mlmodel is not a Core ML model (the protobuf does not parse)") from None
    except ExportInputError as err:
        raise PackageError(str(err)) from None
    except Exception as err:  # coremltools reports malformed programs with many exception types
        message = str(err).replace(str(package), package.name)
        raise PackageError(f"coremltools cannot read its program ({type(err).__name__}: {message:.300})") from None
    return LoadedPackage(model, program, weights, io, non_finite_weights(program))


def non_finite_weights(program) -> dict[str, int]:
    """{op name: number of NaN or infinite values} over the float constants of a pymil ``program``
    (palettes included: palettized weights are decompressed from them)."""
    found = {}
    for function in program.functions.values():
        for op in function.operations:
            if op.op_type != "const":
                continue
            value = op.outputs[0].val
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                bad = int(value.size - np.count_nonzero(np.isfinite(value)))
                if bad:
                    found[op.name] = bad
    return found
