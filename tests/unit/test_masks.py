"""Property tests for the mask tools."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tryon_lab.data.masks import (
    add_stroke,
    bounding_box,
    box_mask,
    content_box,
    dilate,
    erode,
    feather,
    largest_rectangle,
    make_collage,
    mask_to_image,
    overlay,
    stroke_mask,
)
from tryon_lab.errors import MaskError, TryOnInputError

PROPERTY = settings(max_examples=50, deadline=None)

small_masks = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda shape: arrays(bool, shape)
)
masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(lambda shape: arrays(bool, shape))
radii = st.integers(0, 4)


def nonempty(strategy):
    return strategy.filter(lambda m: m.any())


def brute_force_largest_area(mask):
    h, w = mask.shape
    return max(
        (b - t) * (r - c)
        for t in range(h)
        for b in range(t + 1, h + 1)
        for c in range(w)
        for r in range(c + 1, w + 1)
        if mask[t:b, c:r].all()
    )


# --- largest_rectangle ------------------------------------------------------------------------


@PROPERTY
@given(nonempty(small_masks))
def test_largest_rectangle_is_maximal_and_optimal(mask):
    top, left, bottom, right = largest_rectangle(mask)
    h, w = mask.shape
    assert 0 <= top < bottom <= h and 0 <= left < right <= w
    assert mask[top:bottom, left:right].all()
    for t, c, b, r in [
        (top - 1, left, bottom, right),
        (top, left - 1, bottom, right),
        (top, left, bottom + 1, right),
        (top, left, bottom, right + 1),
    ]:
        if 0 <= t and 0 <= c and b <= h and r <= w:
            assert not mask[t:b, c:r].all()
    assert (bottom - top) * (right - left) == brute_force_largest_area(mask)


def test_largest_rectangle_examples():
    mask = np.zeros((6, 8), bool)
    mask[1:5, 2:7] = True
    mask[0, 0] = True
    assert largest_rectangle(mask) == (1, 2, 5, 7)
    assert largest_rectangle(np.ones((3, 4), bool)) == (0, 0, 3, 4)
    with pytest.raises(MaskError, match="empty"):
        largest_rectangle(np.zeros((3, 3), bool))


# --- morphology -------------------------------------------------------------------------------


@PROPERTY
@given(masks, radii)
def test_dilate_contains_mask_contains_erode(mask, px):
    grown, shrunk = dilate(mask, px), erode(mask, px)
    assert grown.dtype == bool and shrunk.dtype == bool
    assert (grown | ~mask).all() and (mask | ~shrunk).all()


@PROPERTY
@given(masks, radii)
def test_closing_contains_and_opening_within(mask, px):
    assert (erode(dilate(mask, px), px) | ~mask).all()
    assert (mask | ~dilate(erode(mask, px), px)).all()


@PROPERTY
@given(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))
def test_closing_a_rectangle_gives_it_back(px, height, width):
    mask = box_mask((8, 8, 8 + height, 8 + width), (30, 30))
    assert np.array_equal(erode(dilate(mask, px), px), mask)


def test_dilate_uses_a_disc():
    dot = np.zeros((9, 9), bool)
    dot[4, 4] = True
    disc = dilate(dot, 2)
    ys, xs = np.mgrid[:9, :9]
    assert np.array_equal(disc, (ys - 4) ** 2 + (xs - 4) ** 2 <= 4)
    assert np.array_equal(erode(disc, 2), dot)


def test_erode_does_not_eat_the_image_border():
    assert erode(np.ones((5, 5), bool), 2).all()


def test_negative_radius_rejected():
    with pytest.raises(TryOnInputError, match="radius"):
        dilate(np.ones((3, 3), bool), -1)


# --- feather ----------------------------------------------------------------------------------


@PROPERTY
@given(masks, st.integers(1, 4))
def test_feather_range_and_plateaus(mask, px):
    soft = feather(mask, px)
    assert soft.dtype == np.float32 and soft.shape == mask.shape
    assert soft.min() >= 0.0 and soft.max() <= 1.0
    assert (soft[erode(mask, px + 1)] == 1.0).all()
    assert (soft[~dilate(mask, px + 1)] == 0.0).all()
    assert (soft[mask] >= 0.5).all() and (soft[~mask] < 0.5).all()


@PROPERTY
@given(masks)
def test_feather_zero_is_identity(mask):
    assert np.array_equal(feather(mask, 0), mask.astype(float))


def test_feather_ramp_is_monotone_across_an_edge():
    mask = np.zeros((5, 40), bool)
    mask[:, 20:] = True
    row = feather(mask, 6)[2]
    assert (np.diff(row) >= 0).all() and row[0] == 0.0 and row[-1] == 1.0
    assert 0.0 < row[19] < 0.5 < row[20] < 1.0


# --- strokes ----------------------------------------------------------------------------------

points = st.lists(st.tuples(st.floats(-10, 40), st.floats(-10, 30)), min_size=1, max_size=6)


@PROPERTY
@given(points, st.floats(1, 6))
def test_stroke_contains_every_in_bounds_point(pts, radius):
    mask = stroke_mask(pts, radius, (30, 20))
    assert mask.shape == (20, 30)
    for x, y in pts:
        col, row = round(x), round(y)
        if 0 <= col < 30 and 0 <= row < 20:
            assert mask[row, col]


def test_single_point_is_a_disc():
    mask = stroke_mask([(10, 8)], 3, (20, 16))
    ys, xs = np.mgrid[:16, :20]
    assert np.array_equal(mask, (xs - 10) ** 2 + (ys - 8) ** 2 <= 9)


def test_stroke_segment_and_clipping():
    mask = stroke_mask([(-50, 5), (50, 5)], 1, (20, 10))
    assert mask[4:7].all() and not mask[:4].any() and not mask[7:].any()
    assert not stroke_mask([(-50, -50)], 3, (20, 10)).any()


def test_add_stroke_brush_and_eraser():
    mask = np.zeros((10, 10), bool)
    add_stroke(mask, [(0, 5), (9, 5)], 2)
    assert mask[5].all()
    add_stroke(mask, [(5, 5)], 1.5, value=False)
    assert not mask[5, 5] and mask[5, 0]


@pytest.mark.parametrize("radius", [0, -1])
def test_stroke_bad_radius(radius):
    with pytest.raises(TryOnInputError, match="radius"):
        stroke_mask([(1, 1)], radius, (5, 5))


def test_stroke_needs_points():
    with pytest.raises(TryOnInputError, match="point"):
        stroke_mask([], 2, (5, 5))


# --- boxes ------------------------------------------------------------------------------------

boxes = st.tuples(
    st.integers(0, 19), st.integers(1, 20), st.integers(0, 29), st.integers(1, 30)
).filter(lambda b: b[0] < b[1] and b[2] < b[3])


@PROPERTY
@given(boxes)
def test_box_mask_bounding_box_round_trip(spans):
    top, bottom, left, right = spans
    box = (top, left, bottom, right)
    mask = box_mask(box, (30, 20))
    assert mask.shape == (20, 30) and mask.sum() == (bottom - top) * (right - left)
    assert bounding_box(mask) == box


def test_box_clipped_and_invalid():
    assert box_mask((-5, -5, 2, 3), (10, 10)).sum() == 6
    with pytest.raises(TryOnInputError, match="top <= bottom"):
        box_mask((5, 0, 2, 3), (10, 10))
    with pytest.raises(MaskError, match="empty"):
        bounding_box(np.zeros((4, 4), bool))


# --- collage and display ----------------------------------------------------------------------

colours = st.tuples(st.integers(1, 255), st.integers(0, 255), st.integers(0, 255))


@PROPERTY
@given(nonempty(masks), colours, st.booleans())
def test_collage_background_outside_reference_inside(mask, colour, keep_aspect):
    reference = Image.new("RGB", (17, 9), colour)
    collage = np.asarray(make_collage(reference, mask, keep_aspect=keep_aspect))
    assert collage.shape == (*mask.shape, 3)
    top, left, bottom, right = largest_rectangle(mask)
    inside = np.zeros(mask.shape, bool)
    inside[top:bottom, left:right] = True
    assert (collage[~inside] == 0).all()
    assert collage[inside].any()


def test_collage_stretches_reference_into_rectangle():
    mask = box_mask((2, 3, 12, 23), (30, 16))
    reference = Image.new("RGB", (4, 4), (200, 10, 10))
    reference.paste((10, 10, 200), (0, 0, 2, 4))
    collage = make_collage(reference, mask, background=(0, 255, 0))
    assert collage.size == (30, 16)
    assert collage.getpixel((0, 0)) == (0, 255, 0)
    pixels = np.asarray(collage, dtype=int)
    left, right = pixels[2:12, 3:11], pixels[2:12, 15:23]  # the reference's two halves
    assert (left[..., 2] > 150).all() and (left[..., 0] < 50).all()
    assert (right[..., 0] > 150).all() and (right[..., 2] < 50).all()


def _catalog_shot(size=(40, 30), item=(8, 5, 26, 20), motif=(10, 16, 14, 20)):
    """A white-backed shot (w, h) with a red item at box ``item`` and a blue motif at box ``motif``
    (boxes as top, left, bottom, right)."""
    shot = Image.new("RGB", size, (255, 255, 255))
    shot.paste((200, 20, 20), (item[1], item[0], item[3], item[2]))
    shot.paste((20, 20, 200), (motif[1], motif[0], motif[3], motif[2]))
    return shot


def test_content_box_drops_a_catalog_backdrop_and_keeps_a_photo_whole():
    assert content_box(_catalog_shot()) == (8, 5, 26, 20)
    assert content_box(Image.new("RGB", (7, 5), (90, 90, 90))) == (0, 0, 5, 7)  # nothing but backdrop
    photo = _catalog_shot()
    photo.paste((0, 120, 0), (0, 0, 3, 3))  # a corner unlike the others: no common backdrop
    assert content_box(photo) == (0, 0, 30, 40)


@PROPERTY
@given(nonempty(masks), st.booleans())
def test_box_collage_fills_the_mask_bounding_box_with_the_content(mask, keep_aspect):
    collage = np.asarray(make_collage(_catalog_shot(), mask, layout="box", keep_aspect=keep_aspect, background=(0, 255, 0)))
    top, left, bottom, right = bounding_box(mask)
    inside = np.zeros(mask.shape, bool)
    inside[top:bottom, left:right] = True
    assert (collage[~inside] == (0, 255, 0)).all()
    if not keep_aspect:  # stretched, the content box fills it: no white backdrop survives
        assert not (collage[inside] == 255).all(axis=-1).any()


def test_box_collage_puts_the_motif_where_the_item_shows_it():
    """The item fills the mask's box, so a motif at the item's top right lands at the box's top right,
    magnified as the item is: the paper's layout shrinks the whole shot into the inscribed rectangle."""
    mask = box_mask((4, 10, 40, 46), (60, 50))  # rows 4-40, columns 10-46 of a 60 x 50 image
    box, rectangle = (np.asarray(make_collage(_catalog_shot(), mask, layout=layout)) for layout in ("box", "rectangle"))
    blue = [(c[..., 2] > 150) & (c[..., 0] < 80) for c in (box, rectangle)]
    # the item spans 18 rows x 15 columns of the shot; its motif rows 2-6, columns 11-15 of it
    rows, cols = np.nonzero(blue[0])
    assert (rows.min(), rows.max() + 1) == pytest.approx((4 + 2 * 36 / 18, 4 + 6 * 36 / 18), abs=1)
    assert (cols.min(), cols.max() + 1) == pytest.approx((10 + 11 * 36 / 15, 10 + 15 * 36 / 15), abs=1)
    assert blue[0].sum() > 2 * blue[1].sum()


def test_an_unknown_hint_layout_is_refused():
    with pytest.raises(TryOnInputError, match="layout"):
        make_collage(_catalog_shot(), np.ones((4, 4), bool), layout="grid")


def test_mask_to_image_and_overlay():
    mask = box_mask((0, 0, 2, 4), (4, 4))
    shown = mask_to_image(mask)
    assert shown.mode == "L" and np.array_equal(np.asarray(shown) == 255, mask)
    image = Image.new("RGB", (4, 4), (0, 0, 0))
    tinted = overlay(image, mask, colour=(200, 100, 0), alpha=0.5)
    assert tinted.getpixel((0, 0)) == (100, 50, 0) and tinted.getpixel((0, 3)) == (0, 0, 0)
    with pytest.raises(MaskError, match="4x4.*5x5"):
        overlay(Image.new("RGB", (5, 5)), mask)
