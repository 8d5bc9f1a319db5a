"""The programs check: every Core ML package reads back as data, with finite weights."""

from __future__ import annotations

from tryon_lab.grading.checks.base import Context, Outcome, check, verdict
from tryon_lab.grading.errors import PackageError
from tryon_lab.grading.packages import load_package


@check("programs", "Every Core ML package reads back as an ML Program (protobuf and weights), all weights finite")
def check_programs(context: Context) -> Outcome:
    """Read back every Core ML package as data (filling ``context.packages``); fail on unreadable ones and non-finite weights."""
    coreml = context.root / "coreml"
    packages = sorted(coreml.glob("*.mlpackage")) if coreml.is_dir() else []
    if not packages:
        return Outcome(False, "no Core ML packages (coreml/*.mlpackage) to read")
    problems, rows = [], []
    for package in packages:
        relative = package.relative_to(context.root).as_posix()
        if not package.is_dir():
            problems.append(f"{relative}: not a package folder")
            continue
        try:
            loaded = load_package(package)
        except PackageError as err:
            problems.append(f"{relative}: {err}")
            continue
        context.packages[relative] = loaded
        if loaded.non_finite:
            first = next(iter(loaded.non_finite))
            problems.append(f"{relative}: {sum(loaded.non_finite.values())} NaN or infinite weight values in "
                            f"{len(loaded.non_finite)} weights (first: {first})")
        rows.append({"package": relative, "weights": loaded.weights.elements,
                     "average bits": round(loaded.weights.average_bits, 3),
                     "non-finite values": sum(loaded.non_finite.values())})
    return verdict(problems, f"{len(packages)} packages read back, all weights finite", rows)
