"""The corpus in the order the grader runs its checks (``CASES``: good submissions first), and
``make_corpus``, which writes one submission per case."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tryon_lab.grading.checks import CHECKS
from tryon_lab.grading.corpus import damaged, foreign, lies, unsafe
from tryon_lab.grading.corpus.archives import zip_folder
from tryon_lab.grading.corpus.case import Case, Sample
from tryon_lab.grading.corpus.edits import copy_bundle
from tryon_lab.grading.rubric import Rubric


def _good_folder(bundle, target, rubric, forbidden):
    copy_bundle(bundle, target)


def _good_zip(bundle, target, rubric, forbidden):
    zip_folder(bundle, target)


def _macos_zip(bundle, target, rubric, forbidden):
    def junk(archive):
        archive.writestr("__MACOSX/._manifest.json", b"\x00\x05\x16\x07 AppleDouble")
        archive.writestr(".DS_Store", b"Bud1 finder data")
    zip_folder(bundle, target, prefix="", extra=junk)


GOOD: tuple[Case, ...] = (
    Case("good-folder", None, "the bundle as a folder", False, _good_folder, "passed"),
    Case("good-zip", None, "the bundle zipped inside a folder", True, _good_zip, "passed"),
    Case("good-macos-zip", None, "zipped at the root, with __MACOSX and .DS_Store entries", True, _macos_zip, "passed"),
)
_ORDER = [None, *(check.name for check in CHECKS)]  # good submissions first, then by the check that must fail
CASES: tuple[Case, ...] = tuple(sorted((*GOOD, *unsafe.CASES, *foreign.CASES, *lies.CASES, *damaged.CASES),
                                       key=lambda case: _ORDER.index(case.fault)))


def make_corpus(bundle: str | Path, out: str | Path, rubric: Rubric, only: tuple[str, ...] | None = None) -> list[Sample]:
    """Write every case (or the ``only`` names) made from ``bundle`` into the new folder ``out``; return the samples."""
    bundle, out = Path(bundle), Path(out)
    out.mkdir(parents=True)
    forbidden = Path("/tmp") / f"tryon-lab-grader-escape-{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]}"
    samples = []
    for case in CASES:
        if only is not None and case.name not in only:
            continue
        target = out / (f"{case.name}.zip" if case.zipped else case.name)
        case.make(bundle, target, rubric, forbidden)
        escapes = forbidden if case.name in ("zip-traversal", "zip-absolute") else None
        samples.append(Sample(case.name, target, case.fault, case.what, case.status, escapes))
    return samples
