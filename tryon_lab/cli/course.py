"""``tryon-lab course``: run the course notebooks in order, or sync them with their scripts."""

from __future__ import annotations

import argparse
import sys

from tryon_lab.cli.parsing import EXIT_FAILED, command, folder_out
from tryon_lab.profiles import DEFAULT_PROFILE, PROFILE_NAMES


def add_course(subparsers) -> None:
    """Register ``course``."""
    parser = command(
        subparsers,
        "course",
        "Execute the course notebooks in order and save executed copies.",
        "  tryon-lab course                      # every notebook, quick profile\n"
        "  tryon-lab course --profile smoke      # seconds per notebook (CI)\n"
        "  tryon-lab course --only 00 02 --out build/try\n"
        "  tryon-lab course --sync               # regenerate .ipynb files from their .py pairs",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default=DEFAULT_PROFILE,
        help="sizes and step counts to run with (default: %(default)s)",
    )
    parser.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers")
    parser.add_argument(
        "--out", type=folder_out, default="build/course",
        help="where executed notebooks and artifacts go (default: %(default)s)"
    )
    parser.add_argument("--notebooks", help="folder of NN_*.ipynb notebooks (default: the course's own)")
    parser.add_argument("--cell-timeout", type=float, help="seconds per cell (default: the profile's)")
    parser.add_argument(
        "--sync", action="store_true", help="update the .ipynb files from their .py scripts and exit"
    )
    parser.set_defaults(handler=run_course)


def run_course(args: argparse.Namespace) -> int:
    """Sync the notebooks with ``--sync``, else run them; 1 if a notebook fails."""
    from tryon_lab.course import runner as course  # the course runner: its one import in the CLI

    notebooks = args.notebooks or course.DEFAULT_NOTEBOOKS_DIR
    if args.sync:
        updated = course.sync_pairs(notebooks)
        print(f"updated {len(updated)} file(s)" + "".join(f"\n  {p}" for p in updated))
        return 0
    try:
        runs = course.run_course(
            profile=args.profile,
            only=args.only,
            notebooks_dir=notebooks,
            out_dir=args.out,
            timeout_per_cell=args.cell_timeout,
        )
    except course.CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"executed {len(runs)} notebook(s) into {args.out}")
    return 0
