"""A photo with a paintable mask: an ipycanvas MultiCanvas driven by mouse and touch events.

The canvas has a fixed size in canvas pixels; the photo is letterboxed into it at ``scale``
canvas pixels per photo pixel. Every pointer event is mapped to photo pixels and stamped into a
bool mask at the photo's own size with ``tryon_lab.data.masks.add_stroke``, so the mask the
model gets never depends on the screen. The same segment is drawn in the browser for feedback.

Three layers make the mask look translucent without darkening where strokes overlap: the
photo, the mask painted in an opaque colour, and the photo again at ``1 - alpha`` on top.
Inside the mask that gives ``(1 - alpha) * photo + alpha * colour``; elsewhere, the photo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
from ipycanvas import MultiCanvas, hold_canvas
from PIL import Image

from tryon_lab.data.io import load_image
from tryon_lab.data.masks import add_stroke
from tryon_lab.errors import MaskError, TryOnInputError

BRUSH, ERASER = "brush", "eraser"
BACKGROUND = "#eceef2"
HISTORY = 30
# ipycanvas routes every draw through one shared manager that remembers the "current" canvas;
# the worker thread (previews) and the kernel's main thread (strokes) must not interleave.
DRAW_LOCK = threading.RLock()


@contextmanager
def drawing():
    """Hold the draw lock and batch ipycanvas commands into one message."""
    with DRAW_LOCK, hold_canvas():
        yield


class MaskCanvas:
    """A photo and a bool mask (photo-sized) edited with a round brush and an eraser.

    ``widget`` is the ipycanvas ``MultiCanvas`` to display. ``colour`` and ``alpha`` style the
    mask; ``keep_overlay=False`` shows strokes only while they are drawn (the restore brush).
    Edits are undoable; ``on_change(callback)`` runs ``callback(self)`` after each finished edit.
    Settable: ``tool`` (``BRUSH`` or ``ERASER``), ``brush_size`` (diameter in canvas pixels),
    ``enabled``. Read: ``scale`` (canvas pixels per photo pixel), ``offset`` and ``size`` (the
    photo's place on the canvas, in canvas pixels).
    """

    def __init__(self, width: int = 336, height: int = 420, colour: tuple[int, int, int] = (255, 0, 80),
                 alpha: float = 0.45, keep_overlay: bool = True, css_class: str = "tryon-canvas") -> None:
        self.widget = MultiCanvas(3, width=width, height=height)
        self.widget.add_class(css_class)
        self.colour, self.alpha, self.keep_overlay = colour, alpha, keep_overlay
        self.tool = BRUSH
        self.brush_size = 14
        self.enabled = True
        self._photo = Image.new("RGB", (width, height), BACKGROUND)
        self._shown = self._photo
        self._mask = np.zeros((height, width), dtype=bool)
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._before_stroke: np.ndarray | None = None
        self._last: tuple[float, float] | None = None
        self._listeners: list[Callable[[MaskCanvas], None]] = []
        self._fit()
        self.widget.on_mouse_down(lambda x, y: self.pointer("down", x, y))
        self.widget.on_mouse_move(lambda x, y: self.pointer("move", x, y))
        self.widget.on_mouse_up(lambda x, y: self.pointer("up", x, y))
        self.widget.on_mouse_out(lambda x, y: self.pointer("up", x, y))
        self.widget.on_touch_start(lambda touches: self.pointer("down", *touches[0]))
        self.widget.on_touch_move(lambda touches: self.pointer("move", *touches[0]))
        self.widget.on_touch_end(lambda touches: self.pointer("up", 0, 0))
        self.widget.on_touch_cancel(lambda touches: self.pointer("up", 0, 0))
        self.widget.on_client_ready(self.redraw)

    # -- state ---------------------------------------------------------------------------------
    @property
    def photo(self) -> Image.Image:
        """The photo being masked (RGB, its own size)."""
        return self._photo

    @property
    def mask(self) -> np.ndarray:
        """A copy of the mask: bool HxW at the photo's size, True = painted."""
        return self._mask.copy()

    @property
    def can_undo(self) -> bool:
        """Whether an edit can be undone."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether an undone edit can be redone."""
        return bool(self._redo)

    @property
    def coverage(self) -> float:
        """The painted fraction of the photo, in [0, 1]."""
        return float(self._mask.mean())

    def on_change(self, callback: Callable[[MaskCanvas], None]) -> None:
        """Call ``callback(self)`` after every finished edit (stroke, undo, redo, clear, set_mask)."""
        self._listeners.append(callback)

    def set_photo(self, image) -> None:
        """Show a new photo (anything ``load_image`` reads) with an empty mask and no history."""
        self._photo = self._shown = load_image(image)
        self._mask = np.zeros((self._photo.height, self._photo.width), dtype=bool)
        self._undo.clear()
        self._redo.clear()
        self._before_stroke = self._last = None
        self._fit()
        self.redraw()

    def show(self, image: Image.Image) -> None:
        """Display ``image`` in place of the photo (same size), keeping the photo and the mask."""
        if image.size != self._photo.size:
            raise TryOnInputError(f"cannot show a {image.size} image over a {self._photo.size} photo")
        self._shown = image.convert("RGB")
        self._draw_photo()

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the mask (bool, the photo's size) as one undoable edit."""
        mask = np.asarray(mask)
        if mask.shape != self._mask.shape:
            h, w = self._mask.shape
            raise MaskError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {w}x{h}")
        self._record(self._mask)
        self._mask = mask.astype(bool)
        self._changed(redraw=True)

    def clear(self) -> None:
        """Erase the whole mask (undoable)."""
        if self._mask.any():
            self.set_mask(np.zeros_like(self._mask))

    def undo(self) -> bool:
        """Undo the last edit; return False when there is nothing to undo."""
        if not self._undo:
            return False
        self._redo.append(_pack(self._mask))
        self._mask = _unpack(self._undo.pop(), self._mask.shape)
        self._changed(redraw=True)
        return True

    def redo(self) -> bool:
        """Redo the last undone edit; return False when there is nothing to redo."""
        if not self._redo:
            return False
        self._undo.append(_pack(self._mask))
        self._mask = _unpack(self._redo.pop(), self._mask.shape)
        self._changed(redraw=True)
        return True

    # -- pointer events ------------------------------------------------------------------------
    def to_photo(self, x: float, y: float) -> tuple[float, float]:
        """Map canvas pixel coordinates to photo pixel coordinates."""
        return (x - self.offset[0]) / self.scale, (y - self.offset[1]) / self.scale

    def pointer(self, event: str, x: float, y: float) -> None:
        """Handle one pointer event at canvas pixel (x, y): ``"down"``, ``"move"`` or ``"up"``.

        This is what the canvas's mouse and touch handlers call; moves while no button is down
        do nothing, each move while it is down paints the segment from the previous point, and
        "up" (whose position is not used) ends the stroke as one undoable edit.
        """
        if event == "down" and self.enabled:
            self._before_stroke = self._mask.copy()
            self._last = None
            self._paint(x, y)
        elif event == "move" and self._before_stroke is not None:
            self._paint(x, y)
        elif event == "up" and self._before_stroke is not None:
            self._end_stroke()
        elif event not in ("down", "move", "up"):
            raise TryOnInputError(f"pointer event must be 'down', 'move' or 'up', got {event!r}")

    def stroke(self, points) -> None:
        """Apply the current tool along a polyline of canvas-pixel points, as one edit."""
        points = [tuple(p) for p in points]
        if not points:
            raise TryOnInputError("a stroke needs at least one (x, y) point")
        self.pointer("down", *points[0])
        for point in points[1:]:
            self.pointer("move", *point)
        self.pointer("up", *points[-1])

    def _paint(self, x: float, y: float) -> None:
        start = self._last or (x, y)
        self._last = (x, y)
        erase = self.tool == ERASER
        radius = self.brush_size / 2
        add_stroke(self._mask, [self.to_photo(*start), self.to_photo(x, y)], radius / self.scale, value=not erase)
        layer = self.widget[1]
        with drawing():
            layer.global_composite_operation = "destination-out" if erase else "source-over"
            layer.stroke_style = layer.fill_style = _css(self.colour)
            layer.line_width = 2 * radius
            layer.line_cap = "round"
            if start == (x, y):
                layer.fill_circle(x, y, radius)
            else:
                layer.stroke_line(*start, x, y)
            layer.global_composite_operation = "source-over"

    def _end_stroke(self) -> None:
        before, self._before_stroke, self._last = self._before_stroke, None, None
        if np.array_equal(before, self._mask):
            return
        self._record(before)
        self._changed(redraw=not self.keep_overlay)

    def _record(self, previous: np.ndarray) -> None:
        self._undo.append(_pack(previous))
        del self._undo[:-HISTORY]
        self._redo.clear()

    def _changed(self, redraw: bool) -> None:
        if redraw:
            self._draw_mask()
        for listener in self._listeners:
            listener(self)

    # -- drawing -------------------------------------------------------------------------------
    def _fit(self) -> None:
        width, height = self.widget.width, self.widget.height
        self.scale = min(width / self._photo.width, height / self._photo.height)
        self.size = (max(round(self._photo.width * self.scale), 1), max(round(self._photo.height * self.scale), 1))
        self.offset = ((width - self.size[0]) // 2, (height - self.size[1]) // 2)

    def redraw(self) -> None:
        """Draw every layer again (a newly connected browser starts from a blank canvas)."""
        # A new browser view has not seen ipycanvas's "switch canvas" command; forgetting the
        # manager's current canvas makes it send one again (voila#1447, ipycanvas#342).
        with drawing():
            self.widget._canvas_manager._current_canvas = None
            self._draw_photo()
            self._draw_mask()

    def _draw_photo(self) -> None:
        pixels = np.asarray(self._shown.resize(self.size, Image.Resampling.LANCZOS))
        base, veil = self.widget[0], self.widget[2]
        with drawing():
            base.clear()
            base.fill_style = BACKGROUND
            base.fill_rect(0, 0, self.widget.width, self.widget.height)
            base.put_image_data(pixels, *self.offset)
            veil.clear()
            veil.global_alpha = 1.0 - self.alpha
            veil.put_image_data(pixels, *self.offset)
            veil.global_alpha = 1.0

    def _draw_mask(self) -> None:
        layer = self.widget[1]
        with drawing():
            # Drop the previous clip first: clear() only clears inside it. Then clip to the
            # photo, so that strokes that leave it do not paint the letterbox.
            layer.restore()
            layer.clear()
            layer.save()
            layer.begin_path()
            layer.rect(*self.offset, *self.size)
            layer.clip()
            if self.keep_overlay and self._mask.any():
                layer.put_image_data(self._overlay_pixels(), *self.offset)

    def _overlay_pixels(self) -> np.ndarray:
        small = Image.fromarray(self._mask).resize(self.size, Image.Resampling.NEAREST)
        rgba = np.zeros((self.size[1], self.size[0], 4), dtype=np.uint8)
        rgba[..., :3] = self.colour
        rgba[..., 3] = np.asarray(small, dtype=np.uint8) * 255
        return rgba


def _css(colour: tuple[int, int, int]) -> str:
    return "rgb({}, {}, {})".format(*colour)


def _pack(mask: np.ndarray) -> np.ndarray:
    # Undo history holds whole masks; packed bits keep 30 photo-sized masks small.
    return np.packbits(mask)


def _unpack(packed: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(bool)
