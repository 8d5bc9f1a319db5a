"""Grading fixtures: tiny bundles exported once per session, a corpus of submissions made from one, graded once.

Exporting converts every component with coremltools (half a minute or more on 2 cores), so each
bundle is also kept in pytest's cache under a hash of the code and versions that make it; ``pytest
--cache-clear`` forces a fresh export.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_STEPS = 2
# What the bundles' bytes depend on: the export code, the tiny model and its world, and the libraries
# (and this file, which holds the export options).
BUNDLE_SOURCES = ("tryon_lab/export", "tryon_lab/models", "tryon_lab/pipelines", "tryon_lab/data")


def _bundle_key() -> str:
    import coremltools
    import diffusers
    import torch

    digest = hashlib.sha256(f"{torch.__version__} {coremltools.__version__} {diffusers.__version__}".encode())
    digest.update(Path(__file__).read_bytes())
    for folder in BUNDLE_SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".json", ".toml") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(ROOT).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _cached_export(request, tmp_path_factory, name: str, bits: str, chunks: int, **options) -> Path:
    """A fresh copy of the tiny pipeline exported (Core ML only) with ``bits``, ``chunks`` and any
    other ``ExportOptions``, taken from pytest's cache (as ``name``) when the code that makes it has
    not changed."""
    from tryon_lab.export.bundle import ExportOptions, export_bundle

    def export(out: Path) -> Path:
        settings = ExportOptions(bits=bits, chunks=chunks, targets=("coreml",), steps=GOLDEN_STEPS, **options)
        return export_bundle(request.getfixturevalue("tiny_pipeline_dir"), out, settings, log=lambda _: None)

    copy = tmp_path_factory.mktemp(name) / "bundle"
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return export(copy)
    root, key = cache.mkdir("tryon-lab-grading-bundle"), _bundle_key()
    cached = root / key / name
    if not (cached / "manifest.json").is_file():
        for stale in root.iterdir():  # bundles of code that has changed since
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
        export(cached)  # written to a temporary folder, renamed into place when complete
    return shutil.copytree(cached, copy)


@pytest.fixture(scope="session")
def reference_bundle(request, tmp_path_factory) -> Path:
    """The tiny random pipeline exported to the course recipe: Core ML, 6-bit U-Net in 2 chunks, a
    2-step golden try-on."""
    return _cached_export(request, tmp_path_factory, "reference", "6", 2)


@pytest.fixture(scope="session")
def eight_bit_bundle(request, tmp_path_factory) -> Path:
    """The same pipeline exported off the course recipe: an 8-bit U-Net, unchunked."""
    return _cached_export(request, tmp_path_factory, "eight-bit", "8", 1)


@pytest.fixture(scope="session")
def mixed_bit_bundle(request, tmp_path_factory) -> Path:
    """The course recipe with a mixed-bit U-Net averaging 4 bits: some layers at 2 or 3 bits."""
    return _cached_export(request, tmp_path_factory, "mixed-bit", "mixed", 2, target_psnr=None, target_bits=4.0)


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
