"""``python -m benchmarks NAME [NAME ...]`` (or ``all``): run benchmarks, update RESULTS.md (and its
machine-readable copy, results.json).
``python -m benchmarks check``: list the sections whose measured models changed since (provenance.py).
``python -m benchmarks record-course [TIMINGS]``: record a full `tryon-lab course` run's notebook times
(its ``timings.json``, default build/course/quick/timings.json) as the section ``course-<profile>``, and
write the README's course table from it."""

from __future__ import annotations

import argparse
import importlib
import platform
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmarks.provenance import RESULTS_MD

NAMES = ("inpainting", "dtc", "dtc-steps", "dreambooth", "export", "app", "grade", "channel-order", "judge", "samplers",
         "phone-programs", "phone-loop")
EXTRA = ("export-sd15", "dreambooth-val")  # long (tens of minutes, SD-1.5 size): run by name only, never by `all`
COURSE_MODELS = ("mini-sd-inpaint", "dtc", "world-encoder")  # what a course run's notebooks load


def _machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def render_section(name: str, rows: list[tuple], seconds: float, models: Sequence[str]) -> str:
    """Markdown for one benchmark: a header line with date and machine, the record of the commit and
    the shipped ``models`` it measured, then a metric table."""
    from benchmarks.provenance import record_line

    lines = [f"## {name}", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {_machine()}; took {seconds:.0f} s.", "",
             record_line(models), "",
             "| metric | value | note |", "|---|---|---|"]
    for metric, value, note in rows:
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {metric} | {shown} | {note} |")
    return "\n".join(lines) + "\n"


def update_results(name: str, section: str, path: Path = RESULTS_MD) -> None:
    """Replace (or append) the ``## name`` section of RESULTS.md, keeping the others, and rewrite its
    machine-readable copy (``results.json`` beside it) from the result."""
    from benchmarks.provenance import write_results_json

    text = path.read_text() if path.is_file() else "# Benchmark results\n\nWritten by `python -m benchmarks NAME`.\n\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    write_results_json(path)


def record_course(timings: Path, path: Path = RESULTS_MD) -> str:
    """Write the ``course-<profile>`` section from a full course run's ``timings.json``; return it."""
    import json

    data = json.loads(timings.read_text())
    notebooks = data["notebooks"]
    rows = [(name, entry["seconds"],
             "wall seconds" + (f"; slowest cell #{entry['slowest_cell']['index']} ({entry['slowest_cell']['seconds']} s)"
                               if entry.get("slowest_cell") else ""))
            for name, entry in notebooks.items()]
    rows.append(("total", round(sum(entry["seconds"] for entry in notebooks.values()), 1),
                 f"`tryon-lab course --profile {data['profile']}`, every notebook"))
    name = f"course-{data['profile']}"
    section = render_section(name, rows, sum(entry["seconds"] for entry in notebooks.values()), COURSE_MODELS)
    update_results(name, section, path)
    if path == RESULTS_MD:  # the shipped record: the README's course table states its times
        from benchmarks.course_table import write_readme

        write_readme()
    return section


def main() -> None:
    """Parse NAMEs, run each benchmark's ``run()``, print and record its rows; or run the check."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="+", choices=(*NAMES, *EXTRA, "all", "check"), metavar="NAME",
                        help=f"benchmarks to run: {', '.join(NAMES)} or all (all of those); also {', '.join(EXTRA)}; "
                             "or check (sections whose measured models changed since)")
    if sys.argv[1:2] == ["record-course"]:
        timings = Path(sys.argv[2] if len(sys.argv) > 2 else "build/course/quick/timings.json")
        if not timings.is_file():
            parser.error(f"{timings} does not exist; run `tryon-lab course --profile quick` (every notebook) first")
        print(record_course(timings))
        return
    args = parser.parse_args()
    if "check" in args.names and len(args.names) > 1:
        parser.error("check runs alone")
    if args.names == ["check"]:
        from benchmarks.provenance import check, report

        result = check(RESULTS_MD)
        print(report(result))
        sys.exit(0 if result.passed else 1)
    modules = {name: importlib.import_module(f"benchmarks.{name.replace('-', '_')}")
               for name in (NAMES if args.names == ["all"] else args.names)}
    undeclared = [name for name, module in modules.items() if not hasattr(module, "MODELS")]
    if undeclared:
        parser.error(f"{', '.join(undeclared)}: the module declares no MODELS (the shipped models it measures, "
                     "() for none), which RESULTS.md records")
    for name, module in modules.items():
        began = time.perf_counter()
        rows = module.run()
        section = render_section(name, rows, time.perf_counter() - began, module.MODELS)
        update_results(name, section)
        print(section)


if __name__ == "__main__":
    main()
