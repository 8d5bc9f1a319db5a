"""DreamBooth LoRA garments in the app: listed in the gallery as fine-tuned entries, their
adapters switched on one loaded base model when chosen, their identifier prompts used."""

import json
import shutil
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from tryon_lab.app import FineTunedGarments, FittingRoom, PyTorchBackend
from tryon_lab.cli import main
from tryon_lab.errors import ConfigError

WAIT = 120  # seconds; generous, because CI machines may be busy
RED = "garment-tee-red-stripes-0-sks"  # the adapter name the recipe gives red striped tee 0 with token sks
BLUE = "garment-tee-blue-dots-0-zwx"


@pytest.fixture(scope="module")
def garments_dir(tiny_pipeline_dir, tmp_path_factory):
    """Two LoRA garments on the tiny model (2 training steps each, as `tryon-lab dreambooth
    --lora-rank 2` saves them) and a full fine-tune, which the app cannot switch to."""
    from tryon_lab.data.world import World
    from tryon_lab.training.dreambooth import (
        DreamBoothSettings,
        item_from_id,
        save_dreambooth,
        train_dreambooth,
        world_instances,
    )

    settings = DreamBoothSettings(steps=2, batch_size=1, lora_rank=2, lora_learning_rate=5e-2,
                                  token_learning_rate=5e-2, num_class_images=0, checkpoint_every=100)
    world, root = World(0, 64), tmp_path_factory.mktemp("garments")
    for item, token in (("garment-tee-red-stripes", "sks"), ("garment-tee-blue-dots", "zwx")):
        instances = world_instances(world, item_from_id(item), n_people=1, token=token, mask_kinds=("shape",),
                                    n_scenes=1)
        result = train_dreambooth(tiny_pipeline_dir, instances, root / "runs" / token, settings)
        save_dreambooth(result, root / "garments" / token)
    full = shutil.copytree(root / "garments" / "zwx", root / "garments" / "full")
    record = json.loads((full / "dreambooth.json").read_text())
    (full / "dreambooth.json").write_text(json.dumps({**record, "mode": "full", "adapter_name": "whole-model"}))
    return root / "garments"


@pytest.fixture(scope="module")
def room(tiny_pipeline_dir, garments_dir, small_catalog):
    """The app on its own tiny PyTorch model (adapters change the pipeline they are loaded into)."""
    return FittingRoom(PyTorchBackend.from_path(tiny_pipeline_dir), small_catalog, garments_dir=garments_dir, steps=2)


def test_fine_tuned_garments_come_first_in_the_gallery_marked(room):
    items = list(room.garments.items.values())
    assert [i.id for i in items[:2]] == [f"finetuned-{BLUE}", f"finetuned-{RED}"]
    assert [i.phrase for i in items[:2]] == ["zwx tee", "sks tee"] and not any(i.finetuned for i in items[2:])
    red = items[1]
    assert red.adapter == RED and red.prompt() == "a photo of a person wearing a sks tee"
    card = room.garments._cards[red.id]
    assert "tryon-finetuned" in card._dom_classes and card.children[0].value == "fine-tuned"
    room.garments.filter.value = "finetuned"
    assert list(room.garments.grid.children) == [room.garments._cards[i.id] for i in items[:2]]
    room.garments.filter.value = "all"
    assert "2 fine-tuned garments" in room.status.text
    assert "Not loaded: whole-model (a full fine-tune" in room.status.text


def test_choosing_a_garment_switches_its_adapter_without_reloading(room):
    unet, adapters = room.backend.pipe.unet, room.finetuned.adapters
    assert adapters.names == [BLUE, RED] and adapters.active is None
    room.garments.select(f"finetuned-{RED}")
    assert adapters.active == RED and "no reload" in room.status.text
    room.garments.select(f"finetuned-{BLUE}")
    assert adapters.active == BLUE
    room.garments.select(next(i.id for i in room.garments.items.values() if not i.finetuned))
    assert adapters.active is None
    assert room.backend.pipe.unet is unet


def test_a_fine_tuned_try_on_uses_its_adapter_and_identifier_prompt(room, mouse):
    seen = []
    generate = room.backend.generate

    def spy(image, mask, prompt, steps, seed, on_step=None, sampler=None):
        seen.append((room.finetuned.adapters.active, prompt))
        return generate(image, mask, prompt, steps, seed, on_step, sampler)

    room.backend.generate = spy
    try:
        mouse.try_on(room, f"finetuned-{RED}")
        assert room.wait(WAIT) and room.status.kind == "ok", room.status.text
        tuned = np.asarray(room.result.result)
        room.garments.select(next(i.id for i in room.garments.items.values() if not i.finetuned))
        room.result.prompt.value = "a photo of a person wearing a sks tee"  # same words, base model
        room.result.generate(room.personalize.canvas.photo, room.personalize.canvas.mask)
        assert room.wait(WAIT) and room.status.kind == "ok", room.status.text
    finally:
        del room.backend.generate
    assert seen == [(RED, "a photo of a person wearing a sks tee"), (None, "a photo of a person wearing a sks tee")]
    mask = room.personalize.canvas.mask
    np.testing.assert_array_equal(tuned[~mask], np.asarray(room.personalize.canvas.photo)[~mask])
    assert not np.array_equal(tuned, np.asarray(room.result.result))  # the adapter changed the try-on


def test_fine_tuned_garments_need_the_pytorch_model(garments_dir, small_catalog):
    class PhoneLike:
        name = "ExecuTorch · b"
        samplers = ("ddim",)

        def generate(self, image, mask, prompt, steps, seed, on_step=None, sampler=None):
            raise AssertionError("not called")

        def cancel(self):
            pass

    with pytest.raises(ConfigError, match="LoRA adapters on the PyTorch model"):
        FittingRoom(PhoneLike(), small_catalog, garments_dir=garments_dir)
    with pytest.raises(ConfigError, match="not a folder of fine-tuned garments"):
        FineTunedGarments(SimpleNamespace(name="PyTorch", pipe=object()), garments_dir / "nope")


def test_cli_and_page_take_a_garments_folder(garments_dir, tmp_path, capsys):
    from tryon_lab.app.page import write_page

    (tmp_path / "empty").mkdir()
    assert main(["app", "--garments", str(tmp_path / "empty")]) == 2
    assert "holds no LoRA garment" in capsys.readouterr().err
    assert main(["app", "--garments", str(tmp_path / "nope")]) == 2
    assert "not a folder of fine-tuned garments" in capsys.readouterr().err
    assert main(["app", "--bundle", str(tmp_path), "--garments", str(garments_dir)]) == 2
    assert "a bundle cannot switch them" in capsys.readouterr().err
    path = write_page(tmp_path / "page", garments=garments_dir, bundle=None)
    source = nbformat.read(path, as_version=4).cells[0].source
    assert f"FittingRoom(pipeline=None, catalog=None, garments_dir={str(garments_dir)!r})" in source
