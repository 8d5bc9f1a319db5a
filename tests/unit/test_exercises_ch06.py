"""Chapter 06 exercises: right answers pass; typical wrong ones get a message naming the problem."""

import hashlib
from pathlib import Path

import pytest

from tryon_lab.course.exercises.ch06 import exercise_average_bits, exercise_tampered_files
from tryon_lab.course.exercises.core import ExerciseError


def tampered_files(folder, files):
    bad = []
    for rel, entry in files.items():
        path = Path(folder) / rel
        if not path.is_file() or path.stat().st_size != entry["bytes"] \
                or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            bad.append(rel)
    return sorted(bad)


def sizes_only(folder, files):
    return sorted(rel for rel, e in files.items()
                  if not (Path(folder) / rel).is_file() or (Path(folder) / rel).stat().st_size != e["bytes"])


def average_bits(histogram):
    if not histogram:
        raise ValueError("empty histogram")
    return sum(int(b) * n for b, n in histogram.items()) / sum(histogram.values())


def test_right_answers_pass(capsys):
    assert exercise_tampered_files(tampered_files)
    assert exercise_average_bits(average_bits)
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize("wrong, message", [
    (sizes_only, "went unnoticed"),
    (lambda folder, files: sorted(files), "intact file"),
    (lambda folder, files: tampered_files(folder, files)[::-1] or ["x"], "not sorted|not in the manifest"),
    (lambda folder, files: {}, "expected a list"),
])
def test_wrong_integrity_checks_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise_tampered_files(wrong)


@pytest.mark.parametrize("wrong, message", [
    (lambda h: sum(int(b) for b in h) / len(h), "every width counts the same"),
    (lambda h: sum(int(b) * n for b, n in h.items()) / sum(h.values()) if h else 0.0, "should raise ValueError"),
    (lambda h: max(map(int, h)) + 1.0, "cannot be"),
    (lambda h: "6", "expected a number"),
])
def test_wrong_averages_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise_average_bits(wrong)


# --- exercise 3: read a failing report, name the fix -------------------------------------------------

from tryon_lab.course.exercises.ch06 import FIX_OF_CHECK, exercise_name_the_fix  # noqa: E402


def name_the_fix(report):
    for check in report["checks"]:
        if check["status"] == "failed":
            return FIX_OF_CHECK[check["name"]]
    return "nothing to fix"


def first_not_passed(report):
    return next((FIX_OF_CHECK[c["name"]] for c in report["checks"] if c["status"] != "passed"), "nothing to fix")


def last_failure(report):
    return next((FIX_OF_CHECK[c["name"]] for c in reversed(report["checks"]) if c["status"] == "failed"),
                "nothing to fix")


def last_failed_or_blocked(report):
    return next((FIX_OF_CHECK[c["name"]] for c in reversed(report["checks"]) if c["status"] in ("failed", "blocked")),
                "nothing to fix")


def test_name_the_fix_right_answer_passes(capsys):
    assert exercise_name_the_fix(name_the_fix)
    assert "✓ name_the_fix passed" in capsys.readouterr().out


def test_name_the_fix_reads_real_reports():
    """The cases are real reports: Report.from_json reads them, and their failed checks are the grader's names."""
    from tryon_lab.course.exercises.ch06 import fix_cases
    from tryon_lab.grading.report import Report

    for case in fix_cases():
        report = Report.from_json(case.args[0])
        assert all(name in FIX_OF_CHECK for name in report.failed_checks())


@pytest.mark.parametrize("wrong, message", [
    (first_not_passed, "unverified|blocked"),
    (last_failure, "last failed check"),
    (last_failed_or_blocked, "blocked check"),
    (lambda report: "re-export", "does not address|unverified"),
    (lambda report: "nothing to fix", "something to fix"),
    (lambda report: "fix the manifest", "not one of the fixes"),
    (lambda report: None, "expected the name of a fix"),
])
def test_wrong_fixes_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercise_name_the_fix(wrong)
