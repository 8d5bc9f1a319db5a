"""Telling renders of the synthetic world from photos, and the shipped models from others."""

import pytest
from matplotlib import cbook
from PIL import Image

from tryon_lab.data.domain import is_shipped_model, looks_like_world_render, outside_world_note
from tryon_lab.data.io import load_image
from tryon_lab.data.world import World
from tryon_lab.paths import data_dir


@pytest.fixture(scope="module")
def grace_hopper():
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return load_image(handle)


@pytest.mark.parametrize("resolution", [32, 128, 512])
def test_world_renders_look_like_world_renders(resolution):
    world = World(0, resolution)
    assert all(looks_like_world_render(world.sample(i).scene) for i in range(12))


def test_the_shipped_scenes_look_like_world_renders():
    scenes = sorted(p for p in (data_dir() / "scenes").glob("*.png") if not p.stem.endswith("_mask"))
    assert len(scenes) == 8
    assert all(looks_like_world_render(load_image(path)) for path in scenes)


@pytest.mark.parametrize("side", [None, 32, 128, 512, 2048])
def test_a_photo_does_not_at_any_size(grace_hopper, side):
    photo = grace_hopper if side is None else grace_hopper.resize((side, side), Image.Resampling.LANCZOS)
    assert not looks_like_world_render(photo)


def test_the_shipped_models_are_the_folders_in_data_models(tmp_path):
    assert is_shipped_model(data_dir() / "models" / "mini-sd-inpaint")
    assert is_shipped_model(data_dir() / "models" / "dtc")
    assert not is_shipped_model(tmp_path / "mini-sd-inpaint")


def test_the_note_names_the_photo_and_the_way_out():
    note = outside_world_note("me.jpg")
    assert note.startswith("me.jpg does not look like") and "--model" in note and "\n" not in note
