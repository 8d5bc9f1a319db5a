"""Fixtures for the app tests: a tiny random back end per module, a tiny phone bundle, a photo,
synthetic mouse events."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture(scope="module")
def tiny_backend(tiny_pipeline_dir):
    """A PyTorchBackend over the tiny random pipeline (64x64, milliseconds per step)."""
    from tryon_lab.app import PyTorchBackend

    return PyTorchBackend.from_path(tiny_pipeline_dir)


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory):
    """A catalog folder as `tryon-lab world render` writes it: 4 garments, 2 products, 2 scenes."""
    from tryon_lab.data.catalog import write_catalog
    from tryon_lab.data.world import World

    return write_catalog(tmp_path_factory.mktemp("catalog"), World(0, 96), n_garments=4, n_products=2, n_scenes=2)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_pipeline_dir):
    """A phone bundle of the tiny random pipeline with ExecuTorch programs only, as `tryon-lab
    export --targets executorch` writes it (lowering four programs: minutes on 2 cores)."""
    from tryon_lab.export.bundle import ExportOptions, write_bundle
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.golden import make_golden
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    components = pipeline_components(pipe)
    options = ExportOptions(targets=("executorch",), steps=2)
    golden = make_golden(pipe, components, steps=options.steps)
    return write_bundle(tmp_path_factory.mktemp("bundles") / "tiny-bundle", pipe, components, golden, {}, options,
                        source=str(tiny_pipeline_dir), log=lambda _: None)


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

    def try_on(self, room, item_id: str | None = None) -> None:
        """In a ``FittingRoom``: choose ``item_id`` (default: the first garment), paint a stroke
        on the photo and press "Try it on"."""
        room.garments.select(item_id or next(i.id for i in room.garments.items.values() if i.kind == "garment"))
        self.drag(room.personalize.canvas.widget, [(100, 150), (200, 200), (240, 300)])
        room.personalize.try_on_button.click()


@pytest.fixture()
def mouse():
    """A ``Mouse`` that drives canvases through ipycanvas's own message handling."""
    return Mouse()
