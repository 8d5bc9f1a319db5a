"""Hardened image and mask input: any source, any mode, any size, clear typed errors.

Every loader here checks an image's size from its header before decoding it (a guard against
decompression bombs), forces a full decode so truncated files fail here rather than later, and
applies the EXIF orientation so that photos come out the way the camera held them.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tryon_lab.errors import (
    ImageFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    MaskError,
    TryOnInputError,
)

MAX_PIXELS = 40_000_000
"""Default pixel-count limit (width * height) for any loaded image or mask."""

MIN_SIDE = 16
"""Default minimum side length, in pixels, of a loaded image."""

WHITE = (255, 255, 255)

ImageSource = str | Path | bytes | bytearray | BinaryIO | Image.Image | np.ndarray

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}


def _describe(source: Any) -> str:
    """Return a short human-readable name for an image source, used in error messages."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.width}x{source.height}>"
    if isinstance(source, np.ndarray):
        return f"<array {'x'.join(map(str, source.shape))} {source.dtype}>"
    return str(getattr(source, "name", "<file object>"))


def open_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, min_side: int = 1
) -> Image.Image:
    """Open, fully decode and EXIF-orient an image, keeping its mode.

    Takes a path, bytes, a binary file object, a PIL image or a numpy array (see
    ``load_image``). Returns a new PIL image (the caller's image is never modified).
    Raises ``ImageFileError``, ``ImageTooLargeError``, ``ImageTooSmallError`` or
    ``TryOnInputError``, each naming the source.
    """
    name = _describe(source)
    if isinstance(source, np.ndarray):
        image = _from_array(source, name)
        _check_size(image.size, name, max_pixels, min_side)
    elif isinstance(source, Image.Image):
        _check_size(source.size, name, max_pixels, min_side)
        _decode(source, name)
        image = source.copy()
    elif isinstance(source, (str, Path)):
        with open(_checked_path(Path(source)), "rb") as fp:
            image = _open_stream(fp, name, max_pixels, min_side)
    elif isinstance(source, (bytes, bytearray)) or hasattr(source, "read"):
        data = bytes(source) if isinstance(source, (bytes, bytearray)) else source.read()
        if not data:
            raise ImageFileError(f"{name}: is empty (0 bytes), not an image")
        image = _open_stream(io.BytesIO(data), name, max_pixels, min_side)
    else:
        raise TryOnInputError(
            f"cannot read an image from {type(source).__name__}; expected a path, bytes, "
            "a file object, a PIL image or a numpy array"
        )
    return _exif_oriented(image)


def load_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE
) -> Image.Image:
    """Load any image source as an 8-bit RGB PIL image.

    ``source``: a path (str/Path), bytes, a binary file object, a PIL image, or a numpy
    array HxW, HxWx1, HxWx3 or HxWx4 of uint8, uint16 (0..65535) or float in [0, 1].
    Transparent pixels are composited on white; 16-bit images are scaled to 8 bits
    (65535 -> 255; PIL's 32-bit "I" mode is read as 16-bit data); PIL "F" images use PIL's
    own 0..255 scale and are clipped.
    Raises ``ImageFileError`` (missing, directory, empty, not an image, truncated),
    ``ImageTooLargeError`` (more than ``max_pixels`` pixels, checked from the header before
    decoding) or ``ImageTooSmallError`` (a side shorter than ``min_side``); messages name
    the source.
    """
    name = _describe(source)
    return _to_rgb(open_image(source, max_pixels=max_pixels, min_side=min_side), name)


def fit_image(
    image: Image.Image,
    size: int | tuple[int, int],
    *,
    mode: str = "pad",
    fill: tuple[int, int, int] = WHITE,
) -> Image.Image:
    """Resize a PIL image to ``size`` (an int for a square, or (w, h)) keeping its aspect ratio.

    ``mode="pad"`` fits the whole image and fills the borders with ``fill``;
    ``mode="crop"`` fills the target and crops the overflow around the centre.
    """
    return _fit(image, size, mode, Image.Resampling.LANCZOS, fill)


def fit_mask(mask: np.ndarray, size: int | tuple[int, int], *, mode: str = "pad") -> np.ndarray:
    """Resize a bool HxW mask exactly as ``fit_image`` resizes its image (nearest; pad is False)."""
    image = Image.fromarray(np.asarray(mask, dtype=bool))
    fitted = _fit(image, size, mode, Image.Resampling.NEAREST, 0)
    return np.asarray(fitted, dtype=bool)


def content_box(image_size: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """Return (left, top, right, bottom) of an image of ``image_size`` (w, h) inside its
    ``fit_image(image, size, mode="pad")`` square: where the photo's pixels landed."""
    width, height = ImageOps.contain(Image.new("1", image_size), (size, size)).size
    left = round((size - width) * 0.5) if width != size else 0
    top = round((size - height) * 0.5) if height != size else 0
    return left, top, left + width, top + height


def load_mask(
    source: ImageSource,
    *,
    size: tuple[int, int] | None = None,
    image: Image.Image | None = None,
    resize: bool = False,
    allow_empty: bool = False,
    allow_full: bool = True,
    threshold: float = 0.5,
) -> np.ndarray:
    """Load a mask as a bool HxW array (True = the region to inpaint).

    ``source``: a path, bytes, file object, PIL image or numpy array. PIL images use their
    alpha channel if they have one that is not fully opaque, else their luminance. Values are
    scaled to [0, 1] (bool as is; integer arrays whose values are all 0 or 1 as 0/1 masks,
    other integers as 0..255, or 0..65535 for uint16; floats must lie in [0, 1]) and pixels
    above ``threshold`` are True.
    ``size`` (w, h) or ``image`` give the expected size: a mask of another size raises
    ``MaskError`` naming both sizes, unless ``resize=True``, which stretches it to the expected
    size with nearest-neighbour sampling (for masks drawn on a rescaled copy of the image).
    An empty mask raises ``MaskError`` unless ``allow_empty``; an all-True mask (inpaint
    everything) is allowed unless ``allow_full=False``.
    """
    name = _describe(source)
    if size is not None and image is not None:
        raise TryOnInputError("load_mask: pass either size or image, not both")
    expected = image.size if image is not None else size

    if isinstance(source, np.ndarray) and source.ndim == 2:
        values = _mask_values(source, name)
    else:
        values = _mask_values(_mask_channel(open_image(source), name), name)
    mask = values > threshold

    actual = (mask.shape[1], mask.shape[0])
    if expected is not None and actual != tuple(expected):
        if not resize:
            raise MaskError(
                f"mask {name} is {actual[0]}x{actual[1]} but the image is "
                f"{expected[0]}x{expected[1]}; pass resize=True to stretch it"
            )
        resized = Image.fromarray(mask).resize(tuple(expected), Image.Resampling.NEAREST)
        mask = np.asarray(resized, dtype=bool)

    if not allow_empty and not mask.any():
        raise MaskError(f"mask {name} is empty: no pixel is above the threshold {threshold}")
    if not allow_full and mask.all():
        raise MaskError(f"mask {name} covers the whole image, which is not allowed here")
    return mask


def _checked_path(path: Path) -> Path:
    if not path.exists():
        raise ImageFileError(f"{path}: file not found")
    if path.is_dir():
        raise ImageFileError(f"{path}: is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: is empty (0 bytes), not an image")
    return path


def _check_size(size: tuple[int, int], name: str, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} = {width * height:,} pixels is more than the limit of "
            f"{max_pixels:,} (pass a larger max_pixels only for files you trust)"
        )
    if min(width, height) < min_side:
        raise ImageTooSmallError(
            f"{name}: {width}x{height} is too small; each side must be at least {min_side} px"
        )


def _open_stream(fp: BinaryIO, name: str, max_pixels: int, min_side: int) -> Image.Image:
    # PIL warns (and above twice its limit, raises) on huge images; make both a typed error.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(fp)
        except UnidentifiedImageError as exc:
            raise ImageFileError(f"{name}: not an image file (unrecognised format)") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLargeError(f"{name}: refused before decoding: {exc}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageFileError(f"{name}: unreadable image header ({exc})") from exc
        _check_size(image.size, name, max_pixels, min_side)
        _decode(image, name)
    return image


def _decode(image: Image.Image, name: str) -> None:
    # A full decode now makes a truncated file fail here, with its name, not deep in a model.
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFileError(f"{name}: truncated or corrupt image data ({exc})") from exc


def _exif_oriented(image: Image.Image) -> Image.Image:
    try:
        oriented = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        # A malformed EXIF block should not reject an otherwise good photo: keep it unrotated.
        return image
    return image if oriented is None else oriented


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE), rgba).convert("RGB")
    if image.mode in _SIXTEEN_BIT_MODES:
        # PIL's own I -> L conversion clips at 255 instead of scaling, which whitens 16-bit photos.
        values = np.asarray(image).astype(np.float64) / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        message = f"{name}: cannot convert image mode {image.mode!r} to RGB ({exc})"
        raise ImageFileError(message) from exc


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise TryOnInputError(f"{name}: expected an HxW, HxWx1, HxWx3 or HxWx4 array")
    if array.dtype == bool:
        pixels = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        pixels = np.rint(array / 257.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        _check_unit_range(array, name)
        pixels = np.rint(array * 255.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise TryOnInputError(
                f"{name}: integer pixel values must lie in 0..255 (or use uint16 for 16-bit); "
                f"got {array.min()}..{array.max()}"
            )
        pixels = array.astype(np.uint8)
    else:
        raise TryOnInputError(f"{name}: unsupported array dtype {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(pixels))


def _check_unit_range(array: np.ndarray, name: str) -> None:
    if not np.isfinite(array).all():
        raise TryOnInputError(f"{name}: float array contains NaN or infinity")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise TryOnInputError(
            f"{name}: float values must lie in [0, 1]; got {array.min():g}..{array.max():g}"
        )


def _mask_channel(image: Image.Image, name: str) -> np.ndarray:
    """The alpha channel if it carries information, else the luminance, as uint8 HxW."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema()[0] < 255:
            return np.asarray(alpha)
    return np.asarray(_to_rgb(image, name).convert("L"))


def _mask_values(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.floating):
        _check_unit_range(array, name)
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise TryOnInputError(f"mask {name}: unsupported dtype {array.dtype}")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if high <= 1 and low >= 0:
        return array.astype(bool)
    scale = 65535 if array.dtype == np.uint16 else 255
    if low < 0 or high > scale:
        raise TryOnInputError(
            f"mask {name}: integer values must lie in 0..{scale}; got {low}..{high}"
        )
    return array / scale


def _fit(
    image: Image.Image, size: int | tuple[int, int], mode: str, resample: int, fill: Any
) -> Image.Image:
    target = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if min(target) < 1:
        raise TryOnInputError(f"fit: target size must be positive, got {target}")
    if mode == "pad":
        return ImageOps.pad(image, target, method=resample, color=fill)
    if mode == "crop":
        return ImageOps.fit(image, target, method=resample)
    raise TryOnInputError(f"fit: mode must be 'pad' or 'crop', got {mode!r}")


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as a PNG at ``path`` (creating its folder) atomically: a failed save never leaves
    a half-written file there. Returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
