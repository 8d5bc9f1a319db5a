"""Grade many submissions: each in its own process, in parallel, with a time and memory limit.

A submission is graded in a child process forked from a forkserver that imported the grader
once, so starting one costs milliseconds while a crash in a native parser (coremltools,
ExecuTorch), runaway memory or a hang costs that student's grade only: the parent kills the child
after ``limits.timeout_seconds``, reads the partial report the child kept up to date, and marks
the check that was running as failed. One bad submission never stops the run. The parent writes
``summary.csv``, ``summary.json`` and ``index.html`` beside the students' folders, listing every
student graded into that folder, by this run or an earlier one: grading one more submission adds
it to a class's summary instead of replacing the summary. A student folder that holds another
submission's report is replaced only when asked (``force``). Children re-import the main module,
so a script calling ``grade_class`` needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tryon_lab.grading.errors import GradingInputError
from tryon_lab.grading.report import (
    CheckResult,
    Report,
    read_report,
    render_class_html,
    render_html,
    summary_csv,
    write_json,
    write_report,
    write_text,
)
from tryon_lab.grading.rubric import Rubric
from tryon_lab.grading.submission import student_name

SUMMARY_FILES = ("summary.csv", "summary.json", "index.html")
# Imported once by the forkserver, so every child starts with them loaded.
PRELOAD = ["tryon_lab.grading.grader", "tryon_lab.export.verify", "tryon_lab.export.mil", "tryon_lab.export.runner",
           "tryon_lab.metrics.image", "coremltools", "coremltools.converters.mil.frontend.milproto.load", "diffusers"]


@dataclass(frozen=True)
class Job:
    """One submission to grade in a child process: ``source``, its output folder ``out``, the
    ``student`` name, the ``rubric``, the ``reference`` bundle path, ``keep_files`` and the child's
    torch ``threads``."""

    source: Path
    out: Path
    student: str
    rubric: Rubric
    reference: Path | None
    keep_files: bool
    threads: int


@dataclass(frozen=True)
class ClassRun:
    """The result of ``grade_class``: this run's ``reports`` (in input order), the ``summary_csv`` and
    ``index_html`` written (they list ``listed`` students: this run's and earlier ones'), the
    wall-clock ``seconds`` and ``notes``."""

    reports: list[Report]
    summary_csv: Path
    index_html: Path
    seconds: float
    notes: tuple[str, ...] = ()
    listed: int = 0

    @property
    def exit_code(self) -> int:
        """The worst student's exit code: 0 all passed, 1 a check failed, 2 a submission was unreadable."""
        return max((r.exit_code for r in self.reports), default=0)


def find_submissions(folder: str | Path, exclude: Sequence[str | Path] = ()) -> tuple[list[Path], list[str]]:
    """The submissions in ``folder`` (each subfolder and ``.zip``, by name, but not the ``exclude``d paths,
    e.g. the output folder) and notes on what was ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingInputError(f"class folder {folder} is not a folder")
    skip = {Path(p).resolve() for p in exclude}
    found, notes = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.resolve() in skip:
            continue
        if entry.is_dir() or entry.suffix.lower() == ".zip":
            found.append(entry)
        else:
            notes.append(f"ignored {entry.name}: not a folder or a .zip")
    return found, notes


def submissions_to_grade(paths: Sequence[str | Path], class_dir: str | Path | None,
                         out: str | Path) -> tuple[list[Path], list[str]]:
    """The submissions to grade: ``paths``, or those ``find_submissions`` sees in ``class_dir`` (leaving out
    the output folder ``out``), with notes on what was ignored. ``GradingInputError`` unless exactly one
    of ``paths`` and ``class_dir`` is given, or if the class folder holds no submission."""
    if bool(paths) == bool(class_dir):
        raise GradingInputError("give SUBMISSION paths or --class DIR, not both and not neither")
    if not class_dir:
        return [Path(p) for p in paths], []
    sources, notes = find_submissions(class_dir, exclude=[out])
    if not sources:
        raise GradingInputError(f"{class_dir} holds no submissions (folders or .zip files)")
    return sources, notes


def write_run_reports(run: ClassRun, out: str | Path, json_path: str | Path | None = None,
                      html_path: str | Path | None = None, single: bool = False) -> None:
    """Also write ``run``'s reports as JSON at ``json_path`` and HTML at ``html_path``: its one report if
    ``single``, else a list and a class page linking each student's report in ``out``."""
    if json_path:
        write_json(run.reports[0].to_json() if single else [r.to_json() for r in run.reports], Path(json_path))
    if html_path:
        html = Path(html_path)
        links = {r.student: os.path.relpath(Path(out, r.student, "report.html"), html.parent.resolve())
                 for r in run.reports}
        write_text(html, render_html(run.reports[0]) if single else render_class_html(run.reports, links))


def grade_job(job: Job) -> None:
    """Child process entry: grade ``job`` into ``job.out`` (the report is the result)."""
    import torch

    from tryon_lab.grading.grader import grade_submission
    from tryon_lab.grading.reference import load_reference

    _limit_memory(job.rubric.limits.memory_bytes)
    torch.set_num_threads(job.threads)
    reference = load_reference(job.reference, check_hashes=False) if job.reference else None
    grade_submission(job.source, job.out, job.rubric, reference, job.student, job.keep_files)


def _limit_memory(limit: int) -> None:
    if limit <= 0:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # not enforceable on this platform (macOS): the timeout still applies


def grade_class(sources: Sequence[str | Path], out: str | Path, rubric: Rubric, reference: str | Path | None = None,
                jobs: int | None = None, timeout: float | None = None, keep_files: bool = False,
                worker: Callable[[Job], None] = grade_job,
                log: Callable[[str], None] = print, force: bool = False) -> ClassRun:
    """Grade every submission in ``sources`` into ``out/<student>/`` with ``jobs`` processes at a time.

    ``reference`` must already be checked (``load_reference``) by the caller; ``timeout`` (default:
    the rubric's ``limits.timeout_seconds``) bounds each submission. ``worker`` runs in the child
    (tests replace it). A student folder holding the report of another submission is refused
    (``GradingInputError``, before anything is graded) unless ``force``. Returns the ``ClassRun``;
    per-student faults are in the reports, never raised.
    """
    out = Path(out)
    for source in sources:
        if out.resolve().is_relative_to(Path(source).resolve()):
            raise GradingInputError(f"the output folder {out} is inside the submission {source}")
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    timeout = timeout or rubric.limits.timeout_seconds
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(sources) or 1))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    names = _unique_names(sources)
    work = [Job(Path(s), out / name, name, rubric, Path(reference) if reference else None, keep_files, threads)
            for s, name in zip(sources, names)]
    if not force:
        _refuse_replacing(work)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    reports: dict[str, Report] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_isolated, context, job, timeout, worker): job for job in work}
        for future in as_completed(futures):
            report = future.result()
            reports[futures[future].student] = report
            log(progress_line(report))
    ordered = [reports[job.student] for job in work]
    listed = merged_summary(out, ordered)
    csv_name, json_name, html_name = SUMMARY_FILES
    csv_path = write_text(out / csv_name, summary_csv(listed))
    html_path = write_text(out / html_name, render_class_html(listed, {r.student: f"{r.student}/report.html"
                                                                      for r in listed}))
    write_json([r.to_json() for r in listed], out / json_name)
    return ClassRun(ordered, csv_path, html_path, time.perf_counter() - began, listed=len(listed))


def progress_line(report: Report) -> str:
    """The line a class run prints as ``report`` comes in: status, score, time, why the grading process
    stopped early if it did, and the first check that failed with its reason."""
    failed = next((c for c in report.checks if c.status == "failed"), None)
    return (f"  {report.student}: {report.status} {report.score:g}/{report.max_score:g} ({report.seconds:.1f} s)"
            + (f" [{report.aborted}]" if report.aborted else "")
            + (f"; {failed.name}: {failed.reason[:160]}" if failed and not report.aborted else ""))


def _refuse_replacing(work: Sequence[Job]) -> None:
    """``GradingInputError`` naming the first student folder that holds another submission's report."""
    for job in work:
        path = job.out / "report.json"
        try:
            earlier = read_report(path).submission if path.is_file() else None
        except (OSError, ValueError, KeyError, TypeError):
            earlier = None  # a damaged report is no one's grade
        if earlier is not None and Path(earlier).resolve() != job.source.resolve():
            raise GradingInputError(f"{job.out} holds the report of {earlier}, not of {job.source}; pass --force "
                                    "to replace it, or grade into another --out folder")


def merged_summary(out: Path, reports: Sequence[Report]) -> list[Report]:
    """The reports ``out``'s summary lists: the earlier summary's (those whose student folder still holds
    a report), each replaced by this run's of the same student, then this run's other ``reports``."""
    path = out / SUMMARY_FILES[1]
    try:
        earlier = [Report.from_json(r) for r in json.loads(path.read_text())] if path.is_file() else []
    except (OSError, ValueError, KeyError, TypeError):
        earlier = []  # a damaged summary is rebuilt from this run's reports
    merged = {r.student: r for r in earlier if (out / r.student / "report.json").is_file()}
    merged.update({r.student: r for r in reports})
    return list(merged.values())


def _unique_names(sources: Sequence[str | Path]) -> list[str]:
    names: list[str] = []
    taken = set(SUMMARY_FILES)
    for source in sources:
        name, n = student_name(source), 1
        while (name if n == 1 else f"{name}-{n}") in taken:
            n += 1
        names.append(name if n == 1 else f"{name}-{n}")
        taken.add(names[-1])
    return names


def _run_isolated(context, job: Job, timeout: float, worker: Callable[[Job], None]) -> Report:
    """Run ``worker(job)`` in a child process with ``timeout``; return the report it wrote or one that says why not."""
    job.out.mkdir(parents=True, exist_ok=True)
    stale = job.out / "report.json"
    if stale.exists():
        stale.unlink()  # a previous run's report must not pass for this one's
    began = time.perf_counter()
    process = context.Process(target=worker, args=(job,), name=f"grade-{job.student}", daemon=True)
    try:
        process.start()
    except OSError as err:
        return finish_report(job, f"no grading process could be started ({err})", time.perf_counter() - began)
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        why = f"timed out after {timeout:g} s (limits.timeout_seconds)"
    elif process.exitcode:
        why = f"the grading process died ({_exit_name(process.exitcode)})"
    else:
        why = None
    return finish_report(job, why, time.perf_counter() - began)


def _exit_name(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def finish_report(job: Job, why: str | None, seconds: float) -> Report:
    """The report a child left in ``job.out``; if it did not finish (``why`` says what happened), its
    partial report with the running check failed for that reason and the rest blocked."""
    from tryon_lab.grading.checks import CHECKS

    path = job.out / "report.json"
    try:
        report = read_report(path) if path.exists() else None
    except (ValueError, KeyError, TypeError):
        report = None
    if report is not None and report.status != "running" and why is None:
        return report
    why = why or "the grading process ended without a report"
    if report is None:
        report = Report(job.student, str(job.source), job.rubric.name, str(job.reference) if job.reference else None)
    done = {c.name for c in report.checks}
    running = True  # the first check without a result is the one the process was in
    for check in CHECKS:
        if check.name in done:
            continue
        points = job.rubric.points(check.name)
        if running:
            report.checks.append(CheckResult(check.name, check.title, "failed", points, 0.0,
                                             f"{why} during this check", error=why))
            running = False
        else:
            report.checks.append(CheckResult(check.name, check.title, "blocked", points, 0.0,
                                             "not run: the grading process stopped"))
    report.status, report.aborted, report.seconds = "failed", why, seconds
    write_report(report, job.out)
    return report
