"""Automatic mask suggestion and the paste-back geometry."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tryon_lab.data.io import content_box, fit_image
from tryon_lab.data.suggest import suggest_mask
from tryon_lab.data.world import World
from tryon_lab.errors import TryOnInputError
from tryon_lab.pipelines.compositing import paste_back, seam_alpha


def test_suggested_garment_masks_overlap_the_true_garment():
    world = World()
    ious = []
    for i in range(12):
        sample = world.sample(i, split="test", kind="garment")
        mask = suggest_mask(sample.scene, sample.item.category)
        ious.append((mask & sample.item_mask).sum() / (mask | sample.item_mask).sum())
    assert np.mean(ious) > 0.6


def test_suggestion_follows_a_non_square_photo_and_rejects_unknown_categories():
    photo = Image.new("RGB", (200, 100), "white")
    assert suggest_mask(photo, "tee").shape == (100, 200)
    with pytest.raises(TryOnInputError, match="unknown category 'cape'"):
        suggest_mask(photo, "cape")


@pytest.mark.parametrize("size", [(100, 50), (50, 100), (64, 64), (33, 17)])
def test_content_box_matches_where_fit_image_puts_the_photo(size):
    photo = Image.new("RGB", size, (255, 0, 0))
    square = np.asarray(fit_image(photo, 64, mode="pad", fill=(0, 0, 255)))
    left, top, right, bottom = content_box(size, 64)
    assert (square[top:bottom, left:right, 0] > 200).all()
    outside = np.ones((64, 64), bool)
    outside[top:bottom, left:right] = False
    assert (square[outside][:, 2] > 200).all()


def test_seam_is_zero_outside_the_mask_and_one_deep_inside():
    mask = np.zeros((40, 40), bool)
    mask[5:35, 5:35] = True
    alpha = seam_alpha(mask, 3)
    assert (alpha[~mask] == 0).all()
    assert alpha[20, 20] == 1.0
    assert 0 < alpha[6, 20] < 1


def test_paste_back_keeps_every_pixel_outside_the_mask():
    rng = np.random.default_rng(1)
    original = Image.fromarray(rng.integers(0, 255, (50, 80, 3), dtype=np.uint8))
    generated = Image.new("RGB", (64, 64), (0, 255, 0))
    mask = np.zeros((50, 80), bool)
    mask[10:40, 20:60] = True
    out = np.asarray(paste_back(original, generated, mask, 2.0))
    assert np.array_equal(out[~mask], np.asarray(original)[~mask])
    assert (out[25, 40] == (0, 255, 0)).all()


def test_by_default_the_result_inside_the_mask_is_the_models_own_square(tiny_pipeline):
    # a feathered seam inside the mask would blend the old garment back in along the mask's edge
    sample = World(resolution=64).sample(0, split="test", kind="garment")
    out = tiny_pipeline(sample.scene, sample.shape_mask, sample.caption, num_inference_steps=2, seed=0)
    result, raw, scene = (np.asarray(im.convert("RGB")) for im in (out.images[0], out.raw[0], sample.scene))
    assert np.array_equal(result[sample.shape_mask], raw[sample.shape_mask])
    assert np.array_equal(result[~sample.shape_mask], scene[~sample.shape_mask])
    soft = tiny_pipeline(sample.scene, sample.shape_mask, sample.caption, num_inference_steps=2, seed=0, feather_px=2.0)
    assert not np.array_equal(np.asarray(soft.images[0])[sample.shape_mask], raw[sample.shape_mask])
