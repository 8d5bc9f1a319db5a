"""The app on an exported phone bundle: the tiny model's ExecuTorch programs run by the
ExecuTorch runtime behind the Fitting Room, with previews, cancel and clear errors for bad
bundles. Tests that run programs share one tiny bundle (slow: lowering four programs)."""

import shutil
import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from tryon_lab.app import ExecuTorchBackend, FittingRoom, GenerationCancelled
from tryon_lab.app.executorch_backend import bundle_tokenizer
from tryon_lab.cli import main
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import TokenizerFiles, read_manifest, write_manifest

WAIT = 120  # seconds; generous, because CI machines may be busy
PROMPT = "a photo of a person wearing a red striped tee"


@pytest.fixture(scope="module")
def phone_backend(tiny_bundle):
    return ExecuTorchBackend.from_bundle(tiny_bundle)


@pytest.mark.slow
def test_a_try_on_runs_on_the_bundle_with_previews(phone_backend, tiny_backend, small_catalog, mouse):
    room = FittingRoom(phone_backend, small_catalog, steps=3)
    assert room.backend.name == "ExecuTorch · tiny-bundle" and "ExecuTorch" in room.header.value
    previews = []
    show = room.jobs.on_preview
    room.jobs.on_preview = lambda image: (previews.append(image), show(image))
    mouse.try_on(room)
    assert room.wait(WAIT), room.status.text
    assert room.status.kind == "ok", room.status.text
    photo, mask = room.personalize.canvas.photo, room.personalize.canvas.mask
    result = room.result.result
    assert len(previews) >= 2 and all(p.size == photo.size for p in previews)  # the first step and the last
    assert room.jobs.progress.value == 3 and room.jobs.first_preview_seconds is not None
    assert result.size == photo.size
    np.testing.assert_array_equal(np.asarray(result)[~mask], np.asarray(photo)[~mask])
    # The phone's programs paint what the PyTorch model paints from the same seed.
    reference = tiny_backend.generate(photo, mask, room.result.prompt.value, 3, 0)
    difference = np.abs(np.asarray(result, dtype=int) - np.asarray(reference, dtype=int))
    assert difference.max() <= 2


@pytest.mark.slow
def test_cancel_stops_the_bundle_after_the_current_step(phone_backend, photo):
    mask = np.zeros((photo.height, photo.width), bool)
    mask[100:200, 150:250] = True
    steps = []

    def on_step(step, total, preview):
        steps.append(step)
        phone_backend.cancel()

    with pytest.raises(GenerationCancelled):
        phone_backend.generate(photo, mask, PROMPT, 50, 0, on_step)
    assert steps == [0]
    assert phone_backend.generate(photo, mask, PROMPT, 1, 0).size == photo.size  # the next run starts afresh


@pytest.mark.slow
def test_cancel_button_stops_a_bundle_try_on(phone_backend, small_catalog, mouse):
    room = FittingRoom(phone_backend, small_catalog, steps=400)
    seen = threading.Event()
    room.jobs.on_preview = lambda image: seen.set()
    mouse.try_on(room)
    assert seen.wait(WAIT)
    room.jobs.cancel_button.click()
    assert room.wait(WAIT)
    assert room.status.text == "Cancelled." and room.jobs.progress.value < 400 and room.result.result is None


@pytest.mark.slow
def test_a_modified_bundle_is_refused_before_anything_runs(tiny_bundle, tmp_path, small_catalog):
    copy = shutil.copytree(tiny_bundle, tmp_path / "edited")
    program = copy / "executorch" / "Unet.pte"
    program.write_bytes(program.read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleError, match=r"executorch/Unet.pte: sha256 differs"):
        ExecuTorchBackend.from_bundle(copy)
    room = FittingRoom(bundle=copy, catalog=small_catalog)
    assert room.backend is None and room.status.kind == "error" and "sha256 differs" in room.status.text


@pytest.mark.slow
def test_an_executorch_only_bundle_needs_a_tokenizer(tiny_bundle, tiny_pipeline_dir, tmp_path):
    copy = shutil.copytree(tiny_bundle, tmp_path / "moved")
    # the model it was exported from is not here
    write_manifest(copy, replace(read_manifest(copy), source_model=str(tmp_path / "gone")))
    with pytest.raises(BundleError, match="no tokenizer for bundle"):
        ExecuTorchBackend.from_bundle(copy)
    assert ExecuTorchBackend.from_bundle(copy, tokenizer=tiny_pipeline_dir).model.token_length == 16


def test_the_bundles_bpe_files_tokenize_as_the_pipeline_does(tiny_pipeline, tmp_path):
    from tryon_lab.export.bundle import _write_tokenizer

    _write_tokenizer(tiny_pipeline, tmp_path / "coreml")
    length = tiny_pipeline.tokenizer.model_max_length
    manifest = SimpleNamespace(tokenizer=TokenizerFiles("coreml/vocab.json", "coreml/merges.txt", length))
    tokenizer = bundle_tokenizer(tmp_path, manifest, None, length)
    for text in (PROMPT, "", "a mug in a kitchen, Zebra!!"):
        ours = tokenizer([text], padding="max_length", max_length=length, truncation=True).input_ids
        assert ours == tiny_pipeline.tokenizer([text], padding="max_length", max_length=length,
                                               truncation=True).input_ids


def test_a_bad_bundle_path_is_a_typed_error_and_a_message_in_the_app(tmp_path, fake_bundle, small_catalog, mouse):
    with pytest.raises(BundleError, match="not found"):
        ExecuTorchBackend.from_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="has no manifest.json"):
        ExecuTorchBackend.from_bundle(tmp_path)
    with pytest.raises(BundleError, match="no ExecuTorch program for TextEncoder, VAEEncoder, Unet, VAEDecoder"):
        ExecuTorchBackend.from_bundle(fake_bundle("no-programs"))
    with pytest.raises(BundleError, match="conditioned on 'reference', not on a prompt"):
        ExecuTorchBackend.from_bundle(fake_bundle("dtc", conditioning="reference"))
    with pytest.raises(BundleError, match="format_version 1 cannot be read .* diffusers' order"):
        ExecuTorchBackend.from_bundle(fake_bundle("old", version=1))
    room = FittingRoom(bundle=tmp_path / "nope", catalog=small_catalog)
    assert room.backend is None and room.jobs is None
    assert room.status.kind == "error" and room.status.text.startswith("No model: bundle ")
    assert "not found" in room.status.text and "no model loaded" in room.header.value
    mouse.try_on(room)
    assert "cannot try on" in room.status.text


def test_cli_app_refuses_a_bad_bundle(tmp_path, fake_bundle, capsys):
    assert main(["app", "--bundle", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["app", "--bundle", str(fake_bundle("empty", components=()))]) == 2
    assert "no ExecuTorch program" in capsys.readouterr().err


def test_a_bundle_of_the_shipped_model_knows_only_the_world(phone_backend, tiny_bundle, tmp_path):
    from tryon_lab.app.fitting_room import knows_only_the_world

    assert not knows_only_the_world(phone_backend)  # exported from the tiny test model
    copy = shutil.copytree(tiny_bundle, tmp_path / "shipped-bundle")
    write_manifest(copy, replace(read_manifest(copy), source_model="shipped"))
    assert knows_only_the_world(ExecuTorchBackend.from_bundle(copy))
