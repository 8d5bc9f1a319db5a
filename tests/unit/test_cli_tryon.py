"""``tryon-lab tryon``: a text try-on and a reference (Diffuse to Choose) try-on from the command line."""

import shutil

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from tryon_lab.cli import main
from tryon_lab.data.domain import outside_world_note
from tryon_lab.data.world import World
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.loading import load_dtc_pipeline
from tryon_lab.training.dtc_recipe import save_dtc_parts


@pytest.fixture(scope="module")
def photo_and_mask(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    sample = World(seed=0, resolution=64).sample(0, split="test")
    sample.scene.save(folder / "scene.png")
    Image.fromarray(sample.shape_mask.astype(np.uint8) * 255).save(folder / "mask.png")
    sample.reference.save(folder / "item.png")
    return folder, sample


def _run(folder, out, *extra):
    return main(["tryon", "--person", str(folder / "scene.png"), "--mask", str(folder / "mask.png"), "--out", str(out),
                 "--steps", "2", *extra])


def test_a_text_tryon_keeps_pixels_outside_the_mask(tiny_pipeline_dir, photo_and_mask, tmp_path, capsys):
    folder, sample = photo_and_mask
    assert _run(folder, tmp_path / "r.png", "--prompt", sample.caption, "--model", str(tiny_pipeline_dir)) == 0
    result = np.asarray(Image.open(tmp_path / "r.png").convert("RGB"))
    outside = ~sample.shape_mask
    assert (result[outside] == np.asarray(sample.scene)[outside]).all()
    assert "try-on" in capsys.readouterr().out


def test_a_reference_tryon_runs_dtc_parts_on_their_named_base(tiny_pipeline, photo_and_mask, tmp_path, monkeypatch):
    folder, sample = photo_and_mask
    models = tmp_path / "data" / "models"
    tiny_pipeline.save_pretrained(models / "tiny-base")
    parts = tmp_path / "dtc"
    save_dtc_parts(DTCPipeline.from_base(tiny_pipeline, "film"), parts, "tiny-base", "film")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    pipe = load_dtc_pipeline(parts, device="cpu")
    assert pipe.hint_encoder is not None and pipe.unet.config.in_channels == 9
    assert _run(folder, tmp_path / "r.png", "--reference", str(folder / "item.png"), "--model", str(parts)) == 0
    result = np.asarray(Image.open(tmp_path / "r.png").convert("RGB"))
    outside = ~sample.shape_mask
    assert (result[outside] == np.asarray(sample.scene)[outside]).all()


def test_prompt_and_reference_are_exclusive_and_one_is_required(photo_and_mask, tmp_path, capsys):
    folder, _ = photo_and_mask
    for extra in ([], ["--prompt", "a tee", "--reference", str(folder / "item.png")]):
        with pytest.raises(SystemExit) as info:
            _run(folder, tmp_path / "r.png", *extra)
        assert info.value.code == 2


def test_a_folder_that_is_no_dtc_model_is_a_clear_error(photo_and_mask, tmp_path, capsys):
    folder, _ = photo_and_mask
    assert _run(folder, tmp_path / "r.png", "--reference", str(folder / "item.png"), "--model", str(tmp_path)) == 2
    assert "neither a DTC pipeline folder" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


@pytest.fixture()
def shipped_tiny(tiny_pipeline_dir, tmp_path, monkeypatch):
    """The tiny random pipeline standing in for the shipped mini model (a few ms per step)."""
    shutil.copytree(tiny_pipeline_dir, tmp_path / "data" / "models" / "mini-sd-inpaint")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def grace_hopper(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "grace_hopper.jpg"
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        path.write_bytes(handle.read())
    return path


def _tryon(person, out, *extra):
    return main(["tryon", "--person", str(person), "--mask", "auto", "--category", "tee", "--prompt", "a red tee",
                 "--out", str(out), "--steps", "1", *extra])


def _notes(err):
    """The note lines on stderr (diffusers' loading progress bars share it)."""
    return [line for line in err.splitlines() if line.startswith("note:")]


def test_the_shipped_model_notes_a_photo_from_outside_the_world(shipped_tiny, grace_hopper, tmp_path, capsys):
    assert _tryon(grace_hopper, tmp_path / "r.png") == 0
    out, err = capsys.readouterr()
    assert _notes(err) == [f"note: {outside_world_note(str(grace_hopper))}"]
    assert "saved" in out and (tmp_path / "r.png").is_file()


def test_no_note_on_a_world_render(shipped_tiny, photo_and_mask, tmp_path, capsys):
    folder, _ = photo_and_mask
    assert _tryon(folder / "scene.png", tmp_path / "r.png") == 0
    assert _notes(capsys.readouterr().err) == []


def test_no_note_with_another_model(tiny_pipeline_dir, grace_hopper, tmp_path, capsys):
    assert _tryon(grace_hopper, tmp_path / "r.png", "--model", str(tiny_pipeline_dir)) == 0
    assert _notes(capsys.readouterr().err) == []


def test_an_lcm_tryon_runs_the_models_lora_in_its_4_steps(tiny_lcm_pipeline_dir, photo_and_mask, tmp_path, capsys):
    folder, sample = photo_and_mask
    assert main(["tryon", "--person", str(folder / "scene.png"), "--mask", str(folder / "mask.png"),
                 "--out", str(tmp_path / "lcm.png"), "--prompt", sample.caption, "--model", str(tiny_lcm_pipeline_dir),
                 "--sampler", "lcm"]) == 0
    assert _run(folder, tmp_path / "ddim.png", "--prompt", sample.caption, "--model", str(tiny_lcm_pipeline_dir)) == 0
    lcm, ddim = (np.asarray(Image.open(tmp_path / name)) for name in ("lcm.png", "ddim.png"))
    assert lcm.shape == ddim.shape and not np.array_equal(lcm, ddim)
    outside = ~sample.shape_mask
    np.testing.assert_array_equal(lcm[outside], np.asarray(sample.scene)[outside])
