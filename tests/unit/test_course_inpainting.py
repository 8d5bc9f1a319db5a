"""The notebook-01 helpers on a tiny random pipeline: they reproduce what the pipeline computes
(the U-Net's input, its sampling steps, its paste-back) rather than a parallel version of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

from tryon_lab.course.inpainting.latents import channel_images, latent_stats, vae_roundtrip
from tryon_lab.course.inpainting.models import course_pipeline, model_note
from tryon_lab.course.inpainting.noise import (
    add_noise,
    noise_schedule,
    noising_previews,
    plot_noise_schedule,
    sampling_timesteps,
)
from tryon_lab.course.inpainting.paste_back import outside_mask_difference, paste_back_parts
from tryon_lab.course.inpainting.previews import denoising_previews, predicted_x0
from tryon_lab.course.inpainting.samplers import compare_schedulers, sampler_figure, sampler_table
from tryon_lab.course.inpainting.unet_input import unet_input_channels
from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.pipelines.samplers import make_scheduler
from tryon_lab.plotting import NotebookFigure


@pytest.fixture()
def photo():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, size=(90, 70, 3), dtype=np.uint8))
    mask = np.zeros((90, 70), dtype=bool)
    mask[20:60, 15:50] = True
    return image, mask


def test_course_pipeline_random_and_shipped(tmp_path, monkeypatch):
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    pipe = course_pipeline("random:tiny", tmp_path)
    assert (tmp_path / "random-tiny" / "model_index.json").is_file()
    assert diffusers_logging.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    assert pipe.resolution == 64
    assert "random weights" in model_note("random:tiny", pipe)
    assert "mini model" in model_note("shipped", pipe)
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "no-data"))
    with pytest.raises(ConfigError, match="mini-sd-inpaint"):
        course_pipeline("shipped", tmp_path)


def test_vae_roundtrip_shapes_and_psnr(tiny_pipeline, photo):
    trip = vae_roundtrip(tiny_pipeline, photo[0])
    assert trip.image.size == trip.reconstruction.size == (64, 64)
    assert tuple(trip.latents.shape) == (4, 8, 8)
    assert np.isfinite(trip.psnr) and trip.psnr > 0
    again = tiny_pipeline.encode_images(torch.from_numpy(np.asarray(trip.image, np.float32) / 127.5 - 1).permute(2, 0, 1)[None])
    assert torch.allclose(again[0], trip.latents)
    assert vae_roundtrip(tiny_pipeline, photo[0], mode="pad").image.size == (64, 64)


def test_channel_images_are_unit_range_per_channel():
    tensor = torch.stack([torch.arange(16.0).reshape(4, 4), torch.full((4, 4), 3.0), -torch.arange(16.0).reshape(4, 4)])
    images = channel_images(tensor[None])
    assert len(images) == 3 and images[0].shape == (4, 4)
    assert images[0].min() == 0 and images[0].max() == 1
    assert np.all(images[1] == 0.5)
    assert images[2][0, 0] == 1
    with pytest.raises(TryOnInputError):
        channel_images(torch.zeros(2, 4, 4, 4))
    stats = latent_stats(tensor)
    assert [s[0] for s in stats] == [0, 1, 2] and stats[1][1:] == (3.0, 0.0)


def test_noise_schedule_matches_the_scheduler(tiny_pipeline):
    schedule = noise_schedule(tiny_pipeline.scheduler)
    acp = tiny_pipeline.scheduler.alphas_cumprod.numpy()
    assert len(schedule.timesteps) == 1000
    np.testing.assert_allclose(schedule.alphas_cumprod, acp, rtol=1e-6)
    np.testing.assert_allclose(schedule.signal**2 + schedule.noise**2, 1.0, rtol=1e-9)
    assert np.all(np.diff(schedule.snr) < 0), "SNR falls as t grows"
    assert schedule.at(10.5) == pytest.approx((acp[10] + acp[11]) / 2, rel=1e-5)
    for cls in (DPMSolverMultistepScheduler, EulerDiscreteScheduler):
        other = noise_schedule(cls.from_config(tiny_pipeline.scheduler.config))
        np.testing.assert_allclose(other.alphas_cumprod, acp, rtol=1e-6)
    with pytest.raises(ConfigError):
        noise_schedule(object())


def test_sampling_timesteps_leave_the_scheduler_alone(tiny_pipeline):
    tiny_pipeline.scheduler.set_timesteps(7)
    before = tiny_pipeline.scheduler.timesteps.clone()
    steps = sampling_timesteps(tiny_pipeline.scheduler, 4)
    assert len(steps) == 4 and steps[0] > steps[-1]
    assert torch.equal(tiny_pipeline.scheduler.timesteps, before)
    fig = plot_noise_schedule(noise_schedule(tiny_pipeline.scheduler), {"DDIM, 4 steps": steps})
    assert isinstance(fig, NotebookFigure) and fig._repr_png_().startswith(b"\x89PNG")


def test_add_noise_equals_the_training_scheduler(tiny_pipeline):
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config(tiny_pipeline.scheduler.config)
    x0, noise = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    schedule = noise_schedule(tiny_pipeline.scheduler)
    for t in (0, 250, 999):
        expected = ddpm.add_noise(x0, noise, torch.tensor([t]))
        assert torch.allclose(add_noise(x0, noise, t, schedule), expected, atol=1e-5)


def test_noising_previews_start_at_the_picture_and_are_repeatable(tiny_pipeline, photo):
    trip = vae_roundtrip(tiny_pipeline, photo[0])
    images = noising_previews(tiny_pipeline, trip.latents[None], [0, 500, 999], seed=1)
    again = noising_previews(tiny_pipeline, trip.latents[None], [0, 500, 999], seed=1)
    assert len(images) == 3 and images[0].size == (64, 64)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    start = np.abs(np.asarray(images[0], int) - np.asarray(trip.reconstruction, int)).mean()
    end = np.abs(np.asarray(images[2], int) - np.asarray(trip.reconstruction, int)).mean()
    assert start < end


def test_unet_input_is_what_the_pipeline_feeds_the_unet(tiny_pipeline, photo):
    image, mask = photo
    seen = []
    handle = tiny_pipeline.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        tiny_pipeline(image, mask, "a tee", num_inference_steps=1, guidance_scale=1.0, seed=0)
    finally:
        handle.remove()
    fed = seen[0]
    built = unet_input_channels(tiny_pipeline, image, mask, t=500)
    assert tuple(built.sample.shape) == (1, 9, 8, 8) == tuple(fed.shape)
    assert torch.allclose(built.sample[:, 4:], fed[:, 4:], atol=1e-6), "conditioning channels differ"
    assert set(built.mask.unique().tolist()) <= {0.0, 1.0} and 0 < built.mask.mean() < 1
    assert built.masked_image.size == (64, 64)
    assert len(built.titles()) == 9 and built.titles()[4] == "4: mask" and built.titles()[-1] == "8: masked-image latent ch 3"
    assert torch.equal(built.sample[:, 4:5], built.mask)


def test_unet_input_noisy_latent_is_the_target_noised(tiny_pipeline, photo):
    from tryon_lab.data.io import fit_image
    from tryon_lab.pipelines.latents import pil_to_tensor

    image, mask = photo
    target = Image.fromarray(np.full((90, 70, 3), 200, np.uint8))
    expected = tiny_pipeline.encode_images(pil_to_tensor(fit_image(target, 64, mode="pad"))[None])
    schedule = noise_schedule(tiny_pipeline.scheduler)
    for t in (0, 999):
        built = unet_input_channels(tiny_pipeline, image, mask, t=t, target=target, seed=7)
        noise = torch.randn(expected.shape, generator=torch.Generator().manual_seed(7))
        assert torch.allclose(built.noisy_latents, add_noise(expected, noise, t, schedule), atol=1e-5)
        assert built.timestep == t


def test_predicted_x0_inverts_the_forward_process():
    x0, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    acp = 0.3
    x_t = acp**0.5 * x0 + (1 - acp) ** 0.5 * eps
    assert torch.allclose(predicted_x0(x_t, eps, acp), x0, atol=1e-5)
    v = acp**0.5 * eps - (1 - acp) ** 0.5 * x0
    assert torch.allclose(predicted_x0(x_t, v, acp, "v_prediction"), x0, atol=1e-5)
    assert predicted_x0(x_t, x0, acp, "sample") is x0
    with pytest.raises(ConfigError):
        predicted_x0(x_t, eps, acp, "flow")


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_denoising_previews_record_every_few_steps(tiny_pipeline, photo, guidance_scale):
    image, mask = photo
    previews = denoising_previews(tiny_pipeline, image, mask, "a tee", steps=5, every=2, seed=3,
                                          guidance_scale=guidance_scale)
    assert previews.steps == [0, 2, 4]
    assert len(previews.latents) == len(previews.predicted) == 3
    assert previews.timesteps[0] > previews.timesteps[-1]
    plain = tiny_pipeline(image, mask, "a tee", num_inference_steps=5, seed=3, guidance_scale=guidance_scale)
    assert np.array_equal(np.asarray(previews.output.images[0]), np.asarray(plain.images[0])), "previews change nothing"
    assert not tiny_pipeline.unet._forward_hooks, "the hook is removed"
    assert isinstance(previews.figure(), NotebookFigure)
    with pytest.raises(TryOnInputError):
        denoising_previews(tiny_pipeline, image, mask, steps=2, every=0)


def test_last_prediction_is_the_ddim_result(tiny_pipeline, photo):
    # DDIM's last step (to t = 0 with set_alpha_to_one) returns its x0 estimate: the decoded
    # final x0 preview is the raw output.
    image, mask = photo
    previews = denoising_previews(tiny_pipeline, image, mask, "a tee", steps=3, every=1, seed=0,
                                          guidance_scale=2.0)
    last = np.asarray(previews.predicted[-1], dtype=int)
    raw = np.asarray(previews.output.raw[0], dtype=int)
    assert np.abs(last - raw).max() <= 1


def test_make_scheduler_builds_the_compared_samplers(tiny_pipeline):
    config = tiny_pipeline.scheduler.config
    assert isinstance(make_scheduler("ddim", config), DDIMScheduler)
    dpm = make_scheduler("dpm", config)
    assert isinstance(dpm, DPMSolverMultistepScheduler) and dpm.config.algorithm_type == "dpmsolver++"
    assert isinstance(make_scheduler("euler", config), EulerDiscreteScheduler)
    with pytest.raises(TryOnInputError, match="ddim"):
        make_scheduler("PNDM", config)


def test_switching_samplers_keeps_every_setting_without_diffusers_warning(tiny_pipeline):
    import logging

    original = {key: value for key, value in tiny_pipeline.scheduler.config.items() if not key.startswith("_")}
    assert original["clip_sample"] is False  # DDIM's default is True: it must not come back after a detour
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("diffusers.configuration_utils")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        dpm = make_scheduler("dpm", tiny_pipeline.scheduler.config)
        lcm = make_scheduler("lcm", dpm.config)  # what use_sampler does after a dpm try-on
        ddim = make_scheduler("ddim", lcm.config)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert not [r for r in records if "not expected" in r.getMessage()]
    assert {key: ddim.config[key] for key in original} == original
    assert make_scheduler("dpm", ddim.config).config.solver_order == 2


def test_compare_schedulers_same_seed_and_restores_the_scheduler(tiny_pipeline, photo):
    image, mask = photo
    before = tiny_pipeline.scheduler
    runs = compare_schedulers(tiny_pipeline, image, mask, "a tee", steps=2, seed=4, reference_steps=3,
                                      guidance_scale=1.0)
    assert tiny_pipeline.scheduler is before
    assert [r.name for r in runs] == ["DDIM (reference)", "DDIM", "DPM-Solver++", "Euler"]
    assert all(r.seconds > 0 and r.image.size == image.size and r.raw.size == (64, 64) for r in runs)
    assert runs[0].psnr_to_reference == float("inf")
    assert all(np.isfinite(r.psnr_to_reference) for r in runs[1:])
    ddim = tiny_pipeline(image, mask, "a tee", num_inference_steps=2, seed=4, guidance_scale=1.0)
    assert np.array_equal(np.asarray(runs[1].raw), np.asarray(ddim.raw[0])), "same seed, same result"
    assert isinstance(sampler_figure(runs), NotebookFigure)
    table = sampler_table(runs)
    assert "identical" in table and "DPM-Solver++" in table
    plain = compare_schedulers(tiny_pipeline, image, mask, samplers=["euler"], steps=1, guidance_scale=1.0)
    assert len(plain) == 1 and plain[0].psnr_to_reference is None
    assert len(sampler_figure(plain).axes) == 1, "no difference row without a reference"


def test_paste_back_parts_show_an_exact_outside(tiny_pipeline, photo):
    image, mask = photo
    out = tiny_pipeline(image, mask, "a tee", num_inference_steps=2, seed=0, feather_px=3.0)
    parts = paste_back_parts(image, out, mask, feather_px=3.0)
    assert parts.max_outside == 0
    assert parts.alpha.shape == mask.shape and parts.alpha[~mask].max() == 0 and parts.alpha.max() == 1
    assert parts.difference.shape == mask.shape and parts.difference[mask].max() > 0
    assert parts.raw.size == (64, 64) and parts.result.size == image.size
    assert isinstance(parts.figure(), NotebookFigure)
    shifted = np.asarray(image).copy()
    shifted[0, 0] = shifted[0, 0] // 2 + 1
    assert outside_mask_difference(shifted, image, mask) > 0
    with pytest.raises(TryOnInputError, match="output_type"):
        paste_back_parts(image, tiny_pipeline(image, mask, num_inference_steps=1, output_type="np"), mask, 3.0)


def test_quality_by_steps_runs_every_sampler_and_lcm_only_with_its_lora(tiny_pipeline_dir, tiny_lcm_pipeline_dir):
    from tryon_lab.course.inpainting.samplers import quality_by_steps, steps_figure
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import enabled_adapters

    samples = [World(seed=0, resolution=64).sample(i, split="test") for i in range(2)]
    plain = quality_by_steps(load_inpaint_pipeline(tiny_pipeline_dir), samples, (1, 2))
    assert [c.name for c in plain] == ["DDIM", "DPM-Solver++"]
    pipe = load_inpaint_pipeline(tiny_lcm_pipeline_dir)
    curves = quality_by_steps(pipe, samples, (1, 2))
    assert [c.name for c in curves][-1] == "LCM" and all(c.steps == [1, 2] and len(c.psnr) == 2 for c in curves)
    assert all(np.isfinite(c.psnr).all() and min(c.seconds) > 0 for c in curves)
    assert enabled_adapters(pipe.unet) == [] and type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert len(steps_figure(curves).axes) == 2
