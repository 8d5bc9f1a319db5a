"""Keep the ``tryon-lab`` terminal for the tool's own lines; third-party chatter goes to a log file.

Used only by ``tryon_lab.cli.main``: importing ``tryon_lab`` in a notebook changes nothing.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tryon_lab.paths import build_root

BAR_MODULES = ("diffusers.utils.logging", "transformers.utils.logging")
# Imported while stderr still leads to the log: torch (its _pytree warnings), diffusers and
# transformers give their loggers a stderr handler when first imported.
NOISY_MODULES = ("torch", *BAR_MODULES)


def log_path(command: str) -> Path:
    """Where ``tryon-lab <command>`` writes third-party output: ``<build root>/logs/tryon-lab-<command>.log``."""
    return build_root() / "logs" / f"tryon-lab-{command}.log"


@contextmanager
def third_party_to_log(log: Path, preload: bool = True, keep_stderr: bool = True) -> Iterator[None]:
    """Run the body with third-party output in ``log`` and ``sys.stdout`` (and, with ``keep_stderr``,
    ``sys.stderr``) on the terminal.

    File descriptors 1 and 2 point at the log, so C/C++ prints and child processes land there,
    while the Python streams write to the terminal (the tool's prints, notes and progress bars).
    Library loggers, Python warnings and diffusers'/transformers' loading bars go to the log.
    Without ``keep_stderr`` everything on ``sys.stderr`` goes there too (coremltools' conversion
    bars cannot be switched off). With it, ``preload`` first imports ``NOISY_MODULES``, so that their
    handlers take the stderr that leads to the log (skip it for commands that never import torch).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    streams = ("stdout", "stderr") if keep_stderr else ("stdout",)
    with open(log, "w", buffering=1, encoding="utf-8", errors="replace") as sink, _fds_to(sink) as terminal:
        if keep_stderr and preload:
            for name in NOISY_MODULES:
                importlib.import_module(name)
        with _loggers_to(sink), library_bars_off(), _streams_to(terminal, streams):
            yield


@contextmanager
def library_bars_off() -> Iterator[None]:
    """Hide the loading bars of diffusers and transformers, where already imported ("Loading
    pipeline components", "Loading weights"), restoring them afterwards; pipelines' denoising bars stay."""
    modules = [sys.modules[name] for name in BAR_MODULES if name in sys.modules]
    enabled = [m.is_progress_bar_enabled() for m in modules]
    for m in modules:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m, was_enabled in zip(modules, enabled):
            if was_enabled:
                m.enable_progress_bar()


@contextmanager
def _fds_to(sink: io.TextIOBase) -> Iterator[dict[int, int]]:
    """Point fds 1 and 2 at ``sink``; yield ``{1: copy, 2: copy}`` of what they pointed at before."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        yield saved
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


@contextmanager
def _loggers_to(sink: io.TextIOBase) -> Iterator[None]:
    """Send records of loggers without a handler of their own (torchao, coremltools, ...) and Python
    warnings to ``sink``, where logging's last-resort handler would print them on stderr."""
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)


@contextmanager
def _streams_to(terminal: dict[int, int], names: tuple[str, ...]) -> Iterator[None]:
    """Re-open the ``sys`` streams ``names`` on the saved terminal fds, where they are the console
    streams (under pytest's or a notebook's capture they are left alone)."""
    with ExitStack() as opened:
        replaced: dict[str, tuple[io.TextIOBase, io.TextIOBase]] = {}
        for name in names:
            stream, fd = getattr(sys, name), {"stdout": 1, "stderr": 2}[name]
            if _fileno(stream) == fd:
                terminal_stream = opened.enter_context(open(terminal[fd], "w", buffering=1, encoding=stream.encoding,
                                                            errors=stream.errors, closefd=False))
                replaced[name] = (stream, terminal_stream)
                setattr(sys, name, terminal_stream)
        try:
            yield
        finally:
            for name, (original, terminal_stream) in replaced.items():
                setattr(sys, name, original)
                _repoint_handlers(terminal_stream, original)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _repoint_handlers(old, new) -> None:
    # A library first imported inside the command bound its handler to the terminal stream, which
    # is closed once the command ends.
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)
