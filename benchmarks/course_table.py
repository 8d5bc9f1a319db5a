"""The README's course table, its time column written from the recorded course runs.

``python -m benchmarks record-course`` records a full `tryon-lab course` run as the section
``course-<profile>`` of RESULTS.md (and results.json), then rewrites the last column of each
notebook's row in the README's course table from what is recorded (``course_times``), so the
README states no time that was not measured. ``render`` is what a test compares the README with.
"""

from __future__ import annotations

import re
from pathlib import Path

from tryon_lab.course.runner import RESULTS_JSON, course_times, format_duration
from tryon_lab.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
HEADER = "| notebook | you learn | recorded wall time (2-core CPU) |"
_HEADER = re.compile(r"^\| notebook \| you learn \| [^|]+\|$", re.M)
_ROW = re.compile(r"^(\| (\d\d) [^|]+\|[^|]+\|)[^|]*\|$", re.M)


def time_cell(stem: str, path: str | Path = RESULTS_JSON) -> str:
    """Notebook ``stem``'s recorded times, e.g. "quick 5 min 8 s; smoke 21 s", or "not recorded yet"."""
    times = course_times(stem, profiles=("quick", "smoke", "full"), path=path)
    cells = [f"{profile} {format_duration(seconds)}" for profile, seconds in times.items() if seconds is not None]
    return "; ".join(cells) or "not recorded yet"


def render(text: str, path: str | Path = RESULTS_JSON) -> str:
    """``text`` (the README) with the course table's header and time column written from ``path``."""
    if not _HEADER.search(text):
        raise ValueError("the README has no course table (a row starting '| notebook | you learn |')")
    text = _HEADER.sub(HEADER, text)
    return _ROW.sub(lambda row: f"{row.group(1)} {time_cell(row.group(2), path)} |", text)


def write_readme(readme: Path = README, path: str | Path = RESULTS_JSON) -> bool:
    """Rewrite ``readme``'s course table from ``path``; return whether it changed."""
    old = readme.read_text()
    new = render(old, path)
    if new != old:
        readme.write_text(new)
    return new != old
