"""Grading fixtures: one tiny bundle exported per session, a corpus of submissions made from it, graded once.

Exporting converts every component with coremltools (a minute or more on 2 cores), so the bundle
is also kept in pytest's cache under a hash of the code and versions that make it; ``pytest
--cache-clear`` forces a fresh export.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_STEPS = 2
# What the bundle's bytes depend on: the export code, the tiny model and its world, and the libraries.
BUNDLE_SOURCES = ("tryon_lab/export", "tryon_lab/models", "tryon_lab/pipelines", "tryon_lab/data")


def _bundle_key() -> str:
    import coremltools
    import diffusers
    import torch

    digest = hashlib.sha256(f"{torch.__version__} {coremltools.__version__} {diffusers.__version__}".encode())
    for folder in BUNDLE_SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".json", ".toml") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _export(pipeline_dir: Path, out: Path) -> Path:
    from tryon_lab.export.bundle import ExportOptions, export_bundle

    options = ExportOptions(bits="6", chunks=2, targets=("coreml",), steps=GOLDEN_STEPS)
    return export_bundle(pipeline_dir, out, options, log=lambda _: None)


@pytest.fixture(scope="session")
def reference_bundle(request, tmp_path_factory) -> Path:
    """The tiny random pipeline exported once: Core ML, 6-bit U-Net in 2 chunks, a 2-step golden try-on."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return _export(request.getfixturevalue("tiny_pipeline_dir"), tmp_path_factory.mktemp("reference") / "bundle")
    cached = cache.mkdir("tryon-lab-grading-bundle") / _bundle_key()
    if not (cached / "manifest.json").is_file():
        staging = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        _export(request.getfixturevalue("tiny_pipeline_dir"), staging)
        for stale in cached.parent.iterdir():  # bundles of code that has changed since
            if stale != staging:
                shutil.rmtree(stale, ignore_errors=True)
        staging.rename(cached)
    return shutil.copytree(cached, tmp_path_factory.mktemp("reference") / "bundle")


@pytest.fixture(scope="session")
def corpus_rubric_path(tmp_path_factory) -> Path:
    """The corpus rubric (small limits) written as a TOML file, as an instructor would pass it."""
    from tryon_lab.grading.corpus import CORPUS_RUBRIC

    path = tmp_path_factory.mktemp("rubric") / "corpus-rubric.toml"
    path.write_text(CORPUS_RUBRIC)
    return path


@pytest.fixture(scope="session")
def corpus_rubric(corpus_rubric_path):
    """The corpus rubric, loaded."""
    from tryon_lab.grading.rubric import load_rubric

    return load_rubric(corpus_rubric_path)


@pytest.fixture(scope="session")
def corpus(reference_bundle, corpus_rubric, tmp_path_factory):
    """{name: Sample}: every good and bad submission of ``tryon_lab.grading.corpus`` made from the bundle."""
    from tryon_lab.grading.corpus import make_corpus

    samples = make_corpus(reference_bundle, tmp_path_factory.mktemp("corpus") / "class", corpus_rubric)
    return {sample.name: sample for sample in samples}


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of everything under ``folder`` (links not followed)."""
    return {p.relative_to(folder).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="session")
def graded_corpus(corpus, corpus_rubric, reference_bundle, tmp_path_factory):
    """The corpus graded as a class (2 processes at a time), with the submissions' trees before and after."""
    from tryon_lab.grading.classroom import grade_class

    folder = next(iter(corpus.values())).path.parent
    before = tree(folder)
    out = tmp_path_factory.mktemp("graded") / "out"
    run = grade_class([s.path for s in corpus.values()], out, corpus_rubric, reference_bundle, jobs=2,
                      log=lambda _: None)
    return run, out, before, tree(folder)
