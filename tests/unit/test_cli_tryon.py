"""``tryon-lab tryon``: a text try-on and a reference (Diffuse to Choose) try-on from the command line."""

import numpy as np
import pytest
from PIL import Image

from tryon_lab.cli import main
from tryon_lab.data.world import World
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.loading import load_dtc_pipeline
from tryon_lab.training.dtc_recipe import save_dtc_parts


@pytest.fixture(scope="module")
def photo_and_mask(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    sample = World(seed=0, resolution=64).sample(0, split="heldout")
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
