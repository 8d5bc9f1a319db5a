"""The Fitting Room driven from Python: gallery, mask, try-on on a worker thread, cancel,
errors as messages, the restore brush, save."""

import io
import shutil
import threading
from datetime import datetime

import nbformat
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from tryon_lab.app import FittingRoom, GenerationCancelled
from tryon_lab.app.fitting_room import knows_only_the_world
from tryon_lab.app.items import world_items, world_samples
from tryon_lab.cli import main
from tryon_lab.data.domain import outside_world_note
from tryon_lab.errors import TryOnInputError

WAIT = 120  # seconds; generous, because CI machines may be busy
NOW = datetime(2026, 1, 1)


@pytest.fixture()
def room(tiny_backend, small_catalog):
    return FittingRoom(tiny_backend, small_catalog, steps=3)


def _upload(name, content):
    """One file as ipywidgets' FileUpload holds it."""
    return {"name": name, "type": "image/*", "size": len(content), "content": memoryview(content),
            "last_modified": NOW}


class FailingBackend:
    name = "failing"
    samplers = ("ddim",)

    def generate(self, image, mask, prompt, steps, seed, on_step=None, sampler=None):
        raise RuntimeError("the accelerator caught fire")

    def cancel(self):
        pass


class GatedBackend:
    """Reports a step, then waits until cancelled: makes cancel deterministic."""

    name = "gated"
    samplers = ("ddim",)

    def __init__(self):
        self.stepped, self._cancelled = threading.Event(), threading.Event()

    def generate(self, image, mask, prompt, steps, seed, on_step=None, sampler=None):
        on_step(0, steps, lambda: image)
        self.stepped.set()
        self._cancelled.wait(WAIT)
        raise GenerationCancelled("stopped")

    def cancel(self):
        self._cancelled.set()


def test_catalog_items_and_scenes_fill_the_screens(room):
    assert len(room.garments.items) == 6 and len(room.garments.grid.children) == 6
    assert [s.name for s in room.personalize.samples] == ["person-00", "room-01", "Grace Hopper (photo)"]
    assert room.personalize.samples[1].room in ("living room", "kitchen", "bedroom", "office")
    room.garments.filter.value = "product"
    assert len(room.garments.grid.children) == 2
    assert room.nav.value == "Garments" and room.status.kind == "info"


def test_paint_try_on_and_get_a_result_off_the_main_thread(room, mouse):
    mouse.try_on(room)
    assert room.nav.value == "Result"
    assert room.wait(WAIT), room.status.text
    photo, mask = room.personalize.canvas.photo, room.personalize.canvas.mask
    result = room.result.result
    assert room.status.kind == "ok", room.status.text
    assert result.size == photo.size and mask.any()
    outside = ~mask
    np.testing.assert_array_equal(np.asarray(result)[outside], np.asarray(photo)[outside])
    assert room.jobs.first_preview_seconds is not None and room.jobs.progress.value == 3
    assert room.result.prompt.value == "a photo of a person wearing a " + room.garments.selected.phrase
    assert not room.personalize.try_on_button.disabled


def test_restore_brush_paints_the_original_back_and_before_after_toggles(room, mouse):
    mouse.try_on(room)
    assert room.wait(WAIT)
    canvas, photo = room.result.canvas, room.personalize.canvas.photo
    generated = np.asarray(room.result.generated)
    mouse.drag(canvas.widget, [(100, 150), (240, 300)])
    restored, brush = np.asarray(room.result.result), canvas.mask
    assert brush.any() and not np.array_equal(restored, generated)
    np.testing.assert_array_equal(restored[brush], np.asarray(photo)[brush])
    np.testing.assert_array_equal(restored[~brush], generated[~brush])
    room.result.view.value = "Before"
    assert not canvas.enabled
    mouse.drag(canvas.widget, [(10, 10), (300, 400)])
    np.testing.assert_array_equal(canvas.mask, brush)
    room.result.view.value = "After"
    canvas.undo()
    np.testing.assert_array_equal(np.asarray(room.result.result), generated)


def test_save_writes_the_result_as_png(room, mouse, tmp_path):
    mouse.try_on(room)
    assert room.wait(WAIT)
    path = room.result.save(tmp_path / "out" / "tryon.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(room.result.result))


def test_cancel_stops_the_run_and_discards_it(small_catalog, mouse):
    backend = GatedBackend()
    room = FittingRoom(backend, small_catalog, steps=50)
    mouse.try_on(room)
    assert backend.stepped.wait(WAIT) and room.jobs.busy
    room.jobs.cancel_button.click()
    assert room.wait(WAIT)
    assert room.status.text == "Cancelled." and room.result.result is None
    assert room.jobs.cancel_button.disabled


def test_cancel_interrupts_the_pytorch_pipeline(tiny_backend, small_catalog, mouse):
    room = FittingRoom(tiny_backend, small_catalog, steps=400)
    seen = threading.Event()
    room.result.show_preview = lambda image: seen.set()
    room.jobs.on_preview = room.result.show_preview
    mouse.try_on(room)
    assert seen.wait(WAIT)
    room.jobs.cancel()
    assert room.wait(WAIT)
    assert room.status.text == "Cancelled." and room.jobs.progress.value < 400


def test_an_error_in_the_back_end_is_a_message_and_the_app_goes_on(small_catalog, mouse):
    room = FittingRoom(FailingBackend(), small_catalog)
    mouse.try_on(room)
    assert room.wait(WAIT)
    assert room.status.kind == "error"
    assert room.status.text == "Try-on failed: RuntimeError: the accelerator caught fire"
    assert isinstance(room.jobs.error, RuntimeError) and not room.personalize.try_on_button.disabled
    room.result.again_button.click()
    assert room.wait(WAIT) and room.result.seed.value == 1 and room.status.kind == "error"


def test_input_problems_are_messages(room, mouse):
    room.personalize.try_on_button.click()
    assert room.status.kind == "error" and "choose an item" in room.status.text
    room.garments.select(next(iter(room.garments.items)))
    room.personalize.try_on_button.click()
    assert "paint where the item goes" in room.status.text
    room.result.save_button.click()
    assert "no result to save" in room.status.text


def test_without_a_model_the_app_opens_and_says_why(small_catalog, monkeypatch, tmp_path, mouse):
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path))
    room = FittingRoom(catalog=small_catalog)
    assert room.backend is None and room.status.kind == "error" and "not found" in room.status.text
    mouse.try_on(room)
    assert "cannot try on" in room.status.text and room.nav.value == "Personalize"


def test_suggest_mask_follows_the_selected_category(room):
    room.personalize.use_sample(0)
    with pytest.raises(TryOnInputError, match="choose an item"):
        room.personalize.suggest()
    room.garments.select(next(i.id for i in room.garments.items.values() if i.category != "mug"))
    room.personalize.suggest()
    assert 0.02 < room.personalize.canvas.coverage < 0.6 and room.personalize.canvas.can_undo
    assert room.personalize.info.value.startswith("Mask: ")


def test_add_your_own_item_by_upload(room):
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (20, 160, 60)).save(buffer, format="PNG")
    room.garments.upload.value = (_upload("shirt.png", buffer.getvalue()),)
    room.garments.category.value = "tee"
    room.garments.phrase.value = "  green   plain tee "
    room.garments.add_button.click()
    assert room.garments.selected.phrase == "green plain tee" and room.garments.selected.kind == "garment"
    assert room.garments.selected.prompt() == "a photo of a person wearing a green plain tee"
    room.garments.upload.value = (_upload("x.png", b"abc"),)
    room.garments.phrase.value = "junk"
    room.garments.add_button.click()
    assert room.status.kind == "error" and room.status.text.startswith("x.png: not an image")


def test_world_defaults_need_no_catalog_folder():
    items, samples = world_items(3, 2), world_samples(2, resolution=64)
    assert [i.kind for i in items] == ["garment"] * 3 + ["product"] * 2
    assert samples[0].image.size == (64, 64) and samples[1].room is not None


def test_cli_app_refuses_a_folder_that_is_not_a_model(tmp_path, capsys):
    assert main(["app", "--model", str(tmp_path)]) == 2
    assert "not a pipeline folder" in capsys.readouterr().err


def test_upload_your_own_photo(room):
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (200, 180, 160)).save(buffer, format="JPEG")
    room.personalize.upload.value = (_upload("me.jpg", buffer.getvalue()),)
    assert room.personalize.canvas.photo.size == (768, 576)  # worked on at most 768 px a side
    assert room.personalize.picker.value is None and room.personalize.room is None
    room.personalize.upload.value = (_upload("me.jpg", b"\xff\xd8 truncated"),)
    assert room.status.kind == "error" and room.status.text.startswith("me.jpg: ")
    assert room.personalize.canvas.photo.size == (768, 576)


def test_the_page_notebook_shows_the_app_on_absolute_paths(tmp_path, monkeypatch):
    from tryon_lab.app.page import voila_arguments, write_page

    monkeypatch.chdir(tmp_path)
    path = write_page(tmp_path / "page", model="models/m", catalog=None)
    source = nbformat.read(path, as_version=4).cells[0].source
    assert f"FittingRoom(pipeline={str(tmp_path / 'models' / 'm')!r}, catalog=None)" in source
    arguments = voila_arguments(path, 8123, "t0k")
    assert {"--Voila.ip=127.0.0.1", "--port=8123", "--Voila.port_retries=0", "--token=t0k"} <= set(arguments)


@pytest.fixture(scope="module")
def grace_hopper_jpg():
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return handle.read()


def test_the_shipped_model_notes_a_photo_from_outside_the_world(tiny_pipeline_dir, small_catalog, grace_hopper_jpg,
                                                                 tmp_path, monkeypatch):
    shutil.copytree(tiny_pipeline_dir, tmp_path / "data" / "models" / "mini-sd-inpaint")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    room = FittingRoom(catalog=small_catalog)
    assert knows_only_the_world(room.backend) and room.status.text == "Pick an item to try on."
    room.personalize.upload.value = (_upload("hopper.jpg", grace_hopper_jpg),)
    assert room.status.kind == "info" and room.status.text == outside_world_note("This photo")
    assert not room.personalize.try_on_button.disabled
    room.status.show("")
    room.personalize.use_sample(0)  # a world render
    assert room.status.text == ""
    room.personalize.picker.value = len(room.personalize.samples) - 1  # the Grace Hopper sample
    assert room.status.text == outside_world_note("This photo")


def test_another_model_takes_photos_without_a_note(room, grace_hopper_jpg):
    assert not knows_only_the_world(room.backend)
    room.personalize.upload.value = (_upload("hopper.jpg", grace_hopper_jpg),)
    assert room.status.text != outside_world_note("This photo") and room.status.kind == "info"


class RecordingBackend:
    """Returns the photo and remembers every (steps, sampler) asked for."""

    name = "recording"
    samplers = ("ddim", "lcm")

    def __init__(self):
        self.calls = []

    def generate(self, image, mask, prompt, steps, seed, on_step=None, sampler=None):
        self.calls.append((steps, sampler))
        return image

    def cancel(self):
        pass


def test_an_instant_result_comes_first_and_refine_runs_the_full_sampler(small_catalog, mouse):
    backend = RecordingBackend()
    room = FittingRoom(backend, small_catalog, steps=12)
    assert room.result.refine_button.layout.display is None and room.result.refine_button.disabled
    mouse.try_on(room)
    assert room.wait(WAIT), room.status.text
    assert backend.calls == [(4, "lcm")] and "4 LCM steps" in room.status.text
    assert not room.result.refine_button.disabled
    room.result.refine_button.click()
    assert room.wait(WAIT), room.status.text
    assert backend.calls[-1] == (12, None) and room.status.kind == "ok"


def test_refine_is_hidden_without_an_instant_sampler(room):
    assert room.result.refine_button.layout.display == "none"


def test_the_pytorch_backend_samples_instantly_and_then_is_the_base_model_again(tiny_lcm_pipeline_dir):
    from tryon_lab.app import PyTorchBackend
    from tryon_lab.data.world import World

    backend = PyTorchBackend.from_path(tiny_lcm_pipeline_dir)
    assert backend.samplers == ("ddim", "lcm")
    sample = World(seed=0, resolution=64).sample(0, split="test")
    photo, mask = sample.scene, sample.shape_mask
    before = np.asarray(backend.generate(photo, mask, "a red shirt", 3, seed=0))
    steps = []
    instant = backend.generate(photo, mask, "a red shirt", 4, seed=0, sampler="lcm",
                               on_step=lambda step, total, preview: steps.append(step))
    assert steps == [0, 1, 2, 3] and not np.array_equal(np.asarray(instant), before)
    np.testing.assert_array_equal(np.asarray(backend.generate(photo, mask, "a red shirt", 3, seed=0)), before)
    with pytest.raises(TryOnInputError, match="euler"):
        backend.generate(photo, mask, "a red shirt", 3, seed=0, sampler="euler")
