"""The bits check: the palettization read from the programs against the manifest's claims and the
rubric's palette widths and average."""

from __future__ import annotations

import math

from tryon_lab.export.manifest import Bits, Compression, CoreMLEntry
from tryon_lab.export.mixed_bits import MIXED_BITS
from tryon_lab.export.palettize import WEIGHT_THRESHOLD, WeightReport
from tryon_lab.grading.checks.base import Context, Outcome, check, verdict


@check("bits", "Palettization read from the programs: the manifest's claims, and the rubric's widths and average")
def check_bits(context: Context) -> Outcome:
    """Hold the manifest's bits and compression claims, and the rubric's palette widths and average, against the programs."""
    manifest = context.need_manifest()
    settings = context.rubric.settings["bits"]
    problems, rows = [], []
    for name in settings["components"]:
        if name not in manifest.components:
            problems.append(f"component {name} is missing, so it cannot be palettized")
    for name, entry in manifest.components.items():
        if entry.coreml is None:
            continue
        report = _component_bits(context, name, entry.coreml, problems)
        if report is None:
            continue
        widths = sorted(b for b in report.histogram if b < 16)
        graded = graded_average_bits(report)
        rows.append({"component": name, "average bits": round(report.average_bits, 3),
                     f"average bits, tensors over {WEIGHT_THRESHOLD} elements": round(graded, 3),
                     "palette widths": ", ".join(map(str, widths)) or "none",
                     "claimed": _claim(entry.coreml.compression)})
        if name in settings["components"]:
            if not widths:
                problems.append(f"{name} is not palettized (every weight is {max(report.histogram, default=16)}-bit)")
            bad = [b for b in widths if b not in settings["allowed_bits"]]
            if bad:
                problems.append(f"{name} has {bad}-bit palettes; the rubric allows {settings['allowed_bits']}")
            if graded > settings["max_average_bits"]:
                problems.append(f"{name} averages {graded:.2f} bits per weight over its tensors of more than "
                                f"{WEIGHT_THRESHOLD} elements; the rubric allows at most {settings['max_average_bits']:g}")
    return verdict(problems, "bits read from the programs match the manifest and the rubric", rows)


def graded_average_bits(report: WeightReport) -> float:
    """Bits per weight over the tensors a palettizer compresses: the rubric's average.

    Uncompressed tensors of at most ``WEIGHT_THRESHOLD`` elements (norms, biases) are left out:
    coremltools never palettizes them, and they are 0.4% of the course U-Net's weights but a
    quarter of a tiny one's, so counting them would make the bar depend on the model's size.
    """
    return WeightReport(tuple(w for w in report.weights if w.bits < 16 or w.elements > WEIGHT_THRESHOLD)).average_bits


def _component_bits(context: Context, name: str, coreml: CoreMLEntry, problems: list[str]) -> WeightReport | None:
    """The combined weight report of a component's programs, adding to ``problems`` where the manifest's
    per-package and per-component bits or its compression claim do not hold; None if a program is unreadable."""
    reports = []
    for package in coreml.packages:
        loaded = context.packages.get(package.path)
        if loaded is None:
            problems.append(f"{package.path}: no readable program to read bits from (see programs)")
            return None
        reports.append(loaded.weights)
        if not _same_bits(package.bits, loaded.weights):
            problems.append(f"{package.path}: the manifest claims {_describe(package.bits)}, the program holds "
                            f"{_describe(Bits.of(loaded.weights))}")
    combined = WeightReport(tuple(w for r in reports for w in r.weights))
    if not _same_bits(coreml.bits, combined):
        problems.append(f"component {name}: the manifest claims {_describe(coreml.bits)}, its programs hold "
                        f"{_describe(Bits.of(combined))}")
    claim = coreml.compression
    widths = {b for b in combined.histogram if b < 16}
    if not claim.palettized:
        permitted = set()
    else:
        permitted = set(MIXED_BITS) if claim.bits == "mixed" else {claim.bits}
    if not widths <= permitted or (claim.palettized and not widths):
        held = f"{sorted(widths)}-bit palettes" if widths else "no palettes"
        problems.append(f"component {name}: the manifest claims {_claim(claim)}, the programs hold {held}")
    return combined


def _same_bits(claimed: Bits, report: WeightReport) -> bool:
    actual = Bits.of(report)
    return (math.isclose(claimed.average, actual.average, abs_tol=1e-3) and claimed.histogram == actual.histogram
            and claimed.weight_elements == actual.weight_elements)


def _describe(bits: Bits) -> str:
    widths = ", ".join(f"{k}-bit {v}" for k, v in sorted(bits.histogram.items()))
    return f"{bits.average:g} bits on average ({widths})"


def _claim(compression: Compression) -> str:
    return f"kmeans {compression.bits}-bit" if compression.palettized else "no palettization"
