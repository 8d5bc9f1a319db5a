"""Corpus cases the ``unpack`` check must fail: archives and folders that escape, link, bomb or lie."""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
import zipfile

from tryon_lab.grading.corpus.archives import patch_declared_size, zip_folder
from tryon_lab.grading.corpus.case import Case
from tryon_lab.grading.corpus.edits import changed
from tryon_lab.grading.errors import GradingInputError


def _zip_traversal(bundle, target, rubric, forbidden):
    zip_folder(bundle, target, extra=lambda a: a.writestr("../" * 16 + forbidden.relative_to("/").as_posix(), b"escaped"))


def _zip_absolute(bundle, target, rubric, forbidden):
    zip_folder(bundle, target, extra=lambda a: a.writestr(str(forbidden), b"escaped"))


def _zip_symlink(bundle, target, rubric, forbidden):
    def link(archive):
        info = zipfile.ZipInfo("bundle/golden/link.safetensors")
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    zip_folder(bundle, target, extra=link)


def _zip_duplicate(bundle, target, rubric, forbidden):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate this case is made of
        zip_folder(bundle, target, extra=lambda a: a.writestr("bundle/coreml/vocab.json", b"{}"))


def _zip_bomb(bundle, target, rubric, forbidden):
    size = min(rubric.limits.max_file_bytes, 8 << 20)
    if size <= 1 << 20 or rubric.limits.max_compression_ratio >= 500:
        raise GradingInputError("the zip-bomb case needs limits.max_file_bytes > 1 MiB and a ratio limit < 500")
    def bomb(archive):
        archive.writestr(zipfile.ZipInfo("bundle/golden/zeros.safetensors"), bytes(size), zipfile.ZIP_DEFLATED, 9)
    zip_folder(bundle, target, extra=bomb)


def _zip_lying_size(bundle, target, rubric, forbidden):
    zip_folder(bundle, target)
    patch_declared_size(target, "bundle/golden/tryon.safetensors", 100)


def _folder_symlink(bundle, target, rubric, forbidden):
    def link(folder):
        (folder / "coreml" / "vocab.json").unlink()
        os.symlink("/etc/passwd", folder / "coreml" / "vocab.json")
    changed(bundle, target, link, honest=False)


def _oversized(bundle, target, rubric, forbidden):
    def grow(folder):
        with open(folder / "golden" / "padding.safetensors", "wb") as handle:
            handle.truncate(rubric.limits.max_file_bytes + 1)  # sparse: costs no disk
    changed(bundle, target, grow, honest=False)


def _fifo(bundle, target, rubric, forbidden):
    changed(bundle, target, lambda folder: os.mkfifo(folder / "golden" / "pipe.safetensors"), honest=False)


def _not_a_zip(bundle, target, rubric, forbidden):
    target.write_bytes(hashlib.sha256(b"not a zip").digest() * 64)


CASES: tuple[Case, ...] = (
    Case("zip-traversal", "unpack", "a zip entry climbing out with ../", True, _zip_traversal),
    Case("zip-absolute", "unpack", "a zip entry with an absolute path", True, _zip_absolute),
    Case("zip-symlink", "unpack", "a zip entry that is a symbolic link to /etc/passwd", True, _zip_symlink),
    Case("zip-duplicate", "unpack", "two zip entries with one name", True, _zip_duplicate),
    Case("zip-bomb", "unpack", "a zip entry of zeros compressed a thousandfold", True, _zip_bomb),
    Case("zip-lying-size", "unpack", "a zip entry declaring fewer bytes than it holds", True, _zip_lying_size),
    Case("folder-symlink", "unpack", "a symbolic link to /etc/passwd in place of vocab.json", False, _folder_symlink),
    Case("oversized-file", "unpack", "a file one byte over limits.max_file_bytes", False, _oversized),
    Case("fifo", "unpack", "a named pipe among the golden files", False, _fifo),
    Case("not-a-zip", "unpack", "random bytes named .zip", True, _not_a_zip, "unreadable"),
)
