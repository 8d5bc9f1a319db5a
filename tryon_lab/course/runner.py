"""Run the course notebooks in order and keep their ``.ipynb`` / ``.py`` pairs in sync.

Each notebook runs in a fresh kernel of this Python interpreter, with ``$TRYON_LAB_PROFILE`` set
and its own working and build directory ``<out_dir>/<profile>/<notebook stem>/``, so ``--only NN``
runs a notebook exactly as the full course would, and one profile's checkpoints and caches never
meet another's (a smoke run's tiny checkpoints would not load into a quick run's models). The
executed copy goes to ``<out_dir>/<name>.ipynb``.
The ``.py`` script (jupytext ``py:percent``) is the source a notebook is edited in; the
committed ``.ipynb`` is generated from it, without outputs.

A full run (every notebook) also writes ``<out_dir>/<profile>/timings.json``, the wall time of each
notebook and its slowest cell; ``python -m benchmarks record-course`` turns a quick run's file into
the ``course-quick`` section of ``benchmarks/RESULTS.md``. Notebooks state measured numbers (their
own times included) only by reading them at run time from that file's machine-readable copy,
``benchmarks/results.json``, through ``recorded`` and ``course_times``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import zmq
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from tqdm.auto import tqdm

from tryon_lab.errors import ConfigError
from tryon_lab.paths import BUILD_DIR_ENV, REPO_ROOT
from tryon_lab.profiles import PROFILE_ENV, load_profile
from tryon_lab.tables import format_table

NUMBERED = re.compile(r"^(\d\d)_.")  # a course file's stem: NN_name
DEFAULT_NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PAIR_FORMAT = "py:percent"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SOURCE_LINES = 12
_TRACEBACK_LINES = 15
RESULTS_JSON = REPO_ROOT / "benchmarks" / "results.json"
TIMINGS_FILE = "timings.json"
COURSE_SECTION = "course-{profile}"  # the RESULTS.md section of a recorded full course run


class CourseError(RuntimeError):
    """A course notebook failed (or a notebook pair is out of sync); the message says where.
    ``runs`` holds the notebooks that completed before the failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.runs: list[NotebookRun] = []


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook: its source, executed copy, wall time and per-cell seconds."""

    name: str
    source: Path
    executed: Path
    seconds: float
    cell_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def slowest_cell(self) -> tuple[int, float] | None:
        """Return ``(cell index, seconds)`` of the slowest code cell, or None if none ran."""
        if not self.cell_seconds:
            return None
        return max(self.cell_seconds.items(), key=lambda item: item[1])


def discover_notebooks(notebooks_dir: str | Path = DEFAULT_NOTEBOOKS_DIR) -> list[Path]:
    """Return the ``NN_*.ipynb`` notebooks in ``notebooks_dir``, ordered by ``NN``."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise ConfigError(f"notebooks folder {folder} does not exist; pass the folder of NN_*.ipynb files")
    return sorted(p for p in folder.iterdir() if p.suffix == ".ipynb" and NUMBERED.match(p.stem))


def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Return the notebooks whose ``NN`` prefix is in ``only`` (all when ``only`` is None)."""
    if not only:
        return notebooks
    numbers = [NUMBERED.match(p.stem).group(1) for p in notebooks]
    wanted = [number.zfill(2) for number in only]
    unknown = [number for number in wanted if number not in numbers]
    if unknown:
        raise ConfigError(
            f"no notebook numbered {', '.join(unknown)}; available: {', '.join(numbers) or 'none'}"
        )
    return [p for p, number in zip(notebooks, numbers) if number in wanted]


def run_course(
    profile: str = "quick",
    only: list[str] | None = None,
    notebooks_dir: str | Path = DEFAULT_NOTEBOOKS_DIR,
    out_dir: str | Path = "build/course",
    timeout_per_cell: float | None = None,
) -> list[NotebookRun]:
    """Execute the course notebooks in order; return one ``NotebookRun`` per notebook.

    ``only`` lists ``NN`` numbers to run; ``timeout_per_cell`` (seconds) defaults to the
    profile's ``course.cell_timeout``. Prints a table of wall times at the end. On the first
    failure the partially executed notebook is written and ``CourseError`` is raised.
    """
    settings = load_profile(profile)["course"]
    timeout = timeout_per_cell if timeout_per_cell is not None else settings["cell_timeout"]
    notebooks = select_notebooks(discover_notebooks(notebooks_dir), only)
    if not notebooks:
        raise ConfigError(f"no NN_*.ipynb notebooks in {notebooks_dir}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    with tqdm(notebooks, desc=f"course ({profile})", unit="notebook") as bar:
        for path in bar:
            bar.set_postfix_str(path.stem)
            try:
                runs.append(run_notebook(path, out, profile, timeout))
            except CourseError as error:
                error.runs = runs
                raise
    print(format_timings(runs))
    if not only:
        write_timings(runs, profile, out / profile / TIMINGS_FILE)
    return runs


def write_timings(runs: list[NotebookRun], profile: str, path: Path) -> Path:
    """Write a full run's per-notebook wall times and slowest cells to ``path`` (JSON); return it."""
    data = {"profile": profile, "notebooks": {
        run.name: {"seconds": round(run.seconds, 1),
                   "slowest_cell": None if run.slowest_cell is None else
                   {"index": run.slowest_cell[0], "seconds": round(run.slowest_cell[1], 1)}}
        for run in runs}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# --- measured numbers, read at run time --------------------------------------------------------------


def recorded_section(section: str, path: str | Path = RESULTS_JSON) -> dict[str, Any]:
    """The ``section`` of the recorded benchmark results (``benchmarks/results.json``, the
    machine-readable copy of RESULTS.md): {"run", "machine", "seconds", "record", "rows"}.
    ``ConfigError`` naming the command that records it when it is absent."""
    path = Path(path)
    try:
        sections = json.loads(path.read_text())["sections"]
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; `python -m benchmarks NAME` writes it beside RESULTS.md") from None
    if section not in sections:
        raise ConfigError(f"{path.name} has no section {section!r} (it has {', '.join(sections)}); "
                          f"record it with `python -m benchmarks {section}`")
    return sections[section]


def recorded(section: str, metric: str, path: str | Path = RESULTS_JSON, note: bool = False) -> Any:
    """The recorded value of ``metric`` in ``section`` (a number where RESULTS.md holds one), or its
    note with ``note=True``; ``ConfigError`` naming the metrics there when it is absent."""
    rows = {row["metric"]: row for row in recorded_section(section, path)["rows"]}
    if metric not in rows:
        raise ConfigError(f"section {section!r} has no metric {metric!r}; it has: {'; '.join(rows)}")
    return rows[metric]["note" if note else "value"]


def course_times(stem: str, profiles: tuple[str, ...] = ("smoke", "quick", "full"),
                 path: str | Path = RESULTS_JSON) -> dict[str, float | None]:
    """{profile: recorded wall seconds of notebook ``stem`` (e.g. "04" or "04_palettization_and_chunking")
    in that profile's recorded course run, or None where none is recorded}."""
    times: dict[str, float | None] = {}
    for profile in profiles:
        try:
            rows = recorded_section(COURSE_SECTION.format(profile=profile), path)["rows"]
        except ConfigError:
            times[profile] = None
            continue
        match = [row["value"] for row in rows if row["metric"] == stem or row["metric"].startswith(f"{stem}_")]
        times[profile] = float(match[0]) if match and isinstance(match[0], (int, float)) else None
    return times


def format_duration(seconds: float | None) -> str:
    """``seconds`` as a reader says it: "40 s", "5 min 8 s"; "not recorded yet" for None."""
    if seconds is None:
        return "not recorded yet"
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"


def times_note(stem: str, path: str | Path = RESULTS_JSON) -> str:
    """A Markdown line with notebook ``stem``'s recorded time per profile, for its opening cell."""
    times = course_times(stem, path=path)
    listed = ", ".join(f"`{profile}` {format_duration(seconds)}" for profile, seconds in times.items())
    return (f"Measured wall time of this notebook in a recorded `tryon-lab course` run (2-core CPU for `smoke` and "
            f"`quick`): {listed}. (`python -m benchmarks record-course` records a run.)")


def run_notebook(path: Path, out_dir: Path, profile: str, timeout: float) -> NotebookRun:
    """Execute one notebook in ``out_dir/<profile>/<stem>/`` and write it to ``out_dir/<name>``."""
    workdir = out_dir / profile / path.stem
    workdir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / path.name
    nb = nbformat.read(path, as_version=4)
    clock = _CellClock()
    client = NotebookClient(
        nb,
        km=AsyncKernelManager(
            kernel_name="python3",
            kernel_spec_manager=_ThisPythonKernels(),
            # Encrypt kernel traffic where pyzmq can: notebooks may show a user's own photos.
            transport_encryption="auto" if zmq.has("curve") else "disabled",
        ),
        timeout=timeout,
        on_cell_execute=clock.start,
        on_cell_executed=clock.stop,
    )
    started = time.perf_counter()
    try:
        client.execute(cleanup_kc=True, cwd=str(workdir), env=_kernel_env(profile, workdir))
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        nbformat.write(nb, executed)
        raise CourseError(_failure_message(path, nb, clock.current, error, executed)) from None
    seconds = time.perf_counter() - started
    nbformat.write(nb, executed)
    return NotebookRun(path.stem, path, executed, seconds, clock.seconds)


def format_timings(runs: list[NotebookRun]) -> str:
    """Return a table of per-notebook wall times, slowest cells and the total."""
    rows = []
    for run in runs:
        slowest = run.slowest_cell
        rows.append(
            [
                run.name,
                len(run.cell_seconds),
                round(run.seconds, 1),
                f"#{slowest[0]} ({slowest[1]:.1f} s)" if slowest else "-",
            ]
        )
    cells = sum(len(run.cell_seconds) for run in runs)
    rows.append(["total", cells, round(sum(run.seconds for run in runs), 1), ""])
    return format_table(rows, ["notebook", "cells", "seconds", "slowest cell"])


def sync_pairs(notebooks_dir: str | Path = DEFAULT_NOTEBOOKS_DIR, check: bool = False) -> list[Path]:
    """Bring each ``NN_*.ipynb`` in line with its ``py:percent`` pair; return the files that differ.

    The ``.py`` script is the source: its cells are written to the ``.ipynb`` (without
    outputs, with stable cell ids). A notebook without a script gets one. With ``check=True``
    nothing is written and ``CourseError`` lists the pairs that are out of sync.
    """
    folder = Path(notebooks_dir)
    stems = sorted(
        {p.stem for p in folder.iterdir() if p.suffix in (".py", ".ipynb") and NUMBERED.match(p.stem)}
    )
    stale = []
    for stem in stems:
        script, notebook = folder / f"{stem}.py", folder / f"{stem}.ipynb"
        if script.exists() and notebook.exists() and _same_cells(script, notebook):
            continue
        stale.append(notebook if script.exists() else script)
        if check:
            continue
        if script.exists():
            jupytext.write(_with_stable_ids(jupytext.read(script)), notebook, fmt="ipynb")
        else:
            jupytext.write(nbformat.read(notebook, as_version=4), script, fmt=PAIR_FORMAT)
    if check and stale:
        listing = "\n".join(f"  {p.name}" for p in stale)
        raise CourseError(
            f"notebook pairs out of sync in {folder}:\n{listing}\n"
            "run `tryon-lab course --sync` to regenerate the .ipynb files from their .py scripts"
        )
    return stale


class _ThisPythonKernels(KernelSpecManager):
    """Resolve the kernel to this interpreter, whatever kernelspecs the user has installed,
    so notebooks import the same ``tryon_lab`` and dependencies as the runner."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


class _CellClock:
    """nbclient hooks that time each code cell and remember which one is running."""

    def __init__(self) -> None:
        self.current: int | None = None
        self.seconds: dict[int, float] = {}
        self._started = 0.0

    def start(self, cell, cell_index: int) -> None:
        self.current = cell_index
        self._started = time.perf_counter()

    def stop(self, cell, cell_index: int, execute_reply) -> None:
        self.seconds[cell_index] = time.perf_counter() - self._started


def _kernel_env(profile: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[PROFILE_ENV] = profile
    env[BUILD_DIR_ENV] = str(workdir)
    # The kernel starts in workdir; make sure it imports the runner's tryon_lab even when the
    # package is used from a source checkout rather than installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _failure_message(
    path: Path, nb: nbformat.NotebookNode, index: int | None, error: Exception, executed: Path
) -> str:
    if index is None:
        return f"{path.name}: the kernel failed before any cell ran: {error}"
    source = nb.cells[index].source.strip().splitlines()
    if len(source) > _SOURCE_LINES:
        source = source[:_SOURCE_LINES] + [f"... ({len(source) - _SOURCE_LINES} more lines)"]
    if isinstance(error, CellExecutionError):
        what = f"{error.ename}: {error.evalue}"
        lines = _ANSI.sub("", error.traceback).strip().splitlines()
        tail = [line for line in lines[-_TRACEBACK_LINES:] if line.strip()]
    else:
        what, tail = f"{type(error).__name__}: {str(error).splitlines()[0]}", []
    return "\n".join(
        [
            f"{path.name} failed in cell index {index}: {what}",
            "cell source:",
            *(f"    {line}".rstrip() for line in source),
            *(["traceback (last lines):", *(f"    {line}" for line in tail)] if tail else []),
            f"partially executed notebook written to {executed}",
        ]
    )


def _same_cells(script: Path, notebook: Path) -> bool:
    def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, dict]]:
        return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]

    return cells(jupytext.read(script)) == cells(nbformat.read(notebook, as_version=4))


def _with_stable_ids(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    # Content-derived ids keep regenerated notebooks byte-identical (no churn in git diffs).
    for index, cell in enumerate(nb.cells):
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
    return nb
