"""Grade one submission in this process: unpack it, run every check in order, write its report.

``grade_submission`` writes into the student's output folder only: the unpacked copy
(``submission/``, removed afterwards unless kept), temporary files of the libraries it calls
(``tmp/``, the process's temporary folder while it runs) and ``report.json`` / ``report.html``.
The JSON report is rewritten after every check, so if the process dies (a crash in a native
library, a timeout in a class run) the parent knows which check was running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tryon_lab.grading.checks import CHECKS, Blocked, Context, Outcome
from tryon_lab.grading.reference import Reference
from tryon_lab.grading.report import CheckResult, Report, write_json, write_report
from tryon_lab.grading.rubric import Rubric, load_rubric
from tryon_lab.grading.submission import student_name

WORK_FOLDER = "submission"


def grade_submission(source: str | Path, out: str | Path, rubric: Rubric | None = None,
                     reference: Reference | None = None, student: str | None = None,
                     keep_files: bool = False) -> Report:
    """Grade the folder or zip ``source`` into the folder ``out``; return its ``Report``.

    ``rubric`` defaults to the course rubric. Without ``reference``, checks that can only compare
    the submission with itself (numerics on its own golden data, the try-on, a DTC bundle's
    contract) are ``unverified`` when they pass and earn no points. A fault of the submission never
    raises: it is a failed check. ``keep_files`` keeps the unpacked copy in ``out/submission``.
    """
    source, out = Path(source), Path(out)
    rubric = rubric or load_rubric()
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORK_FOLDER
    if work.exists():
        shutil.rmtree(work)  # a previous grading of the same student
    report = Report(student or student_name(source), str(source), rubric.name,
                    str(reference.path) if reference else None)
    context = Context(source, work, rubric, reference)
    try:
        with temporary_folder(out / "tmp"):
            for check in CHECKS:
                report.checks.append(run_check(check, context, report, rubric))
                write_json(report.to_json(), out / "report.json")
    finally:
        if not keep_files:
            shutil.rmtree(work, ignore_errors=True)
    if context.unpacked is not None:
        report.notes += [f"unpacked: {note}" for note in context.unpacked.notes]
    report.status = "unreadable" if context.unreadable else ("failed" if report.failed_checks() else "passed")
    report.seconds = time.perf_counter() - began
    write_report(report, out)
    return report


def run_check(check, context: Context, report: Report, rubric: Rubric) -> CheckResult:
    """Run one registered check (or block it if a check it needs did not pass) into a ``CheckResult``."""
    points = rubric.points(check.name)
    done = {c.name: c.status for c in report.checks}
    failed = [name for name in check.needs if done.get(name) not in ("passed", "unverified")]
    if failed:
        return CheckResult(check.name, check.title, "blocked", points, 0.0, f"not run: {failed[0]} did not pass")
    began = time.perf_counter()
    status, error = None, None
    try:
        outcome = check.run(context)
    except Blocked as blocked:
        outcome, status = Outcome(False, str(blocked)), "blocked"
    except Exception as err:  # a grader bug must cost this check, not the class run; the report keeps the trace
        outcome = Outcome(False, f"the grader could not complete this check ({type(err).__name__}: {err})"[:300])
        error = "".join(traceback.format_exception(err)[-3:])[-2000:]
    if status is None:
        status = "failed" if not outcome.passed else ("unverified" if outcome.unverified else "passed")
    earned = points if status == "passed" else 0.0
    return CheckResult(check.name, check.title, status, points, earned, context.relative(outcome.reason),
                       [context.relative(d) for d in outcome.details], outcome.rows,
                       time.perf_counter() - began, error)


@contextmanager
def temporary_folder(folder: Path) -> Iterator[Path]:
    """Make ``folder`` this process's temporary folder while the block runs (libraries write there, not /tmp)."""
    folder.mkdir(parents=True, exist_ok=True)
    saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = str(folder)
    os.environ["TMPDIR"] = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)
