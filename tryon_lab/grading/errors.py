"""Typed errors of the grader; all are ``TryOnInputError`` so the CLI exits with status 2 on them.

Faults of a *submission* never escape as exceptions: they become failed checks in its report.
``SubmissionRejected`` carries such a fault from the unpacker to the ``unpack`` check.
"""

from tryon_lab.errors import TryOnInputError


class GradingInputError(TryOnInputError):
    """An input of the grader itself is unusable: a missing path, a bad rubric, a damaged reference."""


class RubricError(GradingInputError):
    """A rubric file is not TOML, names an unknown check or setting, or gives a value of the wrong type."""


class ReferenceBundleError(GradingInputError):
    """The reference bundle is missing, not a bundle, or fails its own manifest."""


class SubmissionRejected(TryOnInputError):
    """A submission was refused before anything in it was read: ``reason`` says why.

    ``unreadable`` is True when there is nothing to grade (no such path, not a folder or a zip,
    a damaged zip), False when the content is unsafe (path traversal, links, bombs, sizes)."""

    def __init__(self, reason: str, unreadable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreadable = unreadable


class PackageError(TryOnInputError):
    """A Core ML package of a submission cannot be read safely; the message says what is wrong."""
