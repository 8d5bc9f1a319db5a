"""Core ML weight files (MIL blob storage, version 2) as bytes: where the blobs are, and editing them in place."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from tryon_lab.grading.errors import GradingInputError

FP16 = 1  # the MIL blob storage's data type code for float16
BLOB_SENTINEL = 0xDEADBEEF


def blob_regions(weights: Path) -> list[tuple[int, int, int]]:
    """(data type, offset, bytes) of every blob in a Core ML weight file (MIL blob storage, version 2)."""
    data = weights.read_bytes()
    count, regions, position = int.from_bytes(data[:4], "little"), [], 64
    for _ in range(count):
        sentinel, dtype, size, offset = struct.unpack_from("<IIQQ", data, position)
        if sentinel != BLOB_SENTINEL:
            raise GradingInputError(f"{weights} is not a MIL blob storage file")
        regions.append((dtype, offset, size))
        position = (offset + size + 63) // 64 * 64
    return regions


def edit_fp16(weights: Path, edit: Callable[[bytearray, int, int], None], first_only: bool = False) -> None:
    """Apply ``edit(data, offset, size)`` to the float16 blobs of ``weights`` (only the first if ``first_only``), in place."""
    data = bytearray(weights.read_bytes())
    for dtype, offset, size in blob_regions(weights):
        if dtype == FP16:
            edit(data, offset, size)
            if first_only:
                break
    weights.write_bytes(bytes(data))


def weight_file(folder: Path, package: str) -> Path:
    """The weight file of Core ML package ``package`` in the bundle ``folder``."""
    return folder / "coreml" / f"{package}.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
