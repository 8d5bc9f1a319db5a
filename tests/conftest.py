"""Shared fixtures: tiny random checkpoints made once per test session (nothing is downloaded)."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TRYON_LAB_PROFILE", "smoke")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: a worker's torch (and the kernels and CLIs it starts) takes one
    # thread, so workers do not fight over the cores. Set before torch is first imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Folders whose tests share costly session fixtures (Core ML conversions, bundles, reference models): under
# `pytest -n N --dist loadgroup` each runs whole on one worker, so a fixture is made once, not once per worker.
GROUPED_FOLDERS = ("export", "grading", "app")


def pytest_collection_modifyitems(config, items):
    """Mark each test in a GROUPED_FOLDERS folder with its folder's ``xdist_group`` (read by --dist loadgroup)."""
    for item in items:
        folder = item.path.parent.name
        if folder in GROUPED_FOLDERS:
            item.add_marker(pytest.mark.xdist_group(folder))


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory):
    """A saved random-weight TryOnInpaintPipeline of the ``tiny`` config (64x64, latents 8x8)."""
    from tryon_lab.models.tiny import make_random_pipeline

    out = tmp_path_factory.mktemp("tiny-pipeline")
    make_random_pipeline("tiny", out)
    return out


@pytest.fixture(scope="session")
def tiny16_config(tmp_path_factory):
    """The path of a JSON model config: ``tiny`` with a 16-channel latent (a U-Net of 33 channels in, 16 out)."""
    import json
    from importlib import resources

    raw = json.loads(resources.files("tryon_lab.models.configs").joinpath("tiny.json").read_text())
    raw["vae"]["latent_channels"], raw["unet"]["in_channels"], raw["unet"]["out_channels"] = 16, 33, 16
    path = tmp_path_factory.mktemp("configs") / "tiny16.json"
    path.write_text(json.dumps(raw))
    return path


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


@pytest.fixture()
def fake_bundle(tmp_path):
    """``make(name, components=("Unet",), conditioning="text", version=2) -> folder``: a bundle folder whose
    manifest parses (its components have no programs; every one's golden file is one small hashed file),
    for tests of how its readers treat a bundle, not of what runs in it."""
    from tryon_lab.export.bundle import file_hashes
    from tryon_lab.export.contract import ComponentSpec, TensorSpec
    from tryon_lab.export.manifest import ComponentEntry, GoldenTryOn, Manifest, Runtime, write_manifest

    def make(name, components=("Unet",), conditioning="text", version=None):
        folder = tmp_path / name
        (folder / "golden").mkdir(parents=True)
        (folder / "golden" / "tryon.safetensors").write_bytes(b"golden arrays")
        specs = {c: ComponentSpec(c, (TensorSpec("sample", (2, 9, 8, 8)),), (TensorSpec("noise_pred", (2, 4, 8, 8)),))
                 for c in components}
        extra = dict(token_length=16) if conditioning == "text" else dict(
            reference_tokens=5, reference="the catalog image", hint=None, empty_hint=0.0)
        manifest = Manifest(
            created_by="tests", created_at="2026-01-01T00:00:00Z", source_model="shipped",
            runtime=Runtime(64, 8, 8, 0.18215, 2, ("noisy latent",) * 4 + ("mask",) + ("masked-image latent",) * 4,
                            "max-pool", (-1.0, 1.0), conditioning, **extra),
            scheduler={"_class_name": "DDIMScheduler", "num_train_timesteps": 1000}, tokenizer=None, targets=(),
            components={c: ComponentEntry(spec, "golden/tryon.safetensors") for c, spec in specs.items()},
            golden=GoldenTryOn("golden/tryon.safetensors", "a red tee", 2, 4.0, 0), files=file_hashes(folder))
        path = write_manifest(folder, manifest)
        if version is not None:
            path.write_text(json.dumps({**manifest.to_json(), "format_version": version}))
        return folder

    return make


@pytest.fixture(scope="session")
def tiny_lcm_pipeline_dir(tiny_pipeline_dir, tmp_path_factory):
    """A copy of the tiny pipeline with a 2-step LCM LoRA in its lcm/ folder."""
    import shutil

    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.distill import DistillSettings, distill_lcm, save_lcm

    root = tmp_path_factory.mktemp("lcm")
    folder = shutil.copytree(tiny_pipeline_dir, root / "pipeline")
    settings = DistillSettings(steps=2, batch_size=2, dataset_size=4, rank=4, checkpoint_every=2, warmup_steps=0,
                               learning_rate=1e-2)
    pipe, _ = distill_lcm(load_inpaint_pipeline(folder), root / "run", settings)
    save_lcm(pipe, folder)
    return folder
