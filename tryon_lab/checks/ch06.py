"""Chapter 06 exercises: what a grader checks first, a bundle's integrity and its real bits.

1. ``tampered_files(folder, files) -> list[str]``: ``files`` is a manifest's ``files`` table
   ({relative path: {"sha256": hex, "bytes": int}}); return, sorted, every listed path that is
   missing from ``folder``, has another size, or whose sha256 differs (read in pieces: a
   weight file may not fit in memory). The judge builds small folders with known faults.
2. ``average_bits(histogram) -> float``: ``histogram`` maps a bit width (a string, as in the
   manifest: "16", "6", "4", ...) to how many weights are stored at it; return the average bits
   per weight. The judge checks mixed histograms, a single width, and an empty one (which must
   raise ``ValueError``: there is no average of nothing).
"""

from __future__ import annotations

import hashlib
import numbers
import tempfile
from functools import lru_cache
from pathlib import Path

from tryon_lab.checks.core import Case, check_function, describe

TAMPER_EXERCISE = "tampered_files"
BITS_EXERCISE = "average_bits"


# --- exercise 1: tampered files ----------------------------------------------------------------------


def check_tampered_files(fn) -> bool:
    """Test the student's ``tampered_files(folder, files)`` on small bundles with known faults;
    return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return check_function(TAMPER_EXERCISE, fn, tamper_cases(), judge_tampered_files)


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


def check_average_bits(fn) -> bool:
    """Test the student's ``average_bits(histogram)`` on fixed histograms; return True or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return check_function(BITS_EXERCISE, fn, bits_cases(), judge_average_bits)


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
