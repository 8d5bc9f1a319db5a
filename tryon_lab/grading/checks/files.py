"""Checks of a submission's files: safe unpacking, data formats only, and the bundle's layout."""

from __future__ import annotations

import re
from pathlib import Path

from tryon_lab.export.conditioning import TEXT
from tryon_lab.export.manifest import MANIFEST, TARGETS
from tryon_lab.grading.checks.base import (
    Context,
    Outcome,
    check,
    component_packages,
    expected_components,
    submission_conditioning,
    verdict,
)
from tryon_lab.grading.errors import SubmissionRejected
from tryon_lab.grading.filetypes import file_problem
from tryon_lab.grading.packages import MODEL_FILE, WEIGHTS_FILE
from tryon_lab.grading.submission import unpack_submission

TOKENIZER_FILES = ("vocab.json", "merges.txt")
TOP_LEVEL = {MANIFEST, "golden", *TARGETS}


@check("unpack", "Safe unpacking: no escaping paths, links, special files or bombs; within the limits", needs=())
def check_unpack(context: Context) -> Outcome:
    """Copy or extract the submission into ``context.work`` (setting ``context.unpacked``); fails on the first unsafe entry."""
    try:
        context.unpacked = unpack_submission(context.source, context.work, context.rubric.limits)
    except SubmissionRejected as err:
        context.unreadable = err.unreadable
        return Outcome(False, err.reason)
    unpacked = context.unpacked
    return Outcome(True, f"{unpacked.files} files, {unpacked.bytes} bytes", list(unpacked.notes))


@check("file_types", "Every file is a bundle data format, judged by content (no pickles, executables, scripts)")
def check_file_types(context: Context) -> Outcome:
    """Judge every file by its content against the rubric's allowed formats; fails naming each foreign file."""
    allowed = [s.lower() for s in context.rubric.get("file_types", "allowed_suffixes")]
    files = sorted(p for p in context.root.rglob("*") if p.is_file())
    problems = [p for p in (file_problem(f, f.relative_to(context.root).as_posix(), allowed) for f in files) if p]
    return verdict(problems, f"{len(files)} files, all of them data in the bundle's formats")


@check("structure", "The bundle layout: manifest, Core ML packages, tokenizer, ExecuTorch programs, golden data")
def check_structure(context: Context) -> Outcome:
    """Compare the copy's files and folders with the bundle layout for the expected components and targets."""
    root = context.root
    problems = []
    if not (root / MANIFEST).is_file():
        problems.append(f"{MANIFEST} is missing")
    expected = expected_components(context)
    targets = set(context.rubric.get("structure", "required_targets")) | {t for t in TARGETS if (root / t).is_dir()}
    problems += [f"{entry.name}: not part of a bundle's layout" for entry in sorted(root.iterdir())
                 if entry.name not in TOP_LEVEL]
    if "coreml" in targets:
        tokenizer = submission_conditioning(context) is TEXT
        problems += _coreml_layout(root / "coreml", expected, tokenizer, strict=context.reference is not None)
    if "executorch" in targets:
        problems += [f"executorch/{name}.pte is missing" for name in expected
                     if not (root / "executorch" / f"{name}.pte").is_file()]
    golden = [f"golden/{name}.safetensors" for name in expected] + ["golden/tryon.safetensors"]
    problems += [f"{path} is missing" for path in golden if not (root / path).is_file()]
    return verdict(problems, f"{len(expected)} components laid out for {', '.join(sorted(targets))}")


def _coreml_layout(coreml: Path, expected: list[str], tokenizer: bool, strict: bool) -> list[str]:
    problems = [f"coreml/{name} is missing" for name in TOKENIZER_FILES if tokenizer and not (coreml / name).is_file()]
    claimed = set()
    for name in expected:
        packages = component_packages(coreml, name)
        claimed |= {p.name for p in packages}
        if not packages:
            problems.append(f"coreml/{name}.mlpackage (or {name}Chunk1..N.mlpackage) is missing")
            continue
        if len(packages) > 1 or packages[0].name != f"{name}.mlpackage":
            numbers = [int(re.search(r"Chunk(\d+)", p.name).group(1)) for p in packages]
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"coreml/{name}Chunk*: chunks numbered {numbers}, not 1..{len(numbers)}")
            if (coreml / f"{name}.mlpackage").exists():
                problems.append(f"coreml/{name}.mlpackage and {name}Chunk* both present")
        for package in packages:
            problems += [f"coreml/{package.name}: missing {part}" for part in ("Manifest.json", MODEL_FILE, WEIGHTS_FILE)
                         if not (package / part).is_file()]
    if strict:
        extra = sorted(p.name for p in coreml.glob("*.mlpackage") if p.name not in claimed)
        problems += [f"coreml/{name}: no such component in the reference bundle" for name in extra]
    return problems
