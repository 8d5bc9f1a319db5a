"""MaskCanvas: mouse and touch events in, a photo-sized bool mask out; tools and history."""

import numpy as np
import pytest
from PIL import Image

from tryon_lab.app.canvas import MaskCanvas
from tryon_lab.data.masks import stroke_mask
from tryon_lab.errors import MaskError, TryOnInputError


@pytest.fixture()
def canvas(photo):
    """A 200x200 canvas showing the 400x300 photo: scale 0.5, letterboxed 25 px top and bottom."""
    canvas = MaskCanvas(200, 200)
    canvas.set_photo(photo)
    return canvas


def test_the_photo_is_letterboxed_and_events_map_to_photo_pixels(canvas):
    assert canvas.scale == 0.5 and canvas.offset == (0, 25) and canvas.size == (200, 150)
    assert canvas.to_photo(100, 100) == (200.0, 150.0)
    assert canvas.mask.shape == (300, 400) and not canvas.mask.any()


def test_a_drag_paints_the_stroke_at_photo_resolution(canvas, mouse):
    mouse.drag(canvas.widget, [(40, 60), (80, 60), (120, 90)])
    expected = stroke_mask([(80, 70), (160, 70), (240, 130)], canvas.brush_size, (400, 300))
    np.testing.assert_array_equal(canvas.mask, expected)
    assert canvas.can_undo and not canvas.can_redo


def test_moves_without_a_pressed_button_paint_nothing_and_mouse_out_ends_a_stroke(canvas, mouse):
    mouse.send(canvas.widget, "mouse_move", 50, 50)
    mouse.send(canvas.widget, "mouse_move", 150, 150)
    assert not canvas.mask.any()
    mouse.send(canvas.widget, "mouse_down", 50, 100)
    mouse.send(canvas.widget, "mouse_out", 0, 100)
    painted = canvas.mask
    mouse.send(canvas.widget, "mouse_move", 150, 100)
    np.testing.assert_array_equal(canvas.mask, painted)
    assert painted.sum() > 0 and canvas.can_undo


def test_touch_events_paint_like_the_mouse(canvas):
    canvas.widget._handle_custom_msg({"event": "touch_start", "touches": [{"x": 40, "y": 60}]}, [])
    canvas.widget._handle_custom_msg({"event": "touch_move", "touches": [{"x": 120, "y": 60}]}, [])
    canvas.widget._handle_custom_msg({"event": "touch_end", "touches": []}, [])
    np.testing.assert_array_equal(canvas.mask, stroke_mask([(80, 70), (240, 70)], canvas.brush_size, (400, 300)))


def test_eraser_undo_redo_and_clear(canvas, mouse):
    mouse.drag(canvas.widget, [(20, 100), (180, 100)])
    painted = canvas.mask
    canvas.tool = "eraser"
    mouse.drag(canvas.widget, [(100, 60), (100, 140)])
    erased = canvas.mask
    assert erased.sum() < painted.sum() and not (erased & ~painted).any()
    assert not erased[:, 195:205].any()  # the eraser cut the band in two
    assert canvas.undo()
    np.testing.assert_array_equal(canvas.mask, painted)
    assert canvas.redo()
    np.testing.assert_array_equal(canvas.mask, erased)
    canvas.clear()
    assert not canvas.mask.any()
    assert canvas.undo()
    np.testing.assert_array_equal(canvas.mask, erased)
    assert canvas.undo() and canvas.undo() and not canvas.undo()
    assert not canvas.mask.any()


def test_a_new_stroke_drops_the_redo_history_and_a_click_on_nothing_records_nothing(canvas, mouse):
    canvas.stroke([(50, 100), (60, 100)])
    canvas.undo()
    assert canvas.can_redo
    canvas.stroke([(150, 100)])
    assert not canvas.can_redo
    canvas.tool = "eraser"
    canvas.stroke([(10, 10)])  # erasing in the letterbox changes nothing, so records nothing
    assert canvas.undo() and not canvas.can_undo and not canvas.mask.any()


def test_brush_size_is_in_canvas_pixels(canvas):
    canvas.brush_size = 20
    canvas.stroke([(100, 100)])
    assert canvas.mask.sum() == stroke_mask([(200, 150)], 20, (400, 300)).sum()


def test_set_mask_is_checked_and_undoable_and_listeners_hear_every_edit(canvas):
    heard = []
    canvas.on_change(lambda c: heard.append(c.coverage))
    mask = np.zeros((300, 400), dtype=bool)
    mask[100:200, 100:300] = True
    canvas.set_mask(mask)
    assert canvas.coverage == pytest.approx(mask.mean())
    with pytest.raises(MaskError, match="400x300"):
        canvas.set_mask(np.ones((10, 10), dtype=bool))
    canvas.undo()
    canvas.stroke([(5, 100)])
    assert heard == [pytest.approx(mask.mean()), 0.0, pytest.approx(canvas.coverage)]


def test_set_photo_starts_over_and_show_keeps_the_mask(canvas, photo):
    canvas.stroke([(100, 100)])
    canvas.show(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert canvas.mask.any()
    with pytest.raises(TryOnInputError):
        canvas.show(Image.new("RGB", (10, 10)))
    canvas.set_photo(Image.new("RGB", (100, 400)))
    assert canvas.mask.shape == (400, 100) and not canvas.can_undo
    assert canvas.scale == 0.5 and canvas.offset == (75, 0)


def test_a_disabled_canvas_ignores_the_pointer(canvas, mouse):
    canvas.enabled = False
    mouse.drag(canvas.widget, [(50, 100), (150, 100)])
    assert not canvas.mask.any()


def test_a_browser_that_connects_gets_everything_redrawn_from_a_switch_canvas(canvas, monkeypatch):
    # ipycanvas only sends "switch canvas" when the target changes; a browser that connects
    # later (Voila, a reload) never saw the earlier one, so redraw() must send it again.
    manager = canvas.widget._canvas_manager
    sent = []
    monkeypatch.setattr(manager, "_send_custom", lambda command, buffers=(): sent.append(command))
    manager._current_canvas = canvas.widget[1]
    canvas.widget._handle_custom_msg({"event": "client_ready"}, [])
    commands = sent[0]  # one batch (hold_canvas) per layer group
    from ipycanvas.canvas import COMMANDS

    assert commands[0][0] == COMMANDS["switchCanvas"]
    assert sum(1 for batch in sent for command in batch if command[0] == COMMANDS["putImageData"]) >= 2
