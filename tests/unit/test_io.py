"""Hardened image and mask input: every bad-input case from the issue, every mode, numpy inputs."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tryon_lab.data.io import MAX_PIXELS, fit_image, fit_mask, load_image, load_mask
from tryon_lab.errors import (
    ImageFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    MaskError,
    TryOnInputError,
)


def encode(image, fmt="PNG", **params):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def gradient(width=40, height=24):
    """An RGB test image whose pixels differ, so rotations and crops are detectable."""
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1))


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR width/height and fix its CRC, leaving the pixel data small."""
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + png[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return png[:16] + ihdr + crc + png[33:]


# --- bad inputs: type of error and a message naming the file or problem ---------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(ImageFileError, match="nope.png.*not found"):
        load_image(path)


def test_directory(tmp_path):
    with pytest.raises(ImageFileError, match="is a directory"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path):
    path = write(tmp_path, "empty.jpg", b"")
    with pytest.raises(ImageFileError, match=r"empty\.jpg.*0 bytes"):
        load_image(path)


def test_zero_bytes_in_memory():
    with pytest.raises(ImageFileError, match="0 bytes"):
        load_image(b"")


def test_not_an_image(tmp_path):
    path = write(tmp_path, "notes.png", b"this is a text file, not a PNG\n" * 10)
    with pytest.raises(ImageFileError, match=r"notes\.png.*not an image"):
        load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    data = encode(Image.effect_noise((64, 64), 40).convert("RGB"), fmt)
    path = write(tmp_path, f"cut.{fmt.lower()}", data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=r"cut\..*truncated"):
        load_image(path)


def test_one_pixel_image(tmp_path):
    path = write(tmp_path, "dot.png", encode(Image.new("RGB", (1, 1), "red")))
    with pytest.raises(ImageTooSmallError, match=r"dot\.png.*1x1.*at least 16"):
        load_image(path)


def test_min_side_is_configurable(tmp_path):
    path = write(tmp_path, "dot.png", encode(Image.new("RGB", (1, 1), "red")))
    assert load_image(path, min_side=1).size == (1, 1)


def test_header_claims_too_many_pixels(tmp_path):
    png = patch_png_size(encode(Image.new("RGB", (8, 8))), 40000, 40000)
    assert struct.unpack(">II", png[16:24]) == (40000, 40000)
    assert zlib.crc32(png[12:29]) == struct.unpack(">I", png[29:33])[0]  # a valid IHDR chunk
    path = write(tmp_path, "bomb.png", png)
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png.*1600000000 pixels"):
        load_image(path)


def test_header_over_our_limit_under_pils(tmp_path):
    png = patch_png_size(encode(Image.new("RGB", (8, 8))), 8000, 6000)
    path = write(tmp_path, "big.png", png)
    with pytest.raises(ImageTooLargeError, match=r"big\.png.*8000x6000.*limit of 40,000,000"):
        load_image(path)


def test_pil_bomb_warning_is_a_typed_error(tmp_path):
    # Between PIL's warning and error thresholds, with our own limit lifted.
    png = patch_png_size(encode(Image.new("RGB", (8, 8))), 10000, 10000)
    with pytest.raises(ImageTooLargeError, match=r"warn\.png.*100000000 pixels"):
        load_image(write(tmp_path, "warn.png", png), max_pixels=10**12)


def test_max_pixels_checked_before_decoding(tmp_path):
    assert MAX_PIXELS == 40_000_000
    path = write(tmp_path, "big.png", encode(Image.new("RGB", (300, 200))))
    with pytest.raises(ImageTooLargeError, match="300x200"):
        load_image(path, max_pixels=300 * 200 - 1)


def test_unsupported_source_type():
    with pytest.raises(TryOnInputError, match="int"):
        load_image(42)


@pytest.mark.parametrize(
    "array, problem",
    [
        (np.zeros((4, 4, 2), np.uint8), "HxW"),
        (np.full((20, 20), 1.5), r"\[0, 1\]"),
        (np.full((20, 20), np.nan), "NaN"),
        (np.full((20, 20), 300, np.int64), "0..255"),
    ],
)
def test_bad_arrays(array, problem):
    with pytest.raises(TryOnInputError, match=problem):
        load_image(array)


# --- orientation and modes --------------------------------------------------------------------


def test_exif_rotation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image = gradient(40, 24)
    path = write(tmp_path, "phone.jpg", encode(image, "JPEG", exif=exif, quality=95))
    loaded = load_image(path)
    assert loaded.size == (24, 40)
    expected = np.asarray(image.transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert np.abs(np.asarray(loaded, dtype=float) - expected).mean() < 4


def test_rgba_composited_on_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (0, 0, 10, 20))
    loaded = load_image(encode(rgba))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((2, 2)) == (255, 255, 255)
    assert loaded.getpixel((15, 2)) == (255, 0, 0)


def test_la_composited_on_white():
    la = Image.new("LA", (20, 20), (0, 128))
    assert load_image(encode(la)).getpixel((0, 0)) == (127, 127, 127)


def test_palette_with_transparency():
    p = Image.new("P", (20, 20), 1)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.paste(0, (0, 0, 10, 20))
    loaded = load_image(encode(p, transparency=0))
    assert loaded.getpixel((2, 2)) == (255, 255, 255)
    assert loaded.getpixel((15, 2)) == (0, 255, 0)


def test_palette_without_transparency():
    p = Image.new("P", (20, 20), 1)
    p.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert load_image(encode(p)).getpixel((0, 0)) == (10, 20, 30)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # pure red ink
    loaded = load_image(encode(cmyk, "JPEG", quality=95))
    r, g, b = loaded.getpixel((10, 10))
    assert loaded.mode == "RGB" and r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_and_bilevel(mode):
    image = Image.new(mode, (20, 20), 0)
    image.paste(255, (10, 0, 20, 20))
    loaded = load_image(encode(image))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((2, 2)) == (0, 0, 0)
    assert loaded.getpixel((15, 2)) == (255, 255, 255)


def test_sixteen_bit_png_scaled_not_clipped():
    values = np.array([[0, 257 * 100, 40000, 65535]] * 20, dtype=np.uint16).repeat(5, axis=1)
    loaded = load_image(encode(Image.fromarray(values)))
    row = np.asarray(loaded)[0, ::5, 0]
    assert row.tolist() == [0, 100, round(40000 / 257), 255]


def test_32_bit_integer_mode_read_as_16_bit():
    image = Image.fromarray(np.full((20, 20), 257 * 128, np.int32))
    assert image.mode == "I"
    assert load_image(image).getpixel((0, 0)) == (128, 128, 128)


def test_float_mode_uses_pil_scale():
    image = Image.fromarray(np.full((20, 20), 200.0, np.float32))
    assert image.mode == "F"
    assert load_image(image).getpixel((0, 0)) == (200, 200, 200)


def test_pil_input_is_not_modified():
    image = Image.new("RGBA", (20, 20), (1, 2, 3, 0))
    load_image(image)
    assert image.mode == "RGBA" and image.getpixel((0, 0)) == (1, 2, 3, 0)


def test_file_object_and_bytes(tmp_path):
    data = encode(gradient())
    from_file = load_image(io.BytesIO(data))
    assert np.array_equal(np.asarray(from_file), np.asarray(load_image(data)))
    assert np.array_equal(np.asarray(from_file), np.asarray(gradient()))


# --- numpy inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((20, 30), 77, np.uint8), (77, 77, 77)),
        (np.full((20, 30, 1), 77, np.uint8), (77, 77, 77)),
        (np.full((20, 30, 3), (1, 2, 3), np.uint8), (1, 2, 3)),
        (np.full((20, 30, 4), (10, 20, 30, 255), np.uint8), (10, 20, 30)),
        (np.full((20, 30, 4), (10, 20, 30, 0), np.uint8), (255, 255, 255)),
        (np.full((20, 30), 257 * 9, np.uint16), (9, 9, 9)),
        (np.full((20, 30, 3), 0.5, np.float32), (128, 128, 128)),
        (np.ones((20, 30), bool), (255, 255, 255)),
    ],
)
def test_numpy_inputs(array, expected):
    loaded = load_image(array)
    assert loaded.size == (30, 20) and loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == expected


def test_tiny_array_too_small():
    with pytest.raises(ImageTooSmallError, match="2x3"):
        load_image(np.zeros((3, 2), np.uint8))


# --- fitting ----------------------------------------------------------------------------------


def test_fit_pad_keeps_aspect():
    fitted = fit_image(Image.new("RGB", (200, 100), "black"), 64)
    assert fitted.size == (64, 64)
    assert fitted.getpixel((32, 2)) == (255, 255, 255)  # padding band above
    assert fitted.getpixel((32, 32)) == (0, 0, 0)


def test_fit_crop_fills():
    fitted = fit_image(Image.new("RGB", (200, 100), "black"), 64, mode="crop")
    assert fitted.size == (64, 64) and fitted.getextrema() == ((0, 0),) * 3


def test_fit_rectangular_target_and_bad_mode():
    assert fit_image(gradient(), (30, 10)).size == (30, 10)
    with pytest.raises(TryOnInputError, match="stretch"):
        fit_image(gradient(), 8, mode="stretch")


def test_fit_mask_matches_fit_image():
    mask = np.zeros((100, 200), bool)
    mask[40:60, 80:120] = True
    image = Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB")
    for mode in ("pad", "crop"):
        fitted = fit_mask(mask, 64, mode=mode)
        assert fitted.dtype == bool and fitted.shape == (64, 64)
        reference = np.asarray(fit_image(image, 64, mode=mode, fill=(0, 0, 0)))[..., 0] > 127
        assert (fitted != reference).mean() < 0.03


# --- masks ------------------------------------------------------------------------------------


def test_mask_size_differs_from_image(tmp_path):
    path = write(tmp_path, "mask.png", encode(Image.new("L", (50, 40), 255)))
    image = Image.new("RGB", (100, 80))
    with pytest.raises(MaskError, match=r"mask\.png.*50x40.*100x80"):
        load_mask(path, image=image)
    with pytest.raises(MaskError, match="50x40.*100x80"):
        load_mask(path, size=(100, 80))


def test_mask_resize_on_request():
    mask = np.zeros((40, 50), bool)
    mask[:, :25] = True
    resized = load_mask(mask, size=(100, 80), resize=True)
    assert resized.shape == (80, 100)
    assert resized[:, :50].all() and not resized[:, 50:].any()


def test_empty_mask(tmp_path):
    path = write(tmp_path, "blank.png", encode(Image.new("L", (20, 20), 0)))
    with pytest.raises(MaskError, match=r"blank\.png.*empty"):
        load_mask(path)
    assert not load_mask(path, allow_empty=True).any()


def test_all_ones_mask(tmp_path):
    path = write(tmp_path, "full.png", encode(Image.new("L", (20, 20), 255)))
    assert load_mask(path).all()  # allowed by default: inpaint everything
    with pytest.raises(MaskError, match=r"full\.png.*whole image"):
        load_mask(path, allow_full=False)


def test_mask_uses_alpha_when_not_opaque():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (0, 0, 5, 20))
    mask = load_mask(rgba)
    assert mask[:, :5].all() and not mask[:, 5:].any()


def test_mask_uses_luminance_when_alpha_is_opaque():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 255))
    rgba.paste((255, 255, 255, 255), (0, 0, 5, 20))
    mask = load_mask(rgba)
    assert mask[:, :5].all() and not mask[:, 5:].any()


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0, 1]], bool),
        np.array([[0, 1]], np.uint8),
        np.array([[0, 255]], np.uint8),
        np.array([[0, 65535]], np.uint16),
        np.array([[0.2, 0.9]], np.float32),
        np.array([[0, 1]], np.int64),
    ],
)
def test_mask_array_dtypes(values):
    assert load_mask(values.repeat(3, axis=0)).tolist() == [[False, True]] * 3


def test_mask_threshold_and_bad_values():
    values = np.array([[0.3, 0.6]])
    assert load_mask(values, threshold=0.2).all()
    with pytest.raises(TryOnInputError, match=r"\[0, 1\]"):
        load_mask(np.array([[0.0, 2.0]]))


def test_mask_from_16_bit_and_palette_pngs():
    sixteen = np.zeros((20, 20), np.uint16)
    sixteen[:, :4] = 65535
    assert load_mask(encode(Image.fromarray(sixteen))).sum() == 80
    p = Image.new("P", (20, 20), 0)
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    p.paste(1, (0, 0, 4, 20))
    assert load_mask(encode(p)).sum() == 80


def test_mask_size_and_image_are_exclusive():
    with pytest.raises(TryOnInputError, match="either size or image"):
        load_mask(np.ones((4, 4), bool), size=(4, 4), image=Image.new("RGB", (4, 4)))
