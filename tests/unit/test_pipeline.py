"""TryOnInpaintPipeline on a tiny random checkpoint: exact paste-back, seeds, callbacks,
schedulers, output types and bad input (equivalence with diffusers: test_diffusers_equivalence)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

from tryon_lab.errors import MaskError, TryOnInputError
from tryon_lab.pipelines import restore
from tryon_lab.pipelines.latents import tensor_to_pil


@pytest.fixture()
def photo():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, size=(90, 70, 3), dtype=np.uint8))
    mask = np.zeros((90, 70), dtype=bool)
    mask[20:60, 15:50] = True
    return image, mask


def test_pixels_outside_the_mask_come_back_exactly(tiny_pipeline, photo):
    image, mask = photo
    out = tiny_pipeline(image, mask, "a red tee", num_inference_steps=3, seed=1).images[0]
    assert out.size == image.size
    before, after = np.asarray(image), np.asarray(out)
    assert np.array_equal(before[~mask], after[~mask])
    assert (before[mask] != after[mask]).mean() > 0.5


def test_same_seed_same_result_other_seed_differs(tiny_pipeline, photo):
    image, mask = photo
    run = lambda seed: np.asarray(tiny_pipeline(image, mask, "a tee", num_inference_steps=3, seed=seed).images[0])
    assert np.array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_callback_sees_every_step_and_can_replace_latents(tiny_pipeline, photo):
    image, mask = photo
    seen = []

    def callback(pipe, step, timestep, state):
        seen.append((step, tuple(state["latents"].shape)))
        return {"latents": torch.zeros_like(state["latents"])}

    out = tiny_pipeline(image, mask, "a tee", num_inference_steps=4, seed=0, callback_on_step_end=callback)
    assert [s for s, _ in seen] == [0, 1, 2, 3]
    assert seen[0][1] == (1, 4, 8, 8)
    zero = tiny_pipeline.decode_latents(torch.zeros(1, 4, 8, 8))[0]
    assert np.array_equal(np.asarray(out.raw[0]), np.asarray(tensor_to_pil(zero)))


@pytest.mark.parametrize("scheduler_cls", [DPMSolverMultistepScheduler, EulerDiscreteScheduler])
def test_any_diffusers_scheduler_runs(tiny_pipeline, photo, scheduler_cls):
    image, mask = photo
    tiny_pipeline.scheduler = scheduler_cls.from_config(tiny_pipeline.scheduler.config)
    result = tiny_pipeline(image, mask, "a tee", num_inference_steps=3, seed=0)
    out, photo_pixels = np.asarray(result.images[0], dtype=int), np.asarray(image, dtype=int)
    assert np.array_equal(out[~mask], photo_pixels[~mask])  # pasted back outside the mask
    assert np.abs(out[mask] - photo_pixels[mask]).mean() > 10  # painted inside it
    assert np.asarray(result.raw[0]).std() > 0  # the sampler produced a picture, not a flat fill


def test_prompt_embeds_equal_prompt(tiny_pipeline, photo):
    image, mask = photo
    embeds = tiny_pipeline.encode_prompt(["a blue mug"])
    a = tiny_pipeline(image, mask, "a blue mug", num_inference_steps=2, seed=5).images[0]
    b = tiny_pipeline(image, mask, prompt_embeds=embeds, num_inference_steps=2, seed=5).images[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_batch_and_output_types(tiny_pipeline, photo):
    image, mask = photo
    out = tiny_pipeline([image, image], [mask, mask], ["a tee", "a mug"], num_inference_steps=2, seed=0, output_type="np")
    assert out.images.shape == (2, 90, 70, 3) and out.images.dtype == np.float32
    assert 0.0 <= out.images.min() and out.images.max() <= 1.0
    pt = tiny_pipeline(image, mask, "a tee", num_inference_steps=2, seed=0, output_type="pt").images
    assert tuple(pt.shape) == (1, 3, 90, 70)


def test_bad_inputs_raise_typed_errors(tiny_pipeline, photo):
    image, mask = photo
    with pytest.raises(MaskError, match="size"):
        tiny_pipeline(image, mask[:50], "a tee", num_inference_steps=1)
    with pytest.raises(MaskError, match="empty"):
        tiny_pipeline(image, np.zeros_like(mask), "a tee", num_inference_steps=1)
    with pytest.raises(TryOnInputError, match="prompt has 3 entries"):
        tiny_pipeline([image, image], [mask, mask], ["a", "b", "c"], num_inference_steps=1)
    with pytest.raises(TryOnInputError, match="output_type"):
        tiny_pipeline(image, mask, "a tee", num_inference_steps=1, output_type="jpeg")


def test_restore_paints_original_pixels_back(tiny_pipeline, photo):
    image, mask = photo
    result = tiny_pipeline(image, mask, "a tee", num_inference_steps=2, seed=0).images[0]
    eraser = np.zeros_like(mask)
    eraser[30:40, 20:45] = True
    restored = np.asarray(restore(result, image, eraser))
    assert np.array_equal(restored[eraser], np.asarray(image)[eraser])
    assert np.array_equal(restored[~eraser], np.asarray(result)[~eraser])


def test_device_is_the_unets_and_follows_it(tiny_pipeline):
    """The pipeline's cheap ``device`` (the U-Net's weights') agrees with diffusers' walk over every
    component, including after the U-Net alone is moved."""
    from diffusers import DiffusionPipeline

    assert tiny_pipeline.device == DiffusionPipeline.device.fget(tiny_pipeline) == torch.device("cpu")
    tiny_pipeline.unet.to("meta")  # a fresh pipeline per test: nothing else sees it
    assert tiny_pipeline.device == torch.device("meta")
