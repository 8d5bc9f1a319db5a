"""Chapter 01 exercises: right answers pass (including the package's own code), typical mistakes fail
with a message that says what is wrong, and no message quotes the expected values."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tryon_lab.course.exercises import ExerciseError
from tryon_lab.course.exercises.ch01 import (
    blend_cases,
    exercise_blend,
    exercise_guided_noise,
    exercise_unet_input,
    guidance_cases,
    unet_input_cases,
)
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.pipelines.compositing import blend as package_blend
from tryon_lab.pipelines.latents import latent_mask

# --- exercise 1 -----------------------------------------------------------------------------------


def unet_input(noisy, masked, pixel_mask):
    small = F.adaptive_max_pool2d(pixel_mask, noisy.shape[-2:])
    return torch.cat([noisy, small, masked], dim=1)


def unet_input_package(noisy, masked, pixel_mask):
    # the pipeline's latent_mask (square latents) where it applies, max-pool by cell size otherwise
    if noisy.shape[-1] == noisy.shape[-2]:
        small = latent_mask(pixel_mask, noisy.shape[-1])
    else:
        small = F.max_pool2d(pixel_mask, pixel_mask.shape[-1] // noisy.shape[-1])
    return torch.cat([noisy, inpaint_channels(small, masked)], dim=1)


def order_swapped(noisy, masked, pixel_mask):
    return unet_input(masked, noisy, pixel_mask)


def mask_last(noisy, masked, pixel_mask):
    return torch.cat([noisy, masked, F.adaptive_max_pool2d(pixel_mask, noisy.shape[-2:])], dim=1)


def average_pooled(noisy, masked, pixel_mask):
    return torch.cat([noisy, F.adaptive_avg_pool2d(pixel_mask, noisy.shape[-2:]), masked], dim=1)


def nearest_resized(noisy, masked, pixel_mask):
    return torch.cat([noisy, F.interpolate(pixel_mask, size=noisy.shape[-2:], mode="nearest"), masked], dim=1)


def inverted_mask(noisy, masked, pixel_mask):
    return unet_input(noisy, masked, 1.0 - pixel_mask)


def square_only(noisy, masked, pixel_mask):
    size = noisy.shape[-1]
    return torch.cat([noisy, F.adaptive_max_pool2d(pixel_mask, size), masked], dim=1)


def concat_on_batch(noisy, masked, pixel_mask):
    return torch.cat([noisy, masked], dim=0)


def as_numpy(noisy, masked, pixel_mask):
    return unet_input(noisy, masked, pixel_mask).numpy()


def scaled_noise(noisy, masked, pixel_mask):
    return unet_input(noisy * 0.18215, masked, pixel_mask)


def mask_in_place(noisy, masked, pixel_mask):
    pixel_mask.clamp_(max=0.0)
    return unet_input(noisy, masked, pixel_mask)


def not_written(*args):
    raise NotImplementedError


def test_unet_input_right_answers_pass(capsys):
    assert exercise_unet_input(unet_input)
    assert "✓ unet_input passed" in capsys.readouterr().out
    assert exercise_unet_input(unet_input_package)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (order_swapped, "hold the masked-image latent"),
        (mask_last, "expects the mask right after the noisy latent, at channel 4"),
        (average_pooled, "other than 0 and 1"),
        (nearest_resized, "as kept although some of their pixels are masked"),
        (inverted_mask, "masked"),
        (square_only, "non-square"),
        (concat_on_batch, "of shape"),
        (as_numpy, "stay in torch"),
        (scaled_noise, "exactly as given"),
        (mask_in_place, "changed its input"),
        (not_written, "not written yet"),
        ("unet_input", "expected a function"),
    ],
)
def test_unet_input_mistakes_fail_with_a_reason(wrong, says):
    with pytest.raises(ExerciseError) as info:
        exercise_unet_input(wrong)
    assert says in str(info.value)
    _reveals_no_array(str(info.value))


def test_unet_input_cases_catch_the_classic_pitfalls():
    cases = unet_input_cases()
    masks = [c.args[2] for c in cases]
    assert any(m.shape[-1] != m.shape[-2] for m in masks), "a non-square image"
    assert any(m.shape[0] > 1 for m in masks), "a batch"
    assert any(not m.any() for m in masks) and any(m.all() for m in masks)
    thin = [m for m in masks if m.any() and m.sum() < 0.05 * m[0, 0].size]
    assert thin, "a thin brush stroke, which nearest resizing loses"


# --- exercise 2 -----------------------------------------------------------------------------------


def guided(noise_pred, scale):
    uncond, cond = noise_pred.chunk(2)
    return uncond + scale * (cond - uncond)


def guided_other_form(noise_pred, scale):
    uncond, cond = noise_pred.chunk(2)
    return scale * cond + (1 - scale) * uncond


def halves_swapped(noise_pred, scale):
    cond, uncond = noise_pred.chunk(2)
    return uncond + scale * (cond - uncond)


def from_cond(noise_pred, scale):
    uncond, cond = noise_pred.chunk(2)
    return cond + scale * (cond - uncond)


def no_chunk(noise_pred, scale):
    return noise_pred * scale


def interleaved(noise_pred, scale):
    uncond, cond = noise_pred[0::2], noise_pred[1::2]
    return uncond + scale * (cond - uncond)


def scale_off_by_one(noise_pred, scale):
    return guided(noise_pred, scale + 1.0)


def scale_squared(noise_pred, scale):
    return guided(noise_pred, scale**2)


def test_guidance_right_answers_pass():
    assert exercise_guided_noise(guided)
    assert exercise_guided_noise(guided_other_form)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (halves_swapped, "first half of the batch"),
        (from_cond, "at guidance_scale 1"),
        (no_chunk, "one prediction per image"),
        (scale_off_by_one, "at guidance_scale 1"),
        (scale_squared, "guided prediction is off by up to"),
        (interleaved, "a batch of three"),
        (not_written, "not written yet"),
    ],
)
def test_guidance_mistakes_fail_with_a_reason(wrong, says):
    with pytest.raises(ExerciseError) as info:
        exercise_guided_noise(wrong)
    assert says in str(info.value)
    _reveals_no_array(str(info.value))


def test_guidance_cases_include_scales_zero_and_one():
    scales = {c.args[1] for c in guidance_cases()}
    assert {0.0, 1.0} <= scales and max(scales) > 1.0


# --- exercise 3 -----------------------------------------------------------------------------------


def blend(original, generated, alpha):
    w = alpha[..., None]
    return np.rint(original * (1.0 - w) + generated * w).astype(np.uint8)


def blend_with_package(original, generated, alpha):
    result = package_blend(Image.fromarray(original), Image.fromarray(generated), alpha)
    return np.asarray(result)


def alpha_backwards(original, generated, alpha):
    return blend(generated, original, alpha)


def truncates(original, generated, alpha):
    w = alpha[..., None]
    return (original * (1.0 - w) + generated * w).astype(np.uint8)


def uint8_average(original, generated, alpha):
    half = (original + generated) // 2  # wraps around in uint8
    return np.where(alpha[..., None] == 0, original, np.where(alpha[..., None] == 1, generated, half))


def returns_float(original, generated, alpha):
    w = alpha[..., None]
    return original * (1.0 - w) + generated * w


def hard_mask(original, generated, alpha):
    return np.where(alpha[..., None] > 0.5, generated, original)


def test_blend_right_answers_pass():
    assert exercise_blend(blend)
    assert exercise_blend(blend_with_package)


@pytest.mark.parametrize(
    "wrong, says",
    [
        (alpha_backwards, "where alpha is 0 differ from the original"),
        (truncates, "round to the nearest level"),
        (uint8_average, "wrap around"),
        (returns_float, "uint8"),
        (hard_mask, "in the seam"),
        (not_written, "not written yet"),
    ],
)
def test_blend_mistakes_fail_with_a_reason(wrong, says):
    with pytest.raises(ExerciseError) as info:
        exercise_blend(wrong)
    assert says in str(info.value)


def test_blend_cases_have_a_seam_and_bright_pixels():
    cases = blend_cases()
    assert any(((a > 0) & (a < 1)).any() for _, _, a in (c.args for c in cases))
    assert any(int(o.min()) + int(g.min()) > 255 for o, g, _ in (c.args for c in cases))


def _reveals_no_array(message: str) -> None:
    """A message may quote one error size, but never a run of numbers (an expected tensor)."""
    assert not re.search(r"(-?\d+\.\d+,\s*){3,}", message), message
    assert "tensor(" not in message and "array(" not in message, message


# --- exercise 3: the guided sampling loop ---------------------------------------------------------


def sample_loop(unet, scheduler, latents, mask, masked, embeddings, guidance_scale):
    channels = torch.cat([mask, masked], dim=1)
    channels = torch.cat([channels, channels])
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        noise = unet(torch.cat([model_in, channels], dim=1), t, encoder_hidden_states=embeddings).sample
        uncond, cond = noise.chunk(2)
        latents = scheduler.step(uncond + guidance_scale * (cond - uncond), t, latents).prev_sample
    return latents


def _making(mistake):
    from types import SimpleNamespace

    from tryon_lab.course.exercises.ch01_sampling import reference_sample_loop

    def loop(unet, scheduler, latents, mask, masked, embeddings, guidance_scale):
        inputs = SimpleNamespace(latents=latents, mask=mask, masked_image_latents=masked, text_embeddings=embeddings)
        return reference_sample_loop(unet, scheduler, inputs, guidance_scale, mistake=mistake)

    return loop


def sign_flipped(unet, scheduler, latents, mask, masked, embeddings, guidance_scale):
    channels = torch.cat([mask, masked], dim=1).repeat(2, 1, 1, 1)
    for t in scheduler.timesteps:
        model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        uncond, cond = unet(torch.cat([model_in, channels], dim=1), t, encoder_hidden_states=embeddings).sample.chunk(2)
        latents = scheduler.step(uncond - guidance_scale * (cond - uncond), t, latents).prev_sample
    return latents


def last_step_missing(unet, scheduler, latents, mask, masked, embeddings, guidance_scale):
    channels = torch.cat([mask, masked], dim=1).repeat(2, 1, 1, 1)
    for t in scheduler.timesteps[:-1]:
        model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        uncond, cond = unet(torch.cat([model_in, channels], dim=1), t, encoder_hidden_states=embeddings).sample.chunk(2)
        latents = scheduler.step(uncond + guidance_scale * (cond - uncond), t, latents).prev_sample
    return latents


@pytest.mark.slow
def test_sample_loop_right_answer_matches_the_pipeline(capsys):
    from tryon_lab.course.exercises.ch01_sampling import exercise_sample_loop

    assert exercise_sample_loop(sample_loop)
    assert "✓ sample_loop passed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("wrong, says", [
    (_making("no guidance"), "without classifier-free guidance"),
    (_making("mask and masked latent swapped"), r"\[noisy latent, mask, masked-image latent\]"),
    (_making("guidance reversed"), "away from the prompt"),
    (sign_flipped, "away from the prompt|differ from the pipeline's"),
    (_making("input not scaled"), "scale_model_input"),
    (last_step_missing, "differ from the pipeline's"),
    (lambda *args: args[2].numpy(), "expected a torch tensor"),
    (lambda *args: torch.cat([args[2], args[2]]), "shape"),
    (not_written, "not written yet"),
])
def test_sample_loop_mistakes_fail_with_a_reason(wrong, says):
    from tryon_lab.course.exercises.ch01_sampling import exercise_sample_loop

    with pytest.raises(ExerciseError, match=says) as info:
        exercise_sample_loop(wrong)
    assert not re.search(r"-?\d+\.\d{4,}", str(info.value)), "a message must not quote latent values"


def test_reference_loop_without_mistakes_is_the_pipelines():
    """The judge's own loop (used to recognise mistakes) computes what the pipeline computes."""
    from tryon_lab.course.exercises.ch01_sampling import (
        SAMPLING_CASES,
        _fresh,
        _sampling_case,
        _tiny_pipeline,
        reference_sample_loop,
    )

    pipe = _tiny_pipeline()
    case = SAMPLING_CASES[1]
    kept = pipe.scheduler
    try:
        inputs, expected = _sampling_case(pipe, kept, case)
        ours = reference_sample_loop(pipe.unet, _fresh(inputs.scheduler, case.steps), inputs, case.guidance_scale)
    finally:
        pipe.scheduler = kept
    assert torch.allclose(ours, expected, atol=1e-5)
