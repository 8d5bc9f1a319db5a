"""Shared fixtures: tiny random checkpoints made once per test session (nothing is downloaded)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TRYON_LAB_PROFILE", "smoke")


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    """A saved random-weight TryOnInpaintPipeline of the ``tiny`` config (64x64, latents 8x8)."""
    from tryon_lab.models.tiny import make_random_pipeline

    out = tmp_path_factory.mktemp("tiny-pipeline")
    make_random_pipeline("tiny", out)
    return out


def _load_quiet(folder):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(folder, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture()
def tiny_pipeline(tiny_pipeline_dir):
    """A freshly loaded tiny pipeline with its progress bar off (tests may change it)."""
    return _load_quiet(tiny_pipeline_dir)


@pytest.fixture(scope="session")
def tiny_base(tiny_pipeline_dir):
    """The tiny pipeline loaded once per session, for tests that only read it (export, DTC from_base)."""
    return _load_quiet(tiny_pipeline_dir)
