"""A student's report and a class summary: JSON for tools, HTML for people, CSV and text for the terminal.

A report lists every named check with its status (``passed``, ``failed``, ``blocked``: not run
because a check it needs failed, ``unverified``: passed, but only against the submission's own
data, for want of a reference bundle; shown as "not verified (no reference)"), points, reason and
details. Only ``passed`` checks earn points; every check counts in the total, so a submission
graded without a reference bundle never gets full marks, and its report says so at the top.
Everything a submission controls (file names, messages) is escaped in HTML; non-finite numbers
are written to JSON as strings (``"inf"``).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tryon_lab import __version__
from tryon_lab.tables import format_table

FORMAT = "tryon-lab-grade"
CHECK_STATUSES = ("passed", "failed", "blocked", "unverified")
EXIT_CODES = {"passed": 0, "failed": 1, "unreadable": 2, "running": 1}
NOT_VERIFIED = "not verified (no reference)"  # how reports show the status "unverified"
NO_REFERENCE = ("Graded without a reference bundle (--reference): checks that can only compare a submission with "
                "itself earn no points, so no bundle gets full marks")


@dataclass
class CheckResult:
    """One named check: ``status`` (passed / failed / blocked / unverified), ``points`` it is worth and
    ``earned``, a one-line ``reason``, ``details`` (problems or notes), measurement ``rows``, its
    ``seconds``, and ``error``: set when the grader itself hit an unexpected exception."""

    name: str
    title: str
    status: str
    points: float
    earned: float
    reason: str
    details: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class Report:
    """A graded submission: who, what, the ``checks`` and the overall ``status`` (passed, failed,
    unreadable; ``running`` while a grading process is still writing it); ``aborted`` says why a
    grading process stopped early (a timeout, a crash), if it did."""

    student: str
    submission: str
    rubric: str
    reference: str | None
    status: str = "running"
    checks: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    graded_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    seconds: float = 0.0
    grader: str = f"tryon_lab {__version__}"
    aborted: str | None = None  # why the grading process stopped early (timeout, crash), if it did

    @property
    def score(self) -> float:
        """Points earned."""
        return sum(c.earned for c in self.checks)

    @property
    def max_score(self) -> float:
        """Points of every check."""
        return sum(c.points for c in self.checks)

    @property
    def warning(self) -> str | None:
        """What the report opens with when it was graded without a reference bundle, else None."""
        if self.reference is not None:
            return None
        unverified = [c for c in self.checks if c.status == "unverified"]
        listed = (f"; {NOT_VERIFIED}: {', '.join(c.name for c in unverified)} "
                  f"({_num(sum(c.points for c in unverified))} points)") if unverified else ""
        return f"{NO_REFERENCE}{listed}."

    @property
    def exit_code(self) -> int:
        """0 passed, 1 a check failed, 2 the submission could not be read."""
        return EXIT_CODES[self.status]

    def check(self, name: str) -> CheckResult:
        """The result of check ``name`` (``KeyError`` if it was not run)."""
        for result in self.checks:
            if result.name == name:
                return result
        raise KeyError(name)

    def failed_checks(self) -> list[str]:
        """Names of the checks that failed or were blocked."""
        return [c.name for c in self.checks if c.status in ("failed", "blocked")]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (score and exit code included)."""
        data = {"format": FORMAT, "format_version": 2, "warning": self.warning, **asdict(self), "score": self.score,
                "max_score": self.max_score, "exit_code": self.exit_code}
        return _jsonable(data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """Inverse of ``to_json``."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["checks"] = [CheckResult(**c) for c in data.get("checks", [])]
        return cls(**fields)

    def table(self) -> str:
        """The checks as a text table, with a result line."""
        rows = [[c.name, c.status.upper() if c.status == "failed" else status_label(c.status),
                 f"{_num(c.earned)}/{_num(c.points)}", c.reason[:110]] for c in self.checks]
        lines = [f"{self.student}: {self.submission}", *([self.warning] if self.warning else []),
                 format_table(rows, ["check", "result", "points", "reason"])]
        lines.append(f"{self.status.upper()}  {_num(self.score)}/{_num(self.max_score)} points")
        return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:g}"


def status_label(status: str) -> str:
    """How reports show a check's ``status``."""
    return NOT_VERIFIED if status == "unverified" else status


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())  # numpy scalars
    return value


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(data: Any, path: Path) -> Path:
    """Write JSON-ready ``data`` to ``path`` atomically."""
    return write_text(path, json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")


def read_report(path: Path) -> Report:
    """Load a ``report.json`` written by ``write_report``."""
    return Report.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write ``folder/report.json`` and ``folder/report.html``; return both paths."""
    folder = Path(folder)
    return (write_json(report.to_json(), folder / "report.json"),
            write_text(folder / "report.html", render_html(report)))


_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.passed { color: #0a6b2d; font-weight: 600; } .failed, .unreadable, .blocked { color: #b00020; font-weight: 600; }
.unverified { color: #8a5a00; font-weight: 600; } .running { color: #777; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f5f5f5; padding: 0 .2em; } small { color: #666; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    return html.escape(str(value))


def _rows_table(rows: list[dict[str, Any]]) -> str:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(h, ''))}</td>" for h in headers) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: Report) -> str:
    """One student's report as a self-contained HTML page: the summary table, then each check's details."""
    e = html.escape
    summary = "".join(
        f"<tr><td><a href=\"#{e(c.name)}\">{e(c.name)}</a></td><td>{e(c.title)}</td>"
        f"<td class=\"{e(c.status)}\">{e(status_label(c.status))}</td>"
        f"<td class=\"num\">{_num(c.earned)} / {_num(c.points)}</td><td>{e(c.reason)}</td></tr>" for c in report.checks)
    sections = []
    for c in report.checks:
        parts = [f"<h3 id=\"{e(c.name)}\">{e(c.name)} "
                 f"<small class=\"{e(c.status)}\">{e(status_label(c.status))}</small></h3>",
                 f"<p>{e(c.reason)} <small>({c.seconds:.1f} s)</small></p>"]
        if c.details:
            parts.append("<ul>" + "".join(f"<li><code>{e(d)}</code></li>" for d in c.details) + "</ul>")
        if c.rows:
            parts.append(_rows_table(c.rows))
        if c.error:
            parts.append(f"<p><small>grader error: {e(c.error)}</small></p>")
        sections.append("\n".join(parts))
    notes = "".join(f"<li>{e(n)}</li>" for n in report.notes)
    body = (f"<h1>{e(report.student)} <span class=\"{e(report.status)}\">{e(report.status.upper())}</span></h1>\n"
            + (f"<p class=\"unverified\">{e(report.warning)}</p>\n" if report.warning else "")
            + f"<p><b>{_num(report.score)} / {_num(report.max_score)}</b> points &middot; submission "
            f"<code>{e(report.submission)}</code> &middot; rubric {e(report.rubric)} &middot; reference "
            f"<code>{e(report.reference or 'none')}</code> &middot; graded {e(report.graded_at)} in "
            f"{report.seconds:.1f} s by {e(report.grader)}</p>\n"
            + (f"<p class=\"failed\">Grading stopped early: {e(report.aborted)}</p>\n" if report.aborted else "")
            + (f"<ul>{notes}</ul>\n" if notes else "")
            + "<table><tr><th>check</th><th>what</th><th>result</th><th>points</th><th>reason</th></tr>"
            f"{summary}</table>\n" + "\n".join(sections))
    return _page(f"{report.student}: {report.status}", body)


def render_class_html(reports: list[Report], links: dict[str, str] | None = None) -> str:
    """A class summary page: one row per student (linked to ``links[student]``), one column per check."""
    e = html.escape
    links = links or {}
    names = list(dict.fromkeys(c.name for r in reports for c in r.checks))
    head = "".join(f"<th>{e(n)}</th>" for n in names)
    rows = []
    for r in reports:
        student = f"<a href=\"{e(links[r.student])}\">{e(r.student)}</a>" if r.student in links else e(r.student)
        cells = "".join(_check_cell(r, n) for n in names)
        rows.append(f"<tr><td>{student}</td><td class=\"{e(r.status)}\">{e(r.status)}</td>"
                    f"<td class=\"num\">{_num(r.score)} / {_num(r.max_score)}</td>{cells}</tr>")
    passed = sum(r.status == "passed" for r in reports)
    warning = f"<p class=\"unverified\">{e(NO_REFERENCE)}.</p>\n" if any(r.warning for r in reports) else ""
    body = (f"<h1>Class grading: {passed} of {len(reports)} passed</h1>\n{warning}"
            f"<table><tr><th>student</th><th>result</th><th>points</th>{head}</tr>{''.join(rows)}</table>")
    return _page("class grading", body)


def _check_cell(report: Report, name: str) -> str:
    try:
        c = report.check(name)
    except KeyError:
        return "<td></td>"
    return (f"<td class=\"{html.escape(c.status)}\" title=\"{html.escape(c.reason)}\">"
            f"{html.escape(status_label(c.status))}</td>")


def summary_csv(reports: list[Report]) -> str:
    """CSV text: one row per student with status, score, every check's status and the first failure's reason."""
    names = list(dict.fromkeys(c.name for r in reports for c in r.checks))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "submission", "status", "score", "max_score", "seconds", *names, "first_failure"])
    for r in reports:
        statuses = [_status(r, n) for n in names]
        failures = [c for c in r.checks if c.status == "failed"]
        first = f"{failures[0].name}: {failures[0].reason}" if failures else ""
        writer.writerow([_csv_safe(v) for v in (r.student, r.submission, r.status, f"{r.score:g}", f"{r.max_score:g}",
                                                f"{r.seconds:.1f}", *statuses, first)])
    return buffer.getvalue()


def _csv_safe(value: str) -> str:
    # A reason quotes file names from the submission; a leading = + - @ would be a spreadsheet formula.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _status(report: Report, name: str) -> str:
    try:
        return report.check(name).status
    except KeyError:
        return ""
