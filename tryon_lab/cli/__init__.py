"""The ``tryon-lab`` command line: it parses arguments and calls the package.

Each command group is a module (``course``, ``data``, ``train``, ``models``, ``info``, ``export``,
``app``, ``grade``) whose ``add_<name>(subparsers)`` functions register a parser (via
``parsing.command``, whose help ends with examples) and a handler ``run_<name>(args) -> int``;
handlers import their heavy modules inside, so ``tryon-lab --help`` stays fast. Input errors
(``TryOnInputError``, and arguments argparse refuses) become a one-line ``error: ...`` on stderr
and exit status 2; a failed course notebook exits with status 1. Third-party output goes to a log
file unless ``--verbose`` (``tryon_lab.quiet``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import nullcontext

from tryon_lab import __version__, quiet
from tryon_lab.cli import app, course, data, export, grade, info, models, train
from tryon_lab.cli.parsing import EXIT_BAD_INPUT, EXIT_FAILED, Parser, add_verbose
from tryon_lab.errors import TryOnInputError

# Commands that draw their own progress bars or notes on stderr; the others' stderr is all third-party.
STDERR_COMMANDS = ("course", "pretrain", "train-dtc", "dtc-curve", "distill", "distill-vae", "dreambooth", "tryon")
# Commands that never import torch: no need to import the noisy libraries up front.
TORCH_FREE_COMMANDS = ("course", "world")
# In the order ``tryon-lab --help`` lists them.
COMMANDS = (course.add_course, data.add_world, train.add_pretrain, train.add_curve, train.add_train_dtc,
            train.add_dtc_curve, train.add_distill, train.add_distill_vae, models.add_tryon, train.add_dreambooth, info.add_info,
            export.add_export, export.add_verify, app.add_app,
            grade.add_grade, models.add_upgrade)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return the exit status.

    Unless ``--verbose``, third-party output goes to ``quiet.log_path(command)``, named on stderr
    when the command fails or crashes.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    log = quiet.log_path(args.command)
    output = nullcontext() if args.verbose else quiet.third_party_to_log(
        log, preload=args.command not in TORCH_FREE_COMMANDS, keep_stderr=args.command in STDERR_COMMANDS)
    log_note = "" if args.verbose else f"third-party output of this run: {log}"
    try:
        with output:
            status = args.handler(args)
    except TryOnInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        if log_note:
            print(log_note, file=sys.stderr)
        raise
    if status == EXIT_FAILED and log_note:
        print(log_note, file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    """Return the ``tryon-lab`` parser with every subcommand registered."""
    parser = Parser(
        prog="tryon-lab",
        description="On-device diffusion virtual try-on: the course runner and toolkit.",
        epilog="Run `tryon-lab <command> --help` for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_verbose(parser, default=False)
    subparsers = parser.add_subparsers(title="commands", metavar="<command>", dest="command", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser
