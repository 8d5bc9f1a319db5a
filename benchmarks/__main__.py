"""``python -m benchmarks NAME [NAME ...]`` (or ``all``): run benchmarks, update RESULTS.md.
``python -m benchmarks check``: list the sections whose measured models changed since (provenance.py)."""

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

RESULTS = Path(__file__).with_name("RESULTS.md")
NAMES = ("inpainting", "dtc", "dreambooth", "export", "app", "grade", "channel-order")
EXTRA = ("export-sd15",)  # long (tens of minutes, SD-1.5 size): run by name only, never by `all`


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


def update_results(name: str, section: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``## name`` section of RESULTS.md, keeping the others."""
    text = path.read_text() if path.is_file() else "# Benchmark results\n\nWritten by `python -m benchmarks NAME`.\n\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    """Parse NAMEs, run each benchmark's ``run()``, print and record its rows; or run the check."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="+", choices=(*NAMES, *EXTRA, "all", "check"), metavar="NAME",
                        help=f"benchmarks to run: {', '.join(NAMES)} or all (all of those); also {', '.join(EXTRA)}; "
                             "or check (sections whose measured models changed since)")
    args = parser.parse_args()
    if "check" in args.names and len(args.names) > 1:
        parser.error("check runs alone")
    if args.names == ["check"]:
        from benchmarks.provenance import check, report

        result = check(RESULTS)
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
