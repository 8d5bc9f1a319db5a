"""``tryon-lab info``: the environment report."""

from __future__ import annotations

import argparse

from tryon_lab.cli.parsing import command


def add_info(subparsers) -> None:
    """Register ``info``."""
    parser = command(
        subparsers,
        "info",
        "Show versions, CPU/GPU, torch threads, the active profile and the build folder.",
        "  tryon-lab info\n  TRYON_LAB_PROFILE=smoke tryon-lab info --json",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    """Print the environment report, as a table or as JSON."""
    import json

    from tryon_lab.environment import environment_report, format_report

    report = environment_report()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
