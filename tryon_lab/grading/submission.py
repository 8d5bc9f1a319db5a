"""Safe unpacking: a submission (a folder or a .zip) becomes a private copy inside the output folder.

Nothing is read in place and nothing is extracted blindly. A zip is checked member by member
before any byte is written (names that are absolute or climb out with ``..``, backslashes,
drive letters, links and special files, duplicates, encryption, declared sizes, count and
compression ratio), then each member is streamed out with its declared size as a hard ceiling.
A folder is walked without following links; a link (above all one pointing outside), a FIFO,
socket or device, or a file over the limits rejects it. Files are created with ``O_EXCL |
O_NOFOLLOW`` under a root that is checked to contain them, so no write lands outside it.
Every refusal is a ``SubmissionRejected`` whose reason names the entry.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tryon_lab.export.manifest import MANIFEST
from tryon_lab.grading.errors import SubmissionRejected
from tryon_lab.grading.rubric import Limits

BLOCK = 1 << 20
RATIO_CHECK_BYTES = 1 << 20  # smaller members cannot do harm whatever their ratio
MAX_DEPTH = 32
MAX_NAME = 255
IGNORED = re.compile(r"(^|/)(__MACOSX(/|$)|\.DS_Store$|\._[^/]*$)")  # what macOS adds to the zips it makes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Unpacked:
    """A private copy: ``root`` is the bundle folder in it, with its ``files`` and ``bytes`` counted;
    ``notes`` say what was skipped or where the bundle was found."""

    root: Path
    files: int
    bytes: int
    notes: tuple[str, ...]


def student_name(source: str | Path) -> str:
    """A folder-safe name for a submission: its file or folder name without ``.zip``."""
    name = Path(source).name
    name = name[:-4] if name.lower().endswith(".zip") else name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"


def unpack_submission(source: str | Path, work: str | Path, limits: Limits) -> Unpacked:
    """Copy or extract ``source`` (folder or .zip) into the new folder ``work``; return the copy.

    Raises ``SubmissionRejected`` (``unreadable`` when ``source`` is missing, not a folder or a zip,
    or a damaged zip) and leaves whatever was already written inside ``work``.
    """
    source, work = Path(source), Path(work)
    if not source.exists():
        raise SubmissionRejected(f"{source} does not exist", unreadable=True)
    work.mkdir(parents=True)
    counter = _Counter(limits)
    notes: list[str] = []
    if source.is_dir():
        _copy_folder(source.resolve(), work, counter, notes)
    elif zipfile.is_zipfile(source):
        _extract_zip(source, work, counter, notes)
    else:
        raise SubmissionRejected(f"{source.name} is neither a folder nor a zip archive", unreadable=True)
    root = find_bundle_root(work)
    if root != work:
        notes.append(f"bundle found in the folder {root.relative_to(work).as_posix()}/")
    return Unpacked(root, counter.files, counter.bytes, tuple(notes))


def find_bundle_root(folder: Path) -> Path:
    """``folder``, or its only subfolder when the bundle was packed inside one (``bundle/manifest.json``)."""
    if (folder / MANIFEST).exists():
        return folder
    entries = list(folder.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return folder


class _Counter:
    """Running totals against ``limits``; raises ``SubmissionRejected`` when one is passed."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.files, self.bytes = limits, 0, 0

    def file(self, name: str, size: int) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise SubmissionRejected(f"more than {self.limits.max_files} files (limits.max_files)")
        if size > self.limits.max_file_bytes:
            raise SubmissionRejected(f"{name}: {size} bytes is over the {self.limits.max_file_bytes}-byte limit "
                                     "for one file (limits.max_file_bytes)")
        self.add(name, size)

    def add(self, name: str, size: int) -> None:
        self.bytes += size
        if self.bytes > self.limits.max_total_bytes:
            raise SubmissionRejected(f"{name}: the submission unpacks to more than {self.limits.max_total_bytes} "
                                     "bytes (limits.max_total_bytes)")


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path parts of an archive or folder entry name, or ``SubmissionRejected`` if it is unsafe."""
    shown = repr(name[:120])
    if not name or _CONTROL.search(name):
        raise SubmissionRejected(f"entry {shown}: empty or control characters in its name")
    if "\\" in name:
        raise SubmissionRejected(f"entry {shown}: backslash in its name (a Windows path that may climb out)")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionRejected(f"entry {shown}: absolute path")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise SubmissionRejected(f"entry {shown}: path traversal ('..' climbs out of the submission)")
    if len(parts) > MAX_DEPTH or any(len(part) > MAX_NAME for part in parts):
        raise SubmissionRejected(f"entry {shown}: nested deeper than {MAX_DEPTH} folders or a name over {MAX_NAME} characters")
    return parts


def _target(root: Path, parts: tuple[str, ...]) -> Path:
    """``root/parts`` after checking the resolved parent is still inside ``root``."""
    target = root.joinpath(*parts)
    parent = os.path.realpath(target.parent)
    if os.path.commonpath([parent, os.path.realpath(root)]) != os.path.realpath(root):
        raise SubmissionRejected(f"entry {'/'.join(parts)!r}: resolves outside the submission")
    return target


def _make_folder(target: Path, name: str) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SubmissionRejected(f"entry {name!r}: cannot be a folder ({err.strerror}: a file of that name exists)") from None


def _open_new(target: Path) -> int:
    """A new file's descriptor; never follows a link or replaces an existing file."""
    _make_folder(target.parent, target.parent.name)
    try:
        return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise SubmissionRejected(f"entry {target.name!r}: cannot be created ({err.strerror}: it appears twice "
                                 "or clashes with a folder)") from None


def declared_entries(source: Path) -> int | None:
    """The entry count a zip's end-of-central-directory record declares (zip64 included), or None if
    it has none; read before ``zipfile`` builds an object per entry."""
    size = source.stat().st_size
    with open(source, "rb") as handle:
        handle.seek(max(0, size - (1 << 16) - 22))
        tail = handle.read()
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return None
    count = struct.unpack_from("<H", tail, end + 10)[0]
    locator = end - 20
    if count == 0xFFFF and locator >= 0 and tail[locator: locator + 4] == b"PK\x06\x07":
        offset = struct.unpack_from("<Q", tail, locator + 8)[0]
        with open(source, "rb") as handle:
            handle.seek(offset)
            record = handle.read(40)
        if record[:4] == b"PK\x06\x06" and len(record) == 40:
            count = struct.unpack_from("<Q", record, 32)[0]
    return count


def _extract_zip(source: Path, root: Path, counter: _Counter, notes: list[str]) -> None:
    limits = counter.limits
    if source.stat().st_size > limits.max_total_bytes:
        raise SubmissionRejected(f"{source.name} is larger than limits.max_total_bytes")
    entries = declared_entries(source)
    if entries is not None and entries > 4 * limits.max_files:
        raise SubmissionRejected(f"the zip declares {entries} entries (limits.max_files is {limits.max_files})")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise SubmissionRejected(f"{source.name} is a damaged zip archive ({err})", unreadable=True) from None
    with archive:
        members = _checked_members(archive, counter.limits, notes)
        for info, parts in members:
            target = _target(root, parts)
            if info.is_dir():
                _make_folder(target, info.filename)
                continue
            counter.file(info.filename, info.file_size)
            _stream_member(archive, info, target)


def _checked_members(archive: zipfile.ZipFile, limits: Limits, notes: list[str]) -> list[tuple[zipfile.ZipInfo, tuple]]:
    """Every member to extract, with its parts, once all of them passed the checks that need no reading."""
    members, seen, declared, skipped = [], set(), 0, 0
    infos = archive.infolist()
    if len(infos) > 4 * limits.max_files:
        raise SubmissionRejected(f"the zip has {len(infos)} entries (limits.max_files is {limits.max_files})")
    for info in infos:
        name = info.filename
        if IGNORED.search(name.rstrip("/")):
            skipped += 1
            continue
        parts = _safe_parts(name)
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            raise SubmissionRejected(f"entry {name!r}: a symbolic link (links are not allowed in a submission)")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise SubmissionRejected(f"entry {name!r}: a special file, not a regular file or folder")
        if info.flag_bits & 0x1:
            raise SubmissionRejected(f"entry {name!r}: encrypted")
        if parts in seen:
            raise SubmissionRejected(f"entry {name!r}: appears twice in the zip")
        seen.add(parts)
        if not info.is_dir():
            if info.file_size > limits.max_file_bytes:
                raise SubmissionRejected(f"entry {name!r}: declares {info.file_size} bytes, over the "
                                         f"{limits.max_file_bytes}-byte limit for one file (limits.max_file_bytes)")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_CHECK_BYTES and ratio > limits.max_compression_ratio:
                raise SubmissionRejected(f"entry {name!r}: compression ratio {ratio:.0f}:1 is over "
                                         f"{limits.max_compression_ratio:g}:1 (a zip bomb? limits.max_compression_ratio)")
            declared += info.file_size
        members.append((info, parts))
    files = sum(not info.is_dir() for info, _ in members)
    if files > limits.max_files:
        raise SubmissionRejected(f"the zip holds {files} files, more than {limits.max_files} (limits.max_files)")
    if declared > limits.max_total_bytes:
        raise SubmissionRejected(f"the zip declares {declared} unpacked bytes, over limits.max_total_bytes "
                                 f"({limits.max_total_bytes})")
    if skipped:
        notes.append(f"skipped {skipped} macOS metadata entries (__MACOSX, .DS_Store, ._*)")
    return members


def _stream_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Write one member, never more than it declares (zipfile also stops there and checks the CRC)."""
    fd = _open_new(target)
    written = 0
    try:
        with archive.open(info) as src, os.fdopen(fd, "wb") as out:
            while block := src.read(BLOCK):
                written += len(block)
                if written > info.file_size:
                    raise SubmissionRejected(f"entry {info.filename!r}: inflates past the {info.file_size} bytes it declares")
                out.write(block)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as err:
        # A CRC mismatch is what a member whose declared size lies (shorter than its data) looks like.
        raise SubmissionRejected(f"entry {info.filename!r}: cannot be extracted intact ({type(err).__name__}: {err})") from None


def _copy_folder(source: Path, root: Path, counter: _Counter, notes: list[str]) -> None:
    skipped = 0
    stack: list[tuple[Path, tuple[str, ...]]] = [(source, ())]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            listing = sorted(entries, key=lambda e: e.name)
        for entry in listing:
            parts = prefix + (entry.name,)
            relative = "/".join(parts)
            if IGNORED.search(relative):
                skipped += 1
                continue
            _safe_parts(relative)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise SubmissionRejected(_link_reason(source, Path(entry.path), relative))
            if stat.S_ISDIR(info.st_mode):
                _make_folder(_target(root, parts), relative)
                stack.append((Path(entry.path), parts))
            elif stat.S_ISREG(info.st_mode):
                counter.file(relative, info.st_size)
                _copy_file(Path(entry.path), _target(root, parts), info.st_size, relative)
            else:
                raise SubmissionRejected(f"{relative}: a special file (FIFO, socket or device), not a regular file")
    if skipped:
        notes.append(f"skipped {skipped} macOS metadata files (.DS_Store, ._*)")


def _link_reason(source: Path, link: Path, relative: str) -> str:
    target = os.readlink(link)
    resolved = os.path.realpath(link)
    if os.path.commonpath([resolved, str(source)]) != str(source):
        return f"{relative}: a symbolic link to {target!r}, outside the submission"
    return f"{relative}: a symbolic link to {target!r} (links are not allowed in a submission)"


def _copy_file(path: Path, target: Path, size: int, relative: str) -> None:
    """Copy a regular file, refusing it if it turned into something else or grew meanwhile."""
    try:  # non-blocking: a file swapped for a FIFO after the walk must not hang the grader
        src = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise SubmissionRejected(f"{relative}: cannot be read ({err.strerror})") from None
    fd = _open_new(target)
    with os.fdopen(src, "rb") as reader, os.fdopen(fd, "wb") as out:
        if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
            raise SubmissionRejected(f"{relative}: not a regular file")
        copied = 0
        while block := reader.read(BLOCK):
            copied += len(block)
            if copied > size:
                raise SubmissionRejected(f"{relative}: grew while it was being copied")
            out.write(block)
