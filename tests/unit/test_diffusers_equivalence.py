"""A real SD-inpainting folder computes in tryon_lab what it computes in diffusers.

The checkpoint is a tiny random one written by diffusers' own
``StableDiffusionInpaintPipeline.save_pretrained``, so it has the layout of SD-1.5-inpainting
(``model_index.json`` without tryon-lab's ``inpaint_rule``). Both pipelines get the same seed,
prompt, sampler, steps and guidance, and a mask aligned to the latent grid; the images must agree
to within one level of 8 bits. The last test is the negative control: fed the old channel order,
the same checkpoint paints something else.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler, StableDiffusionInpaintPipeline
from PIL import Image

from tryon_lab.pipelines.loading import load_inpaint_pipeline

SIDE = 64  # the tiny config: 64 px, latents 8x8


@pytest.fixture(scope="module")
def sd_folder(tiny_base, tmp_path_factory):
    """A tiny random SD-inpainting checkpoint written by diffusers."""
    pipe = StableDiffusionInpaintPipeline(
        vae=tiny_base.vae, text_encoder=tiny_base.text_encoder, tokenizer=tiny_base.tokenizer, unet=tiny_base.unet,
        scheduler=DDIMScheduler.from_config(tiny_base.scheduler.config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    folder = tmp_path_factory.mktemp("sd-inpaint")
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 256, size=(SIDE, SIDE, 3), dtype=np.uint8))
    mask = np.zeros((SIDE, SIDE), dtype=bool)
    mask[16:48, 8:40] = True  # whole 8x8 cells: nearest-neighbour and max-pool agree
    return photo, mask


def _both(folder, scheduler_class=DDIMScheduler):
    ours = load_inpaint_pipeline(folder, device="cpu")
    theirs = StableDiffusionInpaintPipeline.from_pretrained(folder, safety_checker=None, local_files_only=True)
    for pipe in (ours, theirs):
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
    return ours, theirs


def _images(ours, theirs, photo, mask, *, prompt: str, seed: int, steps: int, guidance: float):
    mine = ours(photo, mask, prompt, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator().manual_seed(seed)).raw[0]
    reference = theirs(prompt, image=photo, mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                       num_inference_steps=steps, guidance_scale=guidance,
                       generator=torch.Generator().manual_seed(seed)).images[0]
    return np.asarray(mine).astype(np.int16), np.asarray(reference).astype(np.int16)


def test_an_sd_folder_follows_diffusers_rule(sd_folder):
    assert load_inpaint_pipeline(sd_folder, device="cpu").inpaint_rule == "diffusers"


def test_same_image_as_diffusers_ddim(sd_folder, scene):
    ours, theirs = _both(sd_folder)
    mine, reference = _images(ours, theirs, *scene, prompt="a red striped tee", seed=3, steps=6, guidance=4.0)
    assert np.abs(mine - reference).max() <= 1
    assert mine.std() > 10, "a flat image would agree with anything"


def test_same_image_as_diffusers_held_out_check(sd_folder, scene):
    """Held out while the pipeline was changed: a stochastic sampler, other seed, prompt and guidance."""
    ours, theirs = _both(sd_folder, EulerAncestralDiscreteScheduler)
    mine, reference = _images(ours, theirs, *scene, prompt="a blue dotted dress", seed=11, steps=5, guidance=7.5)
    assert np.abs(mine - reference).max() <= 1


def test_the_old_channel_order_paints_something_else(sd_folder, scene):
    ours, theirs = _both(sd_folder)
    with torch.no_grad():  # feeding [noisy, masked latent, mask] is the same as permuting conv_in's inputs back
        weight = ours.unet.conv_in.weight
        weight.copy_(weight[:, [0, 1, 2, 3, 8, 4, 5, 6, 7]])
    mine, reference = _images(ours, theirs, *scene, prompt="a red striped tee", seed=3, steps=6, guidance=4.0)
    assert np.abs(mine - reference).max() > 1
