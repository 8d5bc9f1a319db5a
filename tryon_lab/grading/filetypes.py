"""What a file really is, judged by its bytes: the bundle's data formats, and what must never be loaded.

``file_problem`` checks a file against the format its suffix promises (JSON, UTF-8 text, Core ML
weight blobs, safetensors, ExecuTorch programs; a ``.mlmodel`` protobuf has no signature and is
parsed by the ``programs`` check). ``foreign_kind`` names content that is code or an opaque
object (pickles, PyTorch checkpoints, executables, scripts, archives) so a report can say what a
misnamed file actually is. Only headers are read, except for JSON and text, which are small.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

MAX_JSON_BYTES = 64 << 20
MAX_SAFETENSORS_HEADER = 100 << 20  # safetensors' own limit
MIL_BLOB_VERSION = 2
_EXECUTABLES = {
    b"\x7fELF": "an ELF executable",
    b"\xfe\xed\xfa\xce": "a Mach-O executable", b"\xfe\xed\xfa\xcf": "a Mach-O executable",
    b"\xce\xfa\xed\xfe": "a Mach-O executable", b"\xcf\xfa\xed\xfe": "a Mach-O executable",
    b"\xca\xfe\xba\xbe": "a Mach-O universal executable",
}


def _head(path: Path, size: int = 64) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def foreign_kind(path: Path) -> str | None:
    """Name what ``path`` holds if it is code or an opaque object (pickle, executable, script, archive), else None."""
    head = _head(path)
    for magic, kind in _EXECUTABLES.items():
        if head.startswith(magic):
            return kind
    if head.startswith(b"MZ"):
        return "a Windows executable"
    if head.startswith(b"#!"):
        return "a script (#!)"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "a zip archive"
        if any(name.endswith(".pkl") for name in names):
            return "a PyTorch checkpoint (a zip holding a pickle)"
        return "a zip archive"
    return None


def _json(path: Path) -> str | None:
    if path.stat().st_size > MAX_JSON_BYTES:
        return f"over {MAX_JSON_BYTES} bytes, too large for a JSON file"
    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not valid UTF-8 JSON"
    return None


def _text(path: Path) -> str | None:
    if path.stat().st_size > MAX_JSON_BYTES:
        return f"over {MAX_JSON_BYTES} bytes, too large for a text file"
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return "not text (it holds NUL bytes)" if b"\x00" in data else None


def _mil_blob(path: Path) -> str | None:
    head = _head(path)
    if len(head) < 64 or int.from_bytes(head[4:8], "little") != MIL_BLOB_VERSION:
        return "not a Core ML weight file (MIL blob storage, version 2)"
    return None


def _safetensors(path: Path) -> str | None:
    size = path.stat().st_size
    head = _head(path, 8)
    length = int.from_bytes(head, "little") if len(head) == 8 else 0
    if not 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8):
        return "not a safetensors file (bad header length)"
    with open(path, "rb") as handle:
        handle.seek(8)
        header = handle.read(length)
    if not header.lstrip().startswith(b"{"):
        return "not a safetensors file (its header is not a JSON object)"
    return None


def _pte(path: Path) -> str | None:
    size = path.stat().st_size
    head = _head(path, 40)
    if len(head) < 8 or not re.fullmatch(rb"ET\d\d", head[4:8]):
        return "not an ExecuTorch program (no ETnn flatbuffer identifier)"
    if head[8:12] == b"eh00" and len(head) == 40:  # the extended header: program and segment sizes
        length = int.from_bytes(head[12:16], "little")
        program_size = int.from_bytes(head[16:24], "little")
        segments_end = int.from_bytes(head[24:32], "little") + (int.from_bytes(head[32:40], "little") if length > 24 else 0)
        if max(program_size, segments_end) > size:
            return (f"a damaged ExecuTorch program: its header claims {max(program_size, segments_end)} bytes, "
                    f"the file has {size}")
    return None


VALIDATORS: dict[str, Callable[[Path], str | None]] = {
    ".json": _json, ".txt": _text, ".bin": _mil_blob, ".safetensors": _safetensors, ".pte": _pte,
}  # a .mlmodel protobuf has no signature: the programs check parses it


def file_problem(path: Path, relative: str, allowed: Sequence[str]) -> str | None:
    """Why ``path`` (shown as ``relative``) does not belong in a bundle, or None if it does.

    ``allowed`` lists the permitted suffixes (lower case, with the dot); a permitted suffix must
    also match the content (a pickle named ``.safetensors`` is refused and named as a pickle).
    """
    suffix = Path(relative).suffix.lower()
    kind = foreign_kind(path)
    if suffix not in allowed:
        what = kind or (f"a {suffix} file" if suffix else "a file without a suffix")
        return f"{relative}: {what}; only {', '.join(allowed)} files belong in a bundle"
    validator = VALIDATORS.get(suffix)
    problem = validator(path) if validator else None
    if problem is None and kind is not None and validator is None:
        problem = kind
    if problem is None:
        return None
    return f"{relative}: {kind}, named {suffix}" if kind else f"{relative}: {problem}"
