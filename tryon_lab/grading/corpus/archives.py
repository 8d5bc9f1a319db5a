"""Zip archives of a bundle folder, and a zip whose headers lie about a member's size."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable
from pathlib import Path


def zip_folder(folder: Path, target: Path, prefix: str = "bundle/",
               extra: Callable[[zipfile.ZipFile], None] | None = None) -> None:
    """Zip ``folder``'s files into ``target`` under ``prefix``, then let ``extra`` add entries."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
        if extra:
            extra(archive)


def patch_declared_size(archive: Path, member: str, size: int) -> None:
    """Make ``member`` of ``archive`` declare ``size`` unpacked bytes (local and central headers)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as opened:
        local = opened.getinfo(member).header_offset
    struct.pack_into("<I", data, local + 22, size)
    name, start = member.encode(), data.find(b"PK\x01\x02")
    while start != -1:
        length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46: start + 46 + length] == name:
            struct.pack_into("<I", data, start + 24, size)
            break
        start = data.find(b"PK\x01\x02", start + 4)
    archive.write_bytes(bytes(data))
