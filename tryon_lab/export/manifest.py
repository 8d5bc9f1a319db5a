"""The bundle manifest (``manifest.json``): its schema as frozen dataclasses, parsed and validated once.

``tryon-lab export`` builds a ``Manifest`` and writes ``Manifest.to_json()``; ``verify``, the app,
the grader and the grading corpus read one with ``read_manifest`` (or ``Manifest.from_json``) and
never look into the JSON themselves. Parsing checks every field's type and range, that every path
stays inside the bundle and names files the manifest hashes, and the format version; what is wrong
is one ``ManifestError`` (a ``BundleError``) naming the field, e.g. ``components.Unet.coreml.bits``,
with every problem found (one per section) in ``problems``. A manifest arrives from students and
strangers, so nothing in it is trusted: numbers are bounded, names are plain identifiers, and the
scheduler can only be one of the known samplers.

manifest.json fields::

    format: "tryon-lab-bundle"; format_version: 2; created_by; created_at (UTC ISO 8601); source_model
    runtime: resolution, latent_size, vae_scale_factor, vae_scaling_factor, unet_batch, unet_channels,
             latent_mask, image_range, conditioning ("text" or "reference"), then for text: token_length;
             for reference (DTC): reference_tokens, reference, hint (how to make them), empty_hint
    scheduler: the diffusers scheduler config (``_class_name`` names it)
    tokenizer: {vocab, merges, max_length} (paths of the BPE files), or null without Core ML or a text model
    targets: the targets written, of ["coreml", "executorch"]
    components.<Name>: inputs, outputs ([{name, shape, dtype}]), golden (path),
      coreml: {precision, deployment_target, conversion_psnr, psnr, compression, bits, size_bytes,
               packages: [{name, path, inputs, outputs, bits, size_bytes}], chunking, attention}
        attention: "original" or "split_einsum" (``ane_attention``); a manifest without it reads as "original"
        compression: {mode: "none"} or {mode: "kmeans", bits: 8|6|4|"mixed", granularity, group_size,
                      weight_threshold[, target_psnr, target_bits, allocation]}
        bits: {average, histogram: {"<bits>": elements}, weight_elements, weight_bytes}
        chunking: null or {chunks, balance, max_abs_difference_vs_unchunked}
      executorch: {path, quantization, size_bytes}
    golden: {tryon, prompt (null for a DTC model), steps, guidance_scale, seed}
    files: {"<relative path>": {sha256, bytes}} for every file but manifest.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from tryon_lab.export.conditioning import CONDITIONINGS, Conditioning
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest_entries import (
    GRANULARITIES,
    PRECISIONS,
    QUANTIZATIONS,
    TARGETS,
    Bits,
    Chunking,
    ComponentEntry,
    Compression,
    CoreMLEntry,
    ExecuTorchEntry,
    FileEntry,
    Package,
)
from tryon_lab.export.manifest_fields import (
    MAX_INT,
    NAME,
    Invalid,
    optional,
    read_key,
    read_list,
    read_object,
    read_path,
    read_text,
    show,
)
from tryon_lab.export.manifest_sections import MAX_STEPS, GoldenTryOn, Runtime, TokenizerFiles

MANIFEST = "manifest.json"
FORMAT = "tryon-lab-bundle"
FORMAT_VERSION = 2
# Why an older bundle cannot be read: its programs expect other inputs than this version feeds them.
RETIRED_FORMATS = {1: "version 1 fed the U-Net [noisy latent, masked-image latent, mask]; "
                      "version 2 uses diffusers' order [noisy latent, mask, masked-image latent]"}
SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler", "LCMScheduler")
T = TypeVar("T")

__all__ = ["FORMAT", "FORMAT_VERSION", "GRANULARITIES", "MANIFEST", "MAX_INT", "MAX_STEPS", "NAME", "PRECISIONS",
           "QUANTIZATIONS", "RETIRED_FORMATS", "SCHEDULERS", "TARGETS", "Bits", "Chunking", "ComponentEntry",
           "Compression", "CoreMLEntry", "ExecuTorchEntry", "FileEntry", "GoldenTryOn", "Manifest", "ManifestError",
           "Package", "Runtime", "TokenizerFiles", "parse_manifest", "read_manifest", "write_manifest"]


class ManifestError(BundleError):
    """A manifest that does not parse: ``problems`` lists ``(field, what is wrong)``, the first one
    is ``field`` and leads the message."""

    def __init__(self, where: str, problems: list[tuple[str, str]]) -> None:
        self.field, first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: field {self.field}: {first}{more}")
        self.problems = problems

    def details(self) -> list[str]:
        """Every problem as ``"field: what is wrong"``."""
        return [f"{name}: {problem}" for name, problem in self.problems]


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest (format ``FORMAT_VERSION``); see the module docstring for the fields."""

    created_by: str
    created_at: str
    source_model: str
    runtime: Runtime
    scheduler: dict[str, Any]
    tokenizer: TokenizerFiles | None
    targets: tuple[str, ...]
    components: dict[str, ComponentEntry]
    golden: GoldenTryOn
    files: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def conditioning(self) -> Conditioning:
        """What the bundle's U-Net is conditioned on."""
        return CONDITIONINGS[self.runtime.conditioning]

    def to_json(self) -> dict[str, Any]:
        """Return manifest.json's content."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "created_by": self.created_by,
                "created_at": self.created_at, "source_model": self.source_model, "runtime": self.runtime.to_json(),
                "scheduler": self.scheduler, "tokenizer": self.tokenizer.to_json() if self.tokenizer else None,
                "targets": list(self.targets), "components": {n: c.to_json() for n, c in self.components.items()},
                "golden": self.golden.to_json(), "files": {p: f.to_json() for p, f in self.files.items()}}

    @classmethod
    def from_json(cls, value: Any, where: str = MANIFEST) -> Manifest:
        """Parse and validate manifest.json's content; ``ManifestError`` (naming the field and
        ``where`` it came from) for any problem, or one for a retired ``format_version``."""
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise BundleError(f"{where} is not a {FORMAT} manifest")
        version = value.get("format_version")
        if version != FORMAT_VERSION:
            why = f" ({RETIRED_FORMATS[version]})" if isinstance(version, int) and version in RETIRED_FORMATS else ""
            raise ManifestError(where, [("format_version", f"bundle format_version {show(version)} cannot be read "
                                         f"by this tryon-lab, which reads version {FORMAT_VERSION}{why}; export the "
                                         "model again with `tryon-lab export`")])
        problems: list[tuple[str, str]] = []

        def section(read: Callable[[], T]) -> T | None:
            try:
                return read()
            except Invalid as err:
                problems.append((err.name, err.problem))
                return None

        text = {key: section(lambda key=key: read_text(read_key(value, key, ""), key))
                for key in ("created_by", "created_at", "source_model")}
        runtime = section(lambda: Runtime.from_json(read_key(value, "runtime", "")))
        scheduler = section(lambda: _scheduler(read_key(value, "scheduler", "")))
        tokenizer = section(lambda: optional(TokenizerFiles.from_json)(read_key(value, "tokenizer", ""), "tokenizer"))
        targets = section(lambda: _targets(read_key(value, "targets", "")))
        entries = section(lambda: read_object(read_key(value, "components", ""), "components")) or {}
        components = {}
        for name, entry in entries.items():
            components[name] = section(lambda name=name, entry=entry: ComponentEntry.from_json(
                read_text(name, "components", pattern=NAME), entry, f"components.{name}"))
        golden = section(lambda: GoldenTryOn.from_json(read_key(value, "golden", "")))
        files = section(lambda: _files(read_key(value, "files", "")))
        if problems:
            raise ManifestError(where, problems)
        manifest = cls(**text, runtime=runtime, scheduler=scheduler, tokenizer=tokenizer, targets=targets,
                       components=components, golden=golden, files=files)
        unlisted = manifest.unlisted_paths()
        if unlisted:
            raise ManifestError(where, unlisted)
        return manifest

    def paths(self) -> list[tuple[str, str]]:
        """``(field, path)`` of every path the manifest names besides ``files``."""
        found = [("golden.tryon", self.golden.tryon)]
        if self.tokenizer:
            found += [("tokenizer.vocab", self.tokenizer.vocab), ("tokenizer.merges", self.tokenizer.merges)]
        for name, entry in self.components.items():
            found.append((f"components.{name}.golden", entry.golden))
            if entry.coreml:
                found += [(f"components.{name}.coreml.packages[{i}].path", p.path)
                          for i, p in enumerate(entry.coreml.packages)]
            if entry.executorch:
                found.append((f"components.{name}.executorch.path", entry.executorch.path))
        return found

    def unlisted_paths(self) -> list[tuple[str, str]]:
        """``(field, problem)`` for every path that names neither a hashed file nor a folder of them."""
        listed = set(self.files)
        for path in self.files:
            listed.update(p.as_posix() for p in PurePosixPath(path).parents)
        return [(name, f"{show(path)} names no file listed with a sha256") for name, path in self.paths()
                if path not in listed]


def _scheduler(value: Any) -> dict[str, Any]:
    value = read_object(value, "scheduler")
    read_text(value.get("_class_name"), "scheduler._class_name", SCHEDULERS)
    return value


def _targets(value: Any) -> tuple[str, ...]:
    targets = read_list(value, "targets", lambda v, n: read_text(v, n, TARGETS))
    if len(set(targets)) != len(targets):
        raise Invalid("targets", f"lists a target twice: {show(list(targets))}")
    return targets


def _files(value: Any) -> dict[str, FileEntry]:
    value = read_object(value, "files")
    return {read_path(path, f"files[{path!r:.60}]"): FileEntry.from_json(entry, f"files[{path!r:.60}]")
            for path, entry in value.items()}


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> Manifest:
    """Parse manifest.json's text (``BundleError`` if it is not JSON) into a ``Manifest``."""
    try:
        return Manifest.from_json(json.loads(text), where)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BundleError(f"{where} is not valid JSON: {err}") from None


def read_manifest(bundle: str | Path) -> Manifest:
    """Read ``bundle/manifest.json``; ``BundleError`` if it is missing, not JSON, not a bundle manifest,
    of another ``format_version`` (naming it and why it cannot be read), or malformed (``ManifestError``)."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a bundle: it has no {MANIFEST}")
    return parse_manifest(path.read_bytes(), str(path))


def write_manifest(bundle: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest`` as ``bundle/manifest.json``; return its path. ``ManifestError`` if the reader
    would refuse it (an export never writes a bundle that cannot be read back)."""
    path = Path(bundle) / MANIFEST
    content = manifest.to_json()
    Manifest.from_json(json.loads(json.dumps(content)), str(path))
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path
