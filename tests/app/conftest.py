"""Fixtures for the app tests: a tiny random back end per module, a photo, synthetic mouse events."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def tiny_backend(tiny_pipeline_dir):
    """A PyTorchBackend over the tiny random pipeline (64x64, milliseconds per step)."""
    from tryon_lab.app import PyTorchBackend

    return PyTorchBackend.from_path(tiny_pipeline_dir)


@pytest.fixture()
def photo():
    """A 400x300 photo with a gradient, so restored and generated pixels differ."""
    return Image.linear_gradient("L").resize((400, 300)).convert("RGB")


class Mouse:
    """Sends mouse events to an ipycanvas widget the way the browser does: as custom comm
    messages, which ipycanvas dispatches to the registered handlers."""

    @staticmethod
    def send(widget, event: str, x: float = 0.0, y: float = 0.0) -> None:
        """Deliver one ``mouse_down`` / ``mouse_move`` / ``mouse_up`` / ``mouse_out`` event."""
        widget._handle_custom_msg({"event": event, "x": x, "y": y}, [])

    def drag(self, widget, points) -> None:
        """Press at the first point, move through the rest, release at the last."""
        self.send(widget, "mouse_down", *points[0])
        for point in points[1:]:
            self.send(widget, "mouse_move", *point)
        self.send(widget, "mouse_up", *points[-1])


@pytest.fixture()
def mouse():
    """A ``Mouse`` that drives canvases through ipycanvas's own message handling."""
    return Mouse()
