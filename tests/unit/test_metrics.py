"""Pixel metrics, the Telea baseline, the VAE round trip and the world-encoder judge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.data.world import World
from tryon_lab.metrics.baselines import telea_inpaint, vae_round_trip
from tryon_lab.metrics.image import box_ssim, masked_psnr, psnr
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.models.world_encoder import WorldEncoder


def test_psnr_known_values():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == float("inf")
    b[:] = 255
    assert psnr(a, b) == pytest.approx(0.0)


def test_masked_psnr_ignores_pixels_outside_the_mask():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    b[:, 4:] = 200  # differs only outside the mask
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True
    assert masked_psnr(a, b, mask) == float("inf")
    assert psnr(a, b) < 10


def test_box_ssim_is_one_for_identical_and_lower_for_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[4:28, 4:28] = True
    assert box_ssim(a, a, mask) == pytest.approx(1.0, abs=1e-5)
    assert box_ssim(a, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), mask) < 0.2


def test_telea_fills_only_the_mask_from_its_surroundings():
    image = np.full((32, 32, 3), 120, np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[10:20, 10:20] = True
    hole = image.copy()
    hole[mask] = 0
    out = np.asarray(telea_inpaint(Image.fromarray(hole), mask))
    assert np.array_equal(out[~mask], hole[~mask])
    assert abs(out[mask].astype(int) - 120).max() <= 2


def test_the_vae_round_trip_decodes_each_images_posterior_mode_in_batches(tiny_base):
    from tryon_lab.pipelines.latents import pil_to_tensor

    images = [World(seed, tiny_base.resolution).sample(0).target for seed in range(3)]
    out = vae_round_trip(tiny_base.vae, images, batch_size=2)
    assert [im.size for im in out] == [im.size for im in images]
    with torch.no_grad():
        x = pil_to_tensor(images[2])[None]
        expected = tiny_base.vae.decode(tiny_base.vae.encode(x).latent_dist.mode()).sample[0]
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(out[2]).astype(int) - expected.astype(int)).max() <= 1  # the last, odd-sized batch
    assert not np.array_equal(np.asarray(out[0]), np.asarray(images[0]))  # a random VAE changes the picture


@pytest.fixture(scope="module")
def judge():
    torch.manual_seed(0)
    return WorldJudge(WorldEncoder.for_world())


def test_judge_scores_have_the_documented_ranges(judge):
    world = World(resolution=64)
    samples = [world.sample(i, split="test") for i in range(6)]
    targets, masks = [s.target for s in samples], [s.item_mask for s in samples]
    accuracy = judge.attribute_accuracy(targets, masks, [s.item for s in samples])
    assert set(accuracy) == {"category", "colour", "pattern", "all"}
    assert all(0.0 <= v <= 1.0 for v in accuracy.values())
    assert -1.0 <= judge.reference_similarity(targets, masks, [s.reference for s in samples]) <= 1.0


def test_fid_on_world_encoder_features_is_zero_for_the_same_set_and_larger_for_noise(judge):
    world = World(resolution=64)
    samples = [world.sample(i) for i in range(12)]
    images, masks = [s.target for s in samples], [s.item_mask for s in samples]
    same = judge.fid(images, masks, images, masks)
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in images]
    assert same == pytest.approx(0.0, abs=1e-2)
    assert judge.fid(images, masks, noise, masks) > same + 1e-3


def test_judge_features_are_one_row_per_crop_from_the_pooled_backbone(judge):
    world = World(resolution=64)
    samples = [world.sample(i) for i in range(8)]
    images, masks = [s.target for s in samples], [s.item_mask for s in samples]
    features = judge.features(images, masks)
    assert features.shape == (8, judge.encoder.config.channels[-1])
    with torch.no_grad():
        direct = judge.encoder.features(judge.crops(images, masks)).numpy()
    assert np.abs(features - direct).max() < 0.05  # only the 8-bit rounding FID's input goes through


def test_score_outputs_with_intervals_brackets_every_mean(judge):
    from tryon_lab.metrics.inpainting import score_outputs

    world = World(resolution=64)
    samples = [world.sample(i) for i in range(6)]
    rng = np.random.default_rng(0)
    outputs = [Image.fromarray(np.clip(np.asarray(s.target, np.int16) + rng.integers(-40, 40, (64, 64, 3)), 0, 255)
                               .astype(np.uint8)) for s in samples]
    plain = score_outputs(samples, outputs, judge)
    scores = score_outputs(samples, outputs, judge, intervals=True)
    assert {k: scores[k] for k in plain} == plain
    for name, value in plain.items():
        assert scores[f"{name}_lo"] <= value <= scores[f"{name}_hi"], name
