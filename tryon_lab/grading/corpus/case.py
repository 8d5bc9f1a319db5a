"""The corpus's records: a ``Case`` (how to make one submission) and a ``Sample`` (one made)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tryon_lab.grading.rubric import Rubric


@dataclass(frozen=True)
class Sample:
    """One submission of the corpus: its ``name`` and ``path``, the check that must fail on it
    (``fault``, None for a good one), what it is (``what``), the report ``status`` it must get, and
    ``forbidden``: a path the grader must never create (where an escaping entry points)."""

    name: str
    path: Path
    fault: str | None
    what: str
    status: str
    forbidden: Path | None = None


@dataclass(frozen=True)
class Case:
    """How to make one sample: ``make(bundle, target, rubric, forbidden)`` writes it at ``target``
    (``.zip`` when ``zipped``)."""

    name: str
    fault: str | None
    what: str
    zipped: bool
    make: Callable[[Path, Path, Rubric, Path], None]
    status: str = "failed"
