"""What every ``tryon-lab`` command's parser shares: the one-line refusing parser, ``command`` (a
subcommand whose help ends with examples), ``--verbose``, exit statuses, and argparse types that
refuse bad values before any work starts."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line, like the package's own errors (its subparsers
    are of this class too)."""

    def error(self, message: str):
        """Print ``error: <prog>: message`` and where to look, then exit with status 2."""
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def add_verbose(parser: argparse.ArgumentParser, default) -> None:
    """Add ``--verbose`` to ``parser`` with ``default`` (``argparse.SUPPRESS`` on subcommands)."""
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show third-party libraries' messages (torch, diffusers, coremltools, ExecuTorch); "
                             "by default they go to build/logs/tryon-lab-<command>.log "
                             "(under $TRYON_LAB_BUILD_DIR when set)")


def command(subparsers, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    """Register the subcommand ``name`` on ``subparsers`` with ``help`` and an ``examples`` epilog; return its parser."""
    parser = subparsers.add_parser(
        name,
        help=help.replace("%", "%%"),  # argparse %-formats help strings, not descriptions
        description=help,
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_verbose(parser, default=argparse.SUPPRESS)  # SUPPRESS: a --verbose before the command still counts
    return parser


def folder_out(text: str) -> str:
    """An output folder's path: refused (before any work) when a file is there."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder to write into")
    return text


def file_out(text: str) -> str:
    """An output file's path: refused (before any work) when a folder is there."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file to write")
    return text


def checked(convert, what: str, ok, bound: str):
    """An argparse type: ``convert`` the text (refused unless it is ``what``), then refuse values for
    which ``ok`` is false (they must be ``bound``)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


count = checked(int, "a whole number", lambda value: value >= 0, ">= 0")
positive = checked(int, "a whole number", lambda value: value >= 1, ">= 1")
seconds = checked(float, "a number of seconds", lambda value: 0 < value < float("inf"), "a positive number")
at_least_two = checked(int, "a whole number", lambda value: value >= 2, ">= 2")
