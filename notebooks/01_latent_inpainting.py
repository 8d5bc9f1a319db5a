# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Latent inpainting, from the inside
#
# A try-on model repaints the masked part of a photo. Stable Diffusion inpainting, and the small
# model this course ships, do it in four moves: **compress** the photo into a small latent grid
# with a VAE, **start from noise** in the masked region's latents, **denoise** step by step with a
# U-Net that also sees the photo and the mask, then **decode** and **paste** the result back so
# that every pixel outside the mask is exactly the user's own. This notebook opens each move up.
#
# **What you will learn in this notebook**
# - what the VAE's latent space looks like, how much it compresses a picture and what it loses,
#   on a world image and on a real photo;
# - the noise schedule: how much signal is left at each timestep t, and what a noisy latent
#   looks like when decoded;
# - the inpainting U-Net's **9 input channels**, in Stable Diffusion's order: noisy latent (4) +
#   mask (1) + masked-image latent (4);
# - sampling step by step, watched through `callback_on_step_end`: the latent at each step and
#   the clean picture the U-Net predicts from it; then you write the guided sampling loop yourself
#   and match the pipeline's result for the same seed;
# - three samplers (DDIM, DPM-Solver++, Euler) on the same seed and the same step budget;
# - paste-back: why pixels outside the mask come back unchanged, to the last bit.
#
# **How long it takes**
#
# | profile | for | model |
# |---|---|---|
# | `smoke` | CI: checks that the code runs | a tiny random model (pictures are noise) |
# | `quick` (default) | a 2-core laptop | the shipped mini model, 128x128 |
# | `full` | a GPU machine | the shipped mini model, longer sampling runs |
#
# How long each profile takes is measured, never typed: the first code cell reads this notebook's
# times from the recorded course run.
#
# Everything here calls the `tryon_lab` package: the helpers in `tryon_lab.course.inpainting` run
# the same `TryOnInpaintPipeline` that `tryon-lab tryon` runs from a terminal.

# %% [markdown]
# ## 1. The model in use
#
# The profile's `inpainting` section says which pipeline to load and how many sampling steps each
# figure may spend. `quick` and `full` load the model shipped in `data/models/mini-sd-inpaint`
# (trained on this course's world; `tryon-lab pretrain` reproduces it). If it is missing, the
# next cell stops with a message that says how to get it.

# %%
from IPython.display import Markdown, display

from tryon_lab import current_profile
from tryon_lab.course.inpainting.models import course_pipeline, model_note
from tryon_lab.course.runner import times_note
from tryon_lab.paths import build_dir

display(Markdown(times_note("01")))
profile = current_profile()
settings = profile["inpainting"]
print(f"profile {profile.name!r}: {settings}")
pipe = course_pipeline(settings["model"], build_dir())
seed = settings["seed"]
Markdown(model_note(settings["model"], pipe))

# %% [markdown]
# A diffusers pipeline is a bag of standard parts. `vae`, `text_encoder`, `tokenizer`, `unet` and
# `scheduler` are the same classes Stable Diffusion uses, only smaller:

# %%
for name in ("vae", "text_encoder", "unet"):
    module = getattr(pipe, name)
    print(f"{name:13s} {type(module).__name__:22s} {sum(p.numel() for p in module.parameters()) / 1e6:6.2f} M parameters")
print(f"{'scheduler':13s} {type(pipe.scheduler).__name__}")
print(f"resolution {pipe.resolution} px, VAE factor {pipe.vae_scale_factor}, latents "
      f"{pipe.unet.config.out_channels}x{pipe.unet.config.sample_size}x{pipe.unet.config.sample_size}")

# %% [markdown]
# ## 2. The VAE's latent space
#
# The VAE encoder turns an RGB image of side N into a 4-channel latent of side N/8: for 128x128
# that is 49,152 numbers down to 1,024, 48 times fewer. Diffusion runs on these latents, which is
# what makes it affordable on a phone. The decoder maps them back. The latents are multiplied by
# the VAE's `scaling_factor` so that they have roughly unit variance, the scale the noise schedule
# assumes.
#
# Below: a held-out world image and a real photo (matplotlib's sample portrait of Grace Hopper),
# each with its 4 latent channels (each stretched to black..white on its own) and the decoded
# reconstruction. The PSNR says how close the reconstruction is (higher is better; the course's
# bar for the shipped VAE is 27 dB on held-out world images). The world is what the VAE was
# trained on; the photo shows how it copes with a picture unlike anything it has seen.

# %%
from matplotlib import cbook

from tryon_lab.course.inpainting.latents import channel_images, latent_stats, vae_roundtrip
from tryon_lab.data.io import load_image
from tryon_lab.data.world import World
from tryon_lab.plotting import image_grid

world = World(seed=0, resolution=pipe.resolution)
sample = world.sample(0, split="test", kind="garment")
photo = load_image(cbook.get_sample_data("grace_hopper.jpg"))
trips = {"world image": vae_roundtrip(pipe, sample.target), "photo": vae_roundtrip(pipe, photo)}
image_grid(
    [im for trip in trips.values() for im in (trip.image, *channel_images(trip.latents), trip.reconstruction)],
    [title for name, trip in trips.items()
     for title in (name, "latent ch 0", "latent ch 1", "latent ch 2", "latent ch 3", f"decoded: {trip.psnr:.1f} dB")],
    ncols=6,
)

# %%
for name, trip in trips.items():
    print(f"{name}: latents {tuple(trip.latents.shape)}, PSNR {trip.psnr:.1f} dB; (channel, mean, std):",
          latent_stats(trip.latents))

# %% [markdown]
# The channels are not colour planes: each mixes brightness, colour and edges, and together they
# keep the layout of the picture at 1/8 of its size. What the decoder cannot restore are details
# smaller than a latent cell: thin stripes, text, the edges of small logos. Later chapters come
# back to this, because the item a shopper picked is exactly that kind of detail.

# %% [markdown]
# ## 3. The noise schedule
#
# Training teaches the U-Net to undo a fixed *forward process*. At training timestep
# t = 0 … 999 the clean latent x0 is mixed with Gaussian noise ε:
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$$
#
# `alphas_cumprod` (ᾱ_t) comes from the scheduler's config (`beta_start`, `beta_end`,
# `beta_schedule`), the same numbers as Stable Diffusion. The signal-to-noise ratio
# SNR = ᾱ / (1 − ᾱ) falls from about 10^3 to 10^-2: late timesteps are almost pure noise.
# A sampler visits only a few of these timesteps (dots: DDIM with the profile's step counts).

# %%
from tryon_lab.course.inpainting.noise import noise_schedule, plot_noise_schedule, sampling_timesteps

schedule = noise_schedule(pipe.scheduler)
print(f"{type(pipe.scheduler).__name__}: beta_schedule={pipe.scheduler.config.beta_schedule!r}, "
      f"alphas_cumprod from {schedule.alphas_cumprod[0]:.4f} (t=0) to {schedule.alphas_cumprod[-1]:.4f} (t=999)")
plot_noise_schedule(schedule, {
    f"DDIM, {n} steps": sampling_timesteps(pipe.scheduler, n)
    for n in sorted({settings["steps"], settings["sampler_steps"]})
})

# %% [markdown]
# What does x_t look like? Below, the world image's latent noised to several timesteps (one fixed
# noise draw) and decoded. By t = 500 the garment is hard to make out; by t = 999 nothing of the
# picture is left, which is why sampling can start from pure noise.

# %%
from tryon_lab.course.inpainting.noise import noising_previews

timesteps = settings["noise_timesteps"]
noisy = noising_previews(pipe, trips["world image"].latents[None], timesteps, seed=seed)
image_grid(noisy, [f"t = {t}  (SNR {schedule.snr[t]:.2g})" for t in timesteps], ncols=len(timesteps))

# %% [markdown]
# ## 4. The 9-channel U-Net input
#
# A text-to-image U-Net sees 4 channels: the noisy latent. An **inpainting** U-Net sees 9 at every
# step, concatenated along the channel axis:
#
# | channels | what | where it comes from |
# |---|---|---|
# | 0–3 | the noisy latent x_t | the sampler (in training: the target's latent, noised to t) |
# | 4 | the mask | the pixel mask brought to latent size, by a rule the model was trained with (below) |
# | 5–8 | the masked-image latent | the VAE latent of the photo with the mask's pixels blanked to gray |
#
# The order is Stable Diffusion's: every SD-inpainting checkpoint, and diffusers'
# `StableDiffusionInpaintPipeline`, expects exactly these channels in exactly this order (feed a
# real checkpoint another order and it paints nonsense).
#
# **How the mask reaches latent size is a choice, not a law of SD inpainting.** Two rules live side
# by side in `tryon_lab.pipelines.latents.latent_mask`:
#
# | rule | a latent cell is masked when | who uses it |
# |---|---|---|
# | `"diffusers"` | the pixel nearest its sampling point is masked (nearest-neighbour resize) | diffusers' `StableDiffusionInpaintPipeline`, and so every real SD-inpainting checkpoint |
# | `"tryon-lab"` | *any* of its pixels is masked (max-pooling) | this course's own models, trained that way |
#
# The course chose max-pooling so that a thin brush stroke in the app can never vanish on its way
# to latent size; nearest can drop a stroke thinner than a cell, and it is what SD-inpainting
# checkpoints were trained with. A model must be run with the rule it was trained with, so
# `TryOnInpaintPipeline` follows the loaded model's `pipe.inpaint_rule` (saved in its
# `model_index.json`): a real SD folder gets diffusers' rule. The next cell applies both rules to a
# thin brush stroke.
#
# The last 5 channels never change during sampling: they tell the U-Net what to keep and where to
# paint. Below, a held-out scene (the person in their own garment), its ground-truth target, the
# masked image, and the 9 channels at t = `unet_timestep`.

# %%
from tryon_lab.course.inpainting.unet_input import unet_input_channels

unet_in = unet_input_channels(pipe, sample.scene, sample.shape_mask, settings["unet_timestep"],
                              target=sample.target, seed=seed)
print(f"U-Net input {tuple(unet_in.sample.shape)} at t = {unet_in.timestep:.0f}; caption: {sample.caption!r}")
print(f"latent cells masked: {int(unet_in.mask.sum())} of {unet_in.mask.numel()}; "
      f"pixels masked: {int(sample.shape_mask.sum())} of {sample.shape_mask.size}")
image_grid([sample.scene, sample.target, unet_in.masked_image], ["scene (input)", "target (ground truth)", "masked image"],
           ncols=3)

# %%
image_grid(channel_images(unet_in.sample), unet_in.titles(), ncols=9, size=1.4)

# %%
import torch

from tryon_lab.data.masks import stroke_mask
from tryon_lab.pipelines.latents import latent_mask

side = pipe.resolution
stroke = stroke_mask([(side // 10, side // 2), (side - side // 10, side // 3)], radius=1.0, size=(side, side))
stroke_pixels = torch.from_numpy(stroke.astype("float32"))[None, None]
rules = {rule: latent_mask(stroke_pixels, pipe.unet.config.sample_size, rule)[0, 0].numpy()
         for rule in ("tryon-lab", "diffusers")}
print(f"a thin brush stroke covering {int(stroke.sum())} pixels; this model's rule: {pipe.inpaint_rule!r}")
for rule, cells in rules.items():
    print(f"  {rule!r:12s} marks {int(cells.sum()):3d} of {cells.size} latent cells")
image_grid([stroke, *rules.values()], ["pixel mask (a thin stroke)", "max-pool ('tryon-lab')", "nearest ('diffusers')"],
           ncols=3)

# %% [markdown]
# Channels 5–8 look like channels 0–3 of a picture with a hole in it; channel 4 is the mask,
# coarser than the pixel mask because every latent cell covers 8x8 pixels. The U-Net's first
# convolution has 9 input channels; everything after it is the ordinary Stable Diffusion U-Net.

# %% [markdown]
# ## 5. Sampling step by step
#
# `TryOnInpaintPipeline.__call__` takes a `callback_on_step_end(pipe, step, timestep, state)`
# that runs after every step with the current latents in `state["latents"]`, and may return
# replacements. The app uses it for live previews. A callback that just records which timesteps
# the sampler visits:

# %%
visited = []


def log_step(pipeline, step, timestep, state):
    visited.append(int(timestep))
    return {}  # nothing replaced


pipe(sample.scene, sample.shape_mask, sample.caption, num_inference_steps=settings["sampler_steps"], seed=seed,
     guidance_scale=settings["guidance_scale"], callback_on_step_end=log_step)
print(f"{type(pipe.scheduler).__name__} with {settings['sampler_steps']} steps visits t =", visited)

# %% [markdown]
# `denoising_previews` uses the same callback to decode two pictures every few steps: the latent
# x_t the U-Net saw (top row) and **the clean latent it predicts from it**,
# x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t (bottom row). Early predictions are blurry averages of
# everything the caption could mean; each step commits to more detail. With guidance, ε̂ is the
# classifier-free-guided noise (exercise 2 below).

# %%
from tryon_lab.course.inpainting.previews import denoising_previews

previews = denoising_previews(pipe, sample.scene, sample.shape_mask, sample.caption, steps=settings["steps"],
                              every=settings["preview_every"], seed=seed, guidance_scale=settings["guidance_scale"])
previews.figure()

# %% [markdown]
# ## 6. Samplers compared
#
# The sampler (the diffusers *scheduler*) decides how to step from x_t to the next, less noisy
# latent, given the U-Net's prediction. It is swappable: the U-Net is the same. Here DDIM,
# DPM-Solver++ (2nd order) and Euler run the same try-on with the same seed and the same small step
# budget, next to a long DDIM run used as the reference. All three follow the same denoising
# path, so the closer a few-step result is to the reference (higher PSNR), the more accurately the
# sampler follows it. Every step costs one U-Net call, so the timings are close: what differs is
# quality per step.
#
# Two things to look for. DPM-Solver++ is a second-order solver: it reuses the previous step's
# prediction to take a better step, so with few steps it lands closest to the reference. DDIM and
# Euler give nearly the same picture: with the same timesteps, DDIM *is* Euler's method, applied
# to the rescaled latent x_t / √ᾱ_t (Karras et al., 2022). The bottom row shows where each
# result differs from the reference, magnified 4 times (black: no difference).

# %%
from tryon_lab.course.inpainting.samplers import compare_schedulers, sampler_figure, sampler_table

runs = compare_schedulers(pipe, sample.scene, sample.shape_mask, sample.caption, steps=settings["sampler_steps"],
                          seed=seed, guidance_scale=settings["guidance_scale"],
                          reference_steps=settings["reference_steps"])
print(sampler_table(runs))
sampler_figure(runs)

# %% [markdown]
# **Fewer steps.** Each step costs a U-Net call (two, with guidance), so the step count is the
# price of a try-on. How much quality does each sampler keep as the steps drop? The next cell
# inpaints the same held-out test samples at each of the profile's step counts and plots the masked
# PSNR against the ground truth, against steps and against seconds.
#
# A third kind of sampler joins when the model has been *distilled*: latent consistency
# distillation (`tryon-lab distill`) trains a LoRA on the U-Net so that from any point of the
# noise schedule it predicts where the guided DDIM trajectory ends, with the guidance folded in.
# `LCMScheduler` then needs a handful of steps and no unconditional pass. Switched off, the LoRA
# leaves the model exactly as it was. A model without one shows DDIM and DPM-Solver++ only.
#
# At four steps the U-Net is no longer the bottleneck: encoding the masked photo and decoding the
# result cost the same under every sampler, and on a CPU they become most of an instant try-on.
# So the lcm sampler also swaps the VAE for the model's *fast VAE* when it has one
# (`tryon-lab distill-vae`): its decoder has half the channels at full resolution, its encoder a
# quarter (the encoder only has to reproduce a latent, the decoder paints the result), trained to
# give the base encoder's latents and to decode them, so the U-Net cannot tell the difference. It trains on small
# crops (a quarter of the cost), then its decoder alone on whole images: GroupNorm statistics and
# the mid-block attention span the whole latent, so a decoder that has only seen crops decodes whole
# images worse than its crop loss says. Its card says what it costs in quality.

# %%
from tryon_lab.course.inpainting.samplers import quality_by_steps, steps_figure

test_samples = [world.sample(i, split="test") for i in range(settings["quality_samples"])]
curves = quality_by_steps(pipe, test_samples, settings["quality_steps"], seed=seed)
steps_figure(curves)

# %% [markdown]
# ## 7. Paste-back
#
# The model works on its own square (`pipe.resolution` pixels; the photo is padded to fit), and
# its decoder never reproduces a photo exactly (section 2). So the pipeline does not return the
# decoded square: it scales it back to the photo's size and **blends it in only inside the mask**,
# with weights (the *seam alpha*) that are 0 outside the mask and 1 inside it. Where alpha is 0 the
# output pixel *is* the input pixel, so the user's face, hands and background come back bit for bit.
#
# `feather_px` softens the seam: alpha ramps from 0 to 1 over that many pixels *inside* the mask (it
# may not leave the mask, or pixels outside would change). That hides an edge where the mask cuts
# through content that stays. In a try-on it does harm, so the default seam is hard: inside the mask
# is the old garment, and the ramp blends it back in along the mask's edge, a ghost of the old
# garment's outline. Where the new garment shows skin the old one covered (a tank top over long
# sleeves), the pixels that should turn to skin lie mostly near that edge; `benchmarks inpainting`
# measures how much of them the ghost keeps. The cell below asks for a soft seam to show the ramp.
#
# Below, the Grace Hopper photo (512x600, not square) with a box over her jacket. The model only
# knows the synthetic world, so do not expect a convincing tee on a real photo; look at where
# pixels changed and where they did not.

# %%
from tryon_lab.course.inpainting.paste_back import paste_back_parts
from tryon_lab.data.masks import box_mask

jacket = box_mask((380, 40, 600, 470), size=photo.size)  # box: (top, left, bottom, right); size: (w, h)
feather_px = 8.0
out = pipe(photo, jacket, "a photo of a person wearing a red plain tee", num_inference_steps=settings["steps"], seed=seed,
           guidance_scale=settings["guidance_scale"], feather_px=feather_px)
parts = paste_back_parts(photo, out, jacket, feather_px)
print(f"photo {photo.size}, raw model output {parts.raw.size}, result {parts.result.size}")
print(f"largest change of any pixel outside the mask: {parts.max_outside} (of 255)")
parts.figure()

# %% [markdown]
# The largest difference outside the mask is **0**: not "small", exactly zero. Two things make it
# so: alpha is exactly 0 there (the feathered ramp lies wholly inside the mask), and the blend
# rounds `original·(1−alpha) + generated·alpha` in floating point, where `x·1 + y·0` is `x`.
# The same blend serves the app's eraser (`tryon_lab.pipelines.restore`), which paints original
# pixels back over a result.

# %% [markdown]
# ## 8. Exercises
#
# Each exercise has a stub that raises `NotImplementedError`, followed by its exercise. The exercise runs
# your function on fixed inputs and tells you what is wrong, never what the answer is. (The package
# has its own versions of all four; write yours before you look for them.)
#
# ### 8.1 The 9-channel input
#
# Write `unet_input(noisy_latents, masked_image_latents, pixel_mask)`. The latents are float
# tensors of shape `(B, 4, h, w)`; `pixel_mask` is a float tensor `(B, 1, H, W)` of 0s and 1s at
# pixel resolution, with `H = 8h` and `W = 8w` (images need not be square). Return the
# `(B, 9, h, w)` U-Net input: the noisy latent, the mask at latent size (a latent cell is 1 if
# **any** of its pixels is masked, the course's rule), and the masked-image latent, in that order.
#
# Hints: `torch.cat(tensors, dim=...)`; `torch.nn.functional` has pooling layers. Think about a
# one-pixel brush stroke: it must not vanish.

# %%
import torch
import torch.nn.functional as F


def unet_input(noisy_latents: torch.Tensor, masked_image_latents: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """Return the (B, 9, h, w) inpainting U-Net input."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch01 import exercise_unet_input

exercise_unet_input(unet_input)

# %% [markdown]
# ### 8.2 Classifier-free guidance
#
# With guidance the pipeline runs the U-Net on a doubled batch: first the B rows conditioned on the
# empty (negative) prompt, then the B rows conditioned on your prompt. Write
# `guided_noise(noise_pred, guidance_scale)` that turns that `(2B, 4, h, w)` output into the
# `(B, 4, h, w)` guided prediction: start from the unconditional prediction and move
# `guidance_scale` times the difference towards the conditional one. At scale 1 that is the
# conditional prediction itself; at larger scales it goes further, which follows the prompt more
# closely at the cost of variety.

# %%
def guided_noise(noise_pred: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Return the (B, ...) classifier-free-guided prediction from the (2B, ...) U-Net output."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch01 import exercise_guided_noise

exercise_guided_noise(guided_noise)

# %% [markdown]
# ### 8.3 The guided sampling loop
#
# Now the heart of the pipeline: the loop that turns noise into a try-on. Write
# `sample_loop(unet, scheduler, latents, mask, masked_image_latents, text_embeddings, guidance_scale)`.
# You get exactly what `pipe(...)` has prepared before its loop starts:
#
# - `latents` `(B, 4, h, w)`: the initial noise, already multiplied by `scheduler.init_noise_sigma`;
# - `mask` `(B, 1, h, w)` and `masked_image_latents` `(B, 4, h, w)`: the inpainting channels of
#   section 4 (they never change during sampling);
# - `text_embeddings` `(2B, L, D)`: the empty (negative) prompt's rows first, then the prompt's;
# - `scheduler`: a diffusers scheduler whose timesteps are set (`scheduler.timesteps`).
#
# At every timestep t: double the latent batch (one copy per half of the embeddings), let the
# scheduler scale it (`scheduler.scale_model_input(x, t)`: DDIM leaves it unchanged, Euler does
# not), append the inpainting channels in the U-Net's order, predict the noise
# (`unet(x, t, encoder_hidden_states=text_embeddings).sample`), guide it as in exercise 8.2, and
# take the scheduler's step (`scheduler.step(noise, t, latents).prev_sample`). Return the final
# latents. The exercise runs the pipeline itself with the same seed, once with DDIM and once with
# Euler, and compares your latents with the pipeline's.

# %%
def sample_loop(unet, scheduler, latents: torch.Tensor, mask: torch.Tensor, masked_image_latents: torch.Tensor,
                text_embeddings: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Return the final (B, 4, h, w) latents of a classifier-free-guided inpainting run."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch01_sampling import exercise_sample_loop

exercise_sample_loop(sample_loop, pipe)

# %% [markdown]
# ### 8.4 The paste-back blend
#
# Write `blend(original, generated, alpha)`: `original` and `generated` are uint8 arrays
# `(H, W, 3)`, `alpha` a float32 array `(H, W)` in [0, 1]. Return a uint8 `(H, W, 3)` image that
# is the original where alpha is 0, the generated image where alpha is 1, and the alpha-weighted
# mix, **rounded to the nearest level**, in between. Watch out: uint8 arithmetic wraps around
# (`np.uint8(200) + np.uint8(100)` is 44).

# %%
import numpy as np


def blend(original: np.ndarray, generated: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Return original * (1 - alpha) + generated * alpha as a rounded uint8 image."""
    # YOUR CODE HERE
    raise NotImplementedError


# %% tags=["raises-exception"]
from tryon_lab.course.exercises.ch01 import exercise_blend

exercise_blend(blend)

# %% [markdown]
# When the exercises pass, you are ready for **02 · DreamBooth on a garment**, where this model is
# fine-tuned on a handful of pictures of one garment until it can put *that* garment on anyone.
