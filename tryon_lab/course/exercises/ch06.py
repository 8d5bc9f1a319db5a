"""Chapter 06 exercises: what a grader checks first, a bundle's integrity and its real bits.

1. ``tampered_files(folder, files) -> list[str]``: ``files`` is a manifest's ``files`` table
   ({relative path: {"sha256": hex, "bytes": int}}); return, sorted, every listed path that is
   missing from ``folder``, has another size, or whose sha256 differs (read in pieces: a
   weight file may not fit in memory). The judge builds small folders with known faults.
2. ``average_bits(histogram) -> float``: ``histogram`` maps a bit width (a string, as in the
   manifest: "16", "6", "4", ...) to how many weights are stored at it; return the average bits
   per weight. The judge checks mixed histograms, a single width, and an empty one (which must
   raise ``ValueError``: there is no average of nothing).
3. ``name_the_fix(report) -> str``: ``report`` is a grading report as JSON (``Report.to_json()``);
   return the name (a key of ``FIXES``) of what the student must do: the fix for the first check
   whose status is "failed" ("blocked" checks only follow from it, "unverified" ones passed), or
   "nothing to fix". The judge feeds reports of typical faults and names the typical mistakes
   (answering a blocked check, counting "unverified" as a failure, answering the last failure).
"""

from __future__ import annotations

import hashlib
import numbers
import tempfile
from functools import lru_cache
from pathlib import Path

from tryon_lab.course.exercises.core import Case, describe, run_exercise

TAMPER_EXERCISE = "tampered_files"
BITS_EXERCISE = "average_bits"
FIX_EXERCISE = "name_the_fix"

# What a student can do about a failing report, and the checks each one answers.
FIXES = {
    "re-export": "files changed, went missing or broke after export: run `tryon-lab export` again and hand in "
                 "its folder untouched (checks: structure, manifest, programs, contract)",
    "remove foreign files": "the bundle holds files that are not bundle data (scripts, pickles, notes): "
                            "delete them (check: file_types)",
    "palettize": "the U-Net is stored with more bits than the rubric allows: export with `--bits 6` "
                 "(check: bits)",
    "chunk": "the U-Net is not cut into the rubric's number of chunks, or a chunk is too large: export with "
             "`--chunks 2` (check: chunks)",
    "convert at higher precision": "outputs drift from PyTorch: export again so the converter measures and keeps "
                                   "the precision that holds (checks: numerics, tryon)",
    "zip it again": "the submission cannot be unpacked safely (links, paths leaving it, a zip bomb): zip the "
                    "bundle folder itself again (check: unpack)",
    "nothing to fix": "no check failed (checks not verified without a reference bundle are not failures)",
}
FIX_OF_CHECK = {"unpack": "zip it again", "file_types": "remove foreign files", "structure": "re-export",
                "manifest": "re-export", "programs": "re-export", "contract": "re-export", "bits": "palettize",
                "chunks": "chunk", "numerics": "convert at higher precision", "tryon": "convert at higher precision"}


# --- exercise 1: tampered files ----------------------------------------------------------------------


def exercise_tampered_files(fn) -> bool:
    """Test the student's ``tampered_files(folder, files)`` on small bundles with known faults;
    return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(TAMPER_EXERCISE, fn, tamper_cases(), judge_tampered_files)


def _entry(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@lru_cache(maxsize=1)
def tamper_cases() -> tuple[Case, ...]:
    """Fixed folders (made once, in a temporary directory): an intact bundle; a weight file with one
    byte flipped (same size); a truncated file; a missing file; a file in a subfolder replaced; and
    an extra unlisted file (not a fault of the listed ones: the manifest's table is what is checked)."""
    root = Path(tempfile.mkdtemp(prefix="tryon-lab-ch06-"))
    payloads = {"executorch/Unet.pte": bytes(range(256)) * 64, "coreml/Unet.mlpackage/model.mlmodel": b"\x08\x01" * 500,
                "golden/tryon.safetensors": b"golden" * 100}

    def bundle(name: str) -> tuple[Path, dict]:
        folder = root / name
        for rel, data in payloads.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        return folder, {rel: _entry(data) for rel, data in payloads.items()}

    cases = []
    folder, files = bundle("intact")
    cases.append(Case("an intact bundle", (str(folder), files)))
    folder, files = bundle("flipped")
    data = bytearray(payloads["executorch/Unet.pte"])
    data[5000] ^= 0x01
    (folder / "executorch/Unet.pte").write_bytes(bytes(data))
    cases.append(Case("a weight file with one bit flipped (same size)", (str(folder), files)))
    folder, files = bundle("truncated")
    (folder / "golden/tryon.safetensors").write_bytes(payloads["golden/tryon.safetensors"][:-7])
    cases.append(Case("a truncated golden file", (str(folder), files)))
    folder, files = bundle("missing")
    (folder / "coreml/Unet.mlpackage/model.mlmodel").unlink()
    cases.append(Case("a missing program file", (str(folder), files)))
    folder, files = bundle("two-faults")
    (folder / "coreml/Unet.mlpackage/model.mlmodel").write_bytes(b"\x08\x02" * 500)
    (folder / "golden/tryon.safetensors").unlink()
    cases.append(Case("a replaced program in a subfolder and a missing golden file", (str(folder), files)))
    folder, files = bundle("extra")
    (folder / "notes.txt").write_text("not listed")
    cases.append(Case("an intact bundle with one extra, unlisted file", (str(folder), files)))
    return tuple(cases)


def _faults(folder: Path, files: dict) -> list[str]:
    bad = []
    for rel, entry in files.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != entry["bytes"]:
            bad.append(rel)
            continue
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        if digest.hexdigest() != entry["sha256"]:
            bad.append(rel)
    return sorted(bad)


def judge_tampered_files(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the tampered files of ``case``, or None."""
    folder, files = Path(case.args[0]), case.args[1]
    if not isinstance(result, list) or not all(isinstance(p, str) for p in result):
        return f"expected a list of relative paths (str), got {describe(result)}"
    if result != sorted(result):
        return "the paths are not sorted"
    expected = _faults(folder, files)
    unlisted = [p for p in result if p not in files]
    if unlisted:
        return f"{len(unlisted)} path(s) you returned are not in the manifest's table; only listed files are checked"
    missed, wrong = set(expected) - set(result), set(result) - set(expected)
    if missed:
        return f"{len(missed)} faulty file(s) went unnoticed; compare size and sha256, and count missing files"
    if wrong:
        return f"{len(wrong)} intact file(s) were reported as tampered"
    return None


# --- exercise 2: average bits ------------------------------------------------------------------------


def exercise_average_bits(fn) -> bool:
    """Test the student's ``average_bits(histogram)`` on fixed histograms; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(BITS_EXERCISE, fn, bits_cases(), judge_average_bits)


@lru_cache(maxsize=1)
def bits_cases() -> tuple[Case, ...]:
    """Fixed histograms: 6-bit weights with a few fp16 ones, a mixed 8/6/4 allocation, a single
    width, widths whose string order differs from their numeric order, and an empty histogram."""
    return (
        Case("a 6-bit U-Net with some fp16 weights", ({"6": 8_600_000, "16": 190_000},)),
        Case("a mixed 8/6/4-bit allocation", ({"8": 1_000_000, "6": 3_000_000, "4": 4_500_000},)),
        Case("one width only", ({"4": 12_345},)),
        Case("widths 16, 2 and 1", ({"16": 10, "2": 1000, "1": 3},)),
        Case("an empty histogram", ({},), raises=ValueError),
    )


def judge_average_bits(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the average bits of ``case``, or None."""
    histogram = case.args[0]
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        return f"expected a number, got {describe(result)}"
    total = sum(histogram.values())
    expected = sum(int(bits) * n for bits, n in histogram.items()) / total
    if abs(float(result) - expected) <= 1e-9 * max(1.0, expected):
        return None
    plain = sum(int(b) for b in histogram) / len(histogram)
    if abs(float(result) - plain) <= 1e-9:
        return "every width counts the same in your average; weight each width by how many weights use it"
    low, high = min(map(int, histogram)), max(map(int, histogram))
    if not low <= float(result) <= high:
        return f"an average of widths between {low} and {high} bits cannot be {float(result):.3g}"
    return f"your average is off by {abs(float(result) - expected):.3g} bits"


# --- exercise 3: read a failing report, name the fix -----------------------------------------------


def exercise_name_the_fix(fn) -> bool:
    """Test the student's ``name_the_fix(report)`` on grading reports of typical faults; return True
    (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(FIX_EXERCISE, fn, fix_cases(), judge_fix)


_REASONS = {
    "unpack": ("the submission unpacked", "a zip member's path leaves the submission: ../../etc/evil"),
    "file_types": ("every file is bundle data", "notes/run.py is a Python script; it is never loaded"),
    "structure": ("the bundle's layout is complete", "coreml/VAEDecoder.mlpackage is missing"),
    "manifest": ("every file matches its sha256 and size", "coreml/UnetChunk1.mlpackage/Data/weight.bin: "
                 "sha256 differs from the manifest's"),
    "programs": ("every package is a readable ML Program", "coreml/Unet.mlpackage cannot be read"),
    "contract": ("names, shapes and dtypes match the contract", "Unet input sample is 1x4x16x16, expected 2x9x16x16"),
    "bits": ("bits read from the programs match the manifest and the rubric",
             "Unet averages 16 bits over tensors above 2048 elements; the rubric allows at most 6"),
    "chunks": ("the U-Net is in 2 chunks", "Unet is 1 package; the rubric wants 2 to 4 chunks"),
    "numerics": ("outputs agree with the golden data", "VAEDecoder: 12.1 dB against the golden output; the bar is 35 dB"),
    "tryon": ("the try-on agrees with the reference's", "the try-on's generated region is 9.8 dB from the reference's"),
}


def _report(statuses: dict[str, str]) -> dict:
    """A report (as ``Report.to_json`` writes one) whose checks have ``statuses`` (others: passed)."""
    from tryon_lab.grading.rubric import CHECK_NAMES

    checks = []
    for name in CHECK_NAMES:
        status = statuses.get(name, "passed")
        good, bad = _REASONS[name]
        reason = {"passed": good, "failed": bad, "blocked": "not run: a check it needs failed",
                  "unverified": good + "; not verified (no reference)"}[status]
        checks.append({"name": name, "title": name.replace("_", " "), "status": status, "points": 10.0,
                       "earned": 10.0 if status == "passed" else 0.0, "reason": reason, "details": [], "rows": []})
    failed = any(c["status"] in ("failed", "blocked") for c in checks)
    return {"format": "tryon-lab-report", "format_version": 2, "student": "student", "submission": "bundle",
            "rubric": "tryon-lab phone bundle (course default)", "reference": None,
            "status": "failed" if failed else "passed", "checks": checks}


@lru_cache(maxsize=1)
def fix_cases() -> tuple[Case, ...]:
    """Reports of a tampered weight file (later checks blocked), an 8-bit unchunked U-Net (and
    unverified checks without a reference), a stray script, a fault that blocks the numerics, a drifting
    decoder, and a clean report graded without a reference."""
    return (
        Case("a report where one weight file changed after export (later checks blocked)",
             (_report({"manifest": "failed", "programs": "blocked", "numerics": "blocked", "tryon": "blocked"}),)),
        Case("a report of an unpalettized U-Net in one package, graded without a reference",
             (_report({"bits": "failed", "chunks": "failed", "numerics": "unverified", "tryon": "unverified"}),)),
        Case("a report of a bundle with a stray script", (_report({"file_types": "failed", "tryon": "unverified"}),)),
        Case("a report of a U-Net left in one package", (_report({"chunks": "failed", "numerics": "unverified"}),)),
        Case("a report whose decoder drifts from PyTorch", (_report({"numerics": "failed", "tryon": "blocked"}),)),
        Case("a clean report graded without a reference",
             (_report({"numerics": "unverified", "tryon": "unverified", "contract": "unverified"}),)),
    )


def _expected_fix(report: dict) -> str:
    failed = [c["name"] for c in report["checks"] if c["status"] == "failed"]
    return FIX_OF_CHECK[failed[0]] if failed else "nothing to fix"


def judge_fix(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the fix for ``case``'s report, or None."""
    (report,) = case.args
    if not isinstance(result, str):
        return f"expected the name of a fix (a string), got {describe(result)}"
    if result not in FIXES:
        return f"{result!r} is not one of the fixes: {sorted(FIXES)}"
    right = _expected_fix(report)
    if result == right:
        return None
    checks = report["checks"]
    failed = [c["name"] for c in checks if c["status"] == "failed"]
    blocked = [c["name"] for c in checks if c["status"] == "blocked"]
    unverified = [c["name"] for c in checks if c["status"] == "unverified"]
    if any(FIX_OF_CHECK[name] == result for name in blocked) and not any(FIX_OF_CHECK[n] == result for n in failed):
        return (f"{result!r} answers a blocked check; a blocked check was not run because an earlier one "
                "failed, so it is fixed by fixing that one")
    if any(FIX_OF_CHECK[name] == result for name in unverified) and not failed:
        return (f"{result!r} answers a check that is 'unverified': it passed, only without a reference bundle "
                "to compare with, which is not a fault of the submission")
    if len(failed) > 1 and result == FIX_OF_CHECK[failed[-1]]:
        return f"{result!r} answers the last failed check; name the fix for the first one (checks run in order)"
    if result == "nothing to fix":
        return "the report has a failed check; there is something to fix"
    return f"{result!r} does not address the first failed check of this report: {FIXES[result].split(':')[0]}"
