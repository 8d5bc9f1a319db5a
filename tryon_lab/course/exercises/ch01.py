"""Chapter 01 exercises: the U-Net's 9-channel input, classifier-free guidance, the paste-back blend.

1. ``unet_input(noisy_latents, masked_image_latents, pixel_mask)``: tensors (B, 4, h, w),
   (B, 4, h, w) and (B, 1, H, W) with H, W a multiple of h, w -> the (B, 9, h, w) U-Net input in
   diffusers' order: the noisy latent, the mask brought to latent size so that a latent cell
   counts as masked when any of its pixels is (the course's rule), and the masked-image latent.
2. ``guided_noise(noise_pred, guidance_scale)``: the U-Net's output for the doubled batch
   (B unconditional rows, then B text-conditioned rows) -> the (B, ...) guided prediction.
3. ``sample_loop(...)``: the guided sampling loop, in ``ch01_sampling``.
4. ``blend(original, generated, alpha)``: uint8 HxWx3 images and float HxW weights -> the uint8
   image that is ``original`` where alpha is 0, ``generated`` where it is 1, and their weighted
   mix, rounded, in between.

Judges compare the answer with the right one internally but describe only what is wrong
(which channels, how many cells or pixels, how large an error), never the expected values.
The fixed inputs are numpy arrays; exercises 1 and 2 hand them to the student's function as
torch tensors that share their memory, so changing an input in place is still caught.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tryon_lab.course.exercises.core import Case, describe, run_exercise
from tryon_lab.course.exercises.tensors import as_torch, max_error, tensor_problem

UNET_INPUT = "unet_input"
GUIDANCE = "guided_noise"
BLEND = "blend"
_TOLERANCE = 1e-5


# --- exercise 1: the U-Net's 9-channel input -----------------------------------------------------


def exercise_unet_input(fn) -> bool:
    """Test the student's ``unet_input(noisy_latents, masked_image_latents, pixel_mask)`` on fixed
    latents and masks; return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(UNET_INPUT, as_torch(fn), unet_input_cases(), judge_unet_input)


def _latent_mask(pixel_mask: np.ndarray, h: int, w: int) -> np.ndarray:
    b, _, height, width = pixel_mask.shape
    cells = pixel_mask.reshape(b, 1, h, height // h, w, width // w)
    return cells.max(axis=(3, 5)).astype(np.float32)


@lru_cache(maxsize=1)
def unet_input_cases() -> tuple[Case, ...]:
    """Fixed inputs: latents with different statistics per group (so a swapped order shows), a
    world garment mask, a box not aligned to the 8-pixel cells, a 1-pixel brush stroke, a batch
    whose items have different masks, a non-square latent, and empty and full masks."""
    from tryon_lab.data.masks import stroke_mask
    from tryon_lab.data.world import World

    rng = np.random.default_rng(1)

    def latents(b, h, w):
        noisy = rng.standard_normal((b, 4, h, w)).astype(np.float32)
        masked = (0.5 * rng.standard_normal((b, 4, h, w)) + 2.0).astype(np.float32)
        return noisy, masked

    def pixels(*masks):
        return np.stack([m.astype(np.float32)[None] for m in masks])

    garment = World(seed=0, resolution=128).sample(3, kind="garment").shape_mask
    unaligned = np.zeros((64, 64), dtype=bool)
    unaligned[13:42, 21:51] = True
    stroke = stroke_mask([(5, 60), (58, 9)], radius=0.5, size=(64, 64))
    corner = np.zeros((64, 64), dtype=bool)
    corner[:24, :24] = True
    wide = np.zeros((48, 80), dtype=bool)
    wide[10:30, 35:70] = True
    return (
        Case("a world garment mask, 128x128 pixels -> 16x16 latents", (*latents(1, 16, 16), pixels(garment))),
        Case("a box whose edges fall inside 8-pixel cells", (*latents(1, 8, 8), pixels(unaligned))),
        Case("a 1-pixel-wide brush stroke", (*latents(1, 8, 8), pixels(stroke))),
        Case("a batch of two items with different masks", (*latents(2, 8, 8), pixels(unaligned, corner))),
        Case("a non-square 48x80 image (6x10 latents)", (*latents(1, 6, 10), pixels(wide))),
        Case("an empty mask (nothing to repaint)", (*latents(1, 8, 8), pixels(np.zeros((64, 64), bool)))),
        Case("a full mask (repaint everything)", (*latents(1, 8, 8), pixels(np.ones((64, 64), bool)))),
    )


def judge_unet_input(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the U-Net input of ``case``, or None if it is right."""
    noisy, masked, pixel_mask = case.args
    b, c, h, w = noisy.shape
    problem = tensor_problem(result, (b, 2 * c + 1, h, w), "a (B, 9, h, w) tensor")
    if problem:
        return problem
    if max_error(result[:, c:2 * c], masked) <= _TOLERANCE:
        return (f"channels {c}-{2 * c - 1} hold the masked-image latent and the mask comes last; Stable Diffusion "
                f"inpainting (and this U-Net) expects the mask right after the noisy latent, at channel {c}")
    groups = {"the noisy latent": noisy, "the masked-image latent": masked}
    for (name, expected), start in zip(groups.items(), (0, c + 1)):
        got = result[:, start:start + c]
        if max_error(got, expected) <= _TOLERANCE:
            continue
        where = f"channels {start}-{start + c - 1}"
        for other_name, other in groups.items():
            if other is not expected and max_error(got, other) <= _TOLERANCE:
                return f"{where} hold {other_name}, but the U-Net was trained with {name} there"
        return f"{where} should be {name} exactly as given; they differ from it by up to {max_error(got, expected):.3g}"
    return _mask_channel_problem(result[:, c].detach().double().numpy(), pixel_mask, c)


def _mask_channel_problem(channel: np.ndarray, pixel_mask: np.ndarray, index: int) -> str | None:
    expected = _latent_mask(pixel_mask, *channel.shape[1:])[:, 0]
    if not np.isin(channel, (0.0, 1.0)).all():
        odd = channel[~np.isin(channel, (0.0, 1.0))]
        return (f"the mask channel (channel {index}) holds values other than 0 and 1 (e.g. {odd.flat[0]:.3g}); "
                "a latent cell is either repainted or kept, so a cell with any masked pixel counts as masked")
    missed = int(((expected == 1) & (channel == 0)).sum())
    extra = int(((expected == 0) & (channel == 1)).sum())
    if missed:
        return (f"the mask channel marks {missed} latent cell(s) as kept although some of their pixels are "
                "masked; thin strokes and mask edges must survive the downsampling")
    if extra:
        return f"the mask channel marks {extra} latent cell(s) as masked although none of their pixels is masked"
    return None


# --- exercise 2: classifier-free guidance --------------------------------------------------------


def exercise_guided_noise(fn) -> bool:
    """Test the student's ``guided_noise(noise_pred, guidance_scale)`` on fixed U-Net outputs and
    scales; return True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(GUIDANCE, as_torch(fn), guidance_cases(), judge_guided_noise)


@lru_cache(maxsize=1)
def guidance_cases() -> tuple[Case, ...]:
    """Fixed inputs: doubled batches of 1 and 3 items at guidance scales 0, 1, 4 and 7.5."""
    rng = np.random.default_rng(2)

    def batch(b):
        uncond = rng.standard_normal((b, 4, 8, 8)).astype(np.float32)
        cond = (uncond + 0.7 * rng.standard_normal((b, 4, 8, 8))).astype(np.float32)
        return np.concatenate([uncond, cond])

    return (
        Case("one image at guidance_scale 1 (guidance should change nothing)", (batch(1), 1.0)),
        Case("one image at guidance_scale 0 (the prompt should be ignored)", (batch(1), 0.0)),
        Case("one image at guidance_scale 4", (batch(1), 4.0)),
        Case("a batch of three images at guidance_scale 7.5", (batch(3), 7.5)),
    )


def _guided(noise_pred: np.ndarray, scale: float) -> np.ndarray:
    uncond, cond = np.split(noise_pred.astype(np.float64), 2)
    return uncond + scale * (cond - uncond)


def judge_guided_noise(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the guided prediction of ``case``, or None."""
    noise_pred, scale = case.args
    half = noise_pred.shape[0] // 2
    problem = tensor_problem(result, (half, *noise_pred.shape[1:]),
                              f"one prediction per image (the input holds {noise_pred.shape[0]} rows for {half} image(s))")
    if problem:
        return problem
    error = max_error(result, _guided(noise_pred, scale))
    if error <= 1e-4:
        return None
    swapped = np.concatenate([noise_pred[half:], noise_pred[:half]])
    if max_error(result, _guided(swapped, scale)) <= 1e-4:
        return ("you treat the first half of the batch as the text-conditioned prediction; the pipeline "
                "puts the unconditional (empty-prompt) half first")
    uncond, cond = np.split(noise_pred, 2)
    if scale == 1.0:
        return ("at guidance_scale 1 the result should be the text-conditioned prediction itself; "
                f"yours differs from it by up to {max_error(result, cond):.3g}")
    if scale == 0.0:
        return ("at guidance_scale 0 the result should be the unconditional prediction itself; "
                f"yours differs from it by up to {max_error(result, uncond):.3g}")
    return (f"your guided prediction is off by up to {error:.3g}; guidance should move from the unconditional "
            "prediction towards (and past) the conditional one, further as the scale grows")


# --- exercise 4: the paste-back blend ------------------------------------------------------------


def exercise_blend(fn) -> bool:
    """Test the student's ``blend(original, generated, alpha)`` on fixed images and seams; return
    True (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    return run_exercise(BLEND, fn, blend_cases(), judge_blend)


@lru_cache(maxsize=1)
def blend_cases() -> tuple[Case, ...]:
    """Fixed inputs: a world scene and a noisy "generated" square under a feathered seam, bright
    images (where uint8 sums overflow), all-0 and all-1 alpha, and a non-square image."""
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.compositing import seam_alpha

    rng = np.random.default_rng(3)
    sample = World(seed=0, resolution=64).sample(2, kind="garment")
    scene = np.asarray(sample.scene).copy()
    generated = rng.integers(0, 256, size=scene.shape, dtype=np.uint8)
    alpha = seam_alpha(sample.shape_mask, 3.0).astype(np.float32)
    bright_a = rng.integers(200, 256, size=(40, 40, 3), dtype=np.uint8)
    bright_b = rng.integers(200, 256, size=(40, 40, 3), dtype=np.uint8)
    ramp = np.tile(np.linspace(0.0, 1.0, 40, dtype=np.float32), (40, 1))
    wide_a = rng.integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    wide_b = rng.integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    wide_alpha = np.zeros((30, 50), dtype=np.float32)
    wide_alpha[5:25, 10:45] = 0.3
    wide_alpha[10:20, 20:35] = 1.0
    return (
        Case("a world scene with a feathered garment seam", (scene, generated, alpha)),
        Case("two bright images under a left-to-right ramp", (bright_a, bright_b, ramp)),
        Case("alpha 0 everywhere (keep the original)", (scene, generated, np.zeros(alpha.shape, np.float32))),
        Case("alpha 1 everywhere (take the generated image)", (scene, generated, np.ones(alpha.shape, np.float32))),
        Case("a non-square 30x50 image", (wide_a, wide_b, wide_alpha)),
    )


def judge_blend(result, case: Case) -> str | None:
    """Return what is wrong with ``result`` as the blend of ``case``'s images, or None."""
    original, generated, alpha = case.args
    if not isinstance(result, np.ndarray):
        return f"expected a numpy array, got {describe(result)}"
    if result.shape != original.shape:
        return f"expected an image of the inputs' shape {original.shape}, got shape {result.shape}"
    if result.dtype != np.uint8:
        return f"expected a uint8 image like the inputs, got dtype {result.dtype}"
    keep, take = alpha == 0, alpha == 1
    changed = int((result != original)[keep].any(axis=-1).sum())
    if changed:
        return f"{changed} of the {int(keep.sum())} pixels where alpha is 0 differ from the original; they must come back untouched"
    wrong = int((result != generated)[take].any(axis=-1).sum())
    if wrong:
        return f"{wrong} of the {int(take.sum())} pixels where alpha is 1 differ from the generated image"
    seam = ~(keep | take)
    exact = original.astype(np.float64) * (1 - alpha[..., None]) + generated.astype(np.float64) * alpha[..., None]
    error = np.abs(result.astype(np.float64) - exact)[seam]
    if error.size and error.max() > 0.5 + 1e-3:
        off = int((error > 0.5 + 1e-3).sum())
        hint = "; did uint8 arithmetic wrap around?" if error.max() > 64 else "; round to the nearest level"
        return (f"in the seam (0 < alpha < 1), {off} channel value(s) are further than half a level from the "
                f"weighted mix, by up to {error.max():.1f} levels{hint}")
    return None
