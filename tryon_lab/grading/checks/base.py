"""What every check of a submitted bundle shares: the ``Context`` it reads and fills, the ``Outcome``
it returns, ``Blocked`` for a check that lacks an earlier one's data, and the ``Check`` record.

A fault of the submission is a failed ``Outcome`` whose reason says what is wrong; a check raises
only ``Blocked``. Without a reference bundle, a check that can only compare the submission with
itself (its programs with its own golden files or its own manifest, which a student can make agree
with anything) still fails on a disagreement, but its pass is ``unverified``: it earns no points.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tryon_lab.export.conditioning import TEXT, Conditioning
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import MANIFEST, Manifest, Package, read_manifest
from tryon_lab.grading.filetypes import MAX_JSON_BYTES
from tryon_lab.grading.packages import LoadedPackage
from tryon_lab.grading.reference import Reference
from tryon_lab.grading.rubric import Rubric
from tryon_lab.grading.submission import Unpacked

CORE_COMPONENTS = ("Unet", "VAEEncoder", "VAEDecoder")  # every bundle; the conditioning adds its own
MAX_LISTED = 25  # problems listed per check; the rest are counted


class Blocked(Exception):
    """A check cannot run: something it needs (the unpacked copy, a readable manifest) is missing."""


@dataclass
class Outcome:
    """What a check found: ``passed``, a one-line ``reason``, ``details`` (problems, or notes when
    passed), measurement ``rows``; ``unverified`` marks a pass that proves nothing, because the
    check could only compare the submission with itself (no reference bundle)."""

    passed: bool
    reason: str
    details: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    unverified: bool = False


@dataclass
class Context:
    """What the checks share: the ``source`` submission, the ``work`` folder its copy goes to, the
    ``rubric`` and ``reference``, and what earlier checks produced."""

    source: Path
    work: Path
    rubric: Rubric
    reference: Reference | None = None
    unpacked: Unpacked | None = None
    unreadable: bool = False
    manifest: Manifest | None = None  # set by the manifest check
    parsed: Manifest | BundleError | None = None  # parse_manifest's result, kept
    packages: dict[str, LoadedPackage] = field(default_factory=dict)  # "coreml/X.mlpackage" -> read back
    runners: dict[str, Any] = field(default_factory=dict)  # Core ML runners the numerics check built

    @property
    def root(self) -> Path:
        """The bundle folder of the unpacked copy."""
        if self.unpacked is None:
            raise Blocked("the submission was not unpacked")
        return self.unpacked.root

    def need_manifest(self) -> Manifest:
        """The parsed manifest, or ``Blocked`` if it could not be read."""
        if self.manifest is None:
            raise Blocked("not run: manifest.json could not be read")
        return self.manifest

    def parse_manifest(self) -> Manifest:
        """The copy's manifest, parsed once (over ``MAX_JSON_BYTES`` it is not read); ``BundleError`` if it cannot be."""
        if self.parsed is None:
            path = self.root / MANIFEST
            try:
                if path.is_file() and path.stat().st_size > MAX_JSON_BYTES:
                    raise BundleError(f"{MANIFEST} is over {MAX_JSON_BYTES} bytes")
                self.parsed = read_manifest(self.root)
            except BundleError as err:
                self.parsed = err
        if isinstance(self.parsed, BundleError):
            raise self.parsed
        return self.parsed

    def relative(self, message: str) -> str:
        """``message`` with the copy's absolute paths made relative to the bundle."""
        return message.replace(f"{self.root}/", "").replace(str(self.root), ".") if self.unpacked else message


@dataclass(frozen=True)
class Check:
    """A registered check: ``name``, ``title`` for reports, the checks it ``needs``, and ``run``."""

    name: str
    title: str
    needs: tuple[str, ...]
    run: Callable[[Context], Outcome]


def check(name: str, title: str, needs: tuple[str, ...] = ("unpack",)) -> Callable[[Callable[[Context], Outcome]], Check]:
    """Decorator: make ``fn(context) -> Outcome`` the ``Check`` ``name`` (``title`` for reports), which
    ``needs`` these checks to have passed first; the registry in ``tryon_lab.grading.checks`` orders them."""

    def register(fn: Callable[[Context], Outcome]) -> Check:
        return Check(name, title, needs, fn)

    return register


def verdict(problems: list[str], ok: str, rows: list[dict[str, Any]] | None = None) -> Outcome:
    """Passed with reason ``ok`` if there are no ``problems``, else failed on the first of them."""
    if not problems:
        return Outcome(True, ok, rows=rows or [])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    listed = problems[:MAX_LISTED] + ([f"... {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else [])
    return Outcome(False, problems[0] + more, listed, rows or [])


def component_packages(coreml: Path, name: str) -> list[Path]:
    """The packages of component ``name`` in ``coreml/``: ``<name>.mlpackage`` or ``<name>Chunk1..N``."""
    pattern = re.compile(rf"{re.escape(name)}Chunk(\d+)\.mlpackage")
    chunks = sorted(((int(m.group(1)), p) for p in coreml.glob(f"{name}Chunk*.mlpackage")
                     if (m := pattern.fullmatch(p.name))), key=lambda item: item[0])
    single = coreml / f"{name}.mlpackage"
    return [p for _, p in chunks] or ([single] if single.exists() else [])


def submission_conditioning(context: Context) -> Conditioning:
    """The reference bundle's conditioning, else what the submission's manifest declares (text if it cannot be read)."""
    if context.reference:
        return context.reference.manifest.conditioning
    try:
        return context.parse_manifest().conditioning
    except BundleError:
        return TEXT


def expected_components(context: Context) -> list[str]:
    """The components a submission must have: the reference bundle's, else those of its conditioning."""
    if context.reference:
        return list(context.reference.specs)
    return [*submission_conditioning(context).components, *CORE_COMPONENTS]


def unread_packages(context: Context, packages: tuple[Package, ...]) -> str | None:
    """Why ``packages`` cannot run (one was not read back safely by the programs check), or None."""
    unread = [p.path for p in packages if p.path not in context.packages]
    return f"{unread[0]} was not read back safely (see programs)" if unread else None
