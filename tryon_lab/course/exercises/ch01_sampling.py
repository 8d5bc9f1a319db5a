"""Chapter 01, exercise 3: the guided sampling loop.

``sample_loop(unet, scheduler, latents, mask, masked_image_latents, text_embeddings,
guidance_scale)``: from the pipeline's own starting point (initial noise, latent mask, masked-image
latent, negative-then-prompt embeddings, a scheduler with its timesteps set) -> the final latents.
The judge runs the pipeline itself with the same seed and compares, with DDIM and with Euler (whose
model input must be scaled), and names the typical mistakes: no guidance, the mask and masked-image
latent swapped, guidance pushed the wrong way, the model input not scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tryon_lab.course.exercises.core import describe, fail, passed
from tryon_lab.course.exercises.tensors import tensor_problem

SAMPLING = "sample_loop"


# --- exercise 3: the guided sampling loop ---------------------------------------------------------


@dataclass(frozen=True)
class SamplingCase:
    """One run of the pipeline to reproduce: a ``label``, the ``scheduler`` class name, ``steps``,
    ``guidance_scale`` and the world sample ``index`` painted (its own caption as the prompt)."""

    label: str
    scheduler: str
    steps: int
    guidance_scale: float
    index: int


SAMPLING_CASES = (
    SamplingCase("DDIM, 3 steps, guidance 4", "DDIMScheduler", 3, 4.0, 0),
    SamplingCase("Euler, 3 steps, guidance 7.5 (Euler scales its model input)", "EulerDiscreteScheduler", 3, 7.5, 1),
)


@lru_cache(maxsize=1)
def _tiny_pipeline():
    import tempfile

    from tryon_lab.course.inpainting.models import course_pipeline

    return course_pipeline("random:tiny", tempfile.mkdtemp(prefix="tryon-lab-ch01-"))


def exercise_sample_loop(fn, pipe=None) -> bool:
    """Run the student's ``sample_loop(unet, scheduler, latents, mask, masked_image_latents,
    text_embeddings, guidance_scale)`` from the starting point ``pipe(...)`` prepares for a seed and
    compare its final latents with the pipeline's own, with DDIM and with Euler. ``pipe`` defaults to
    a tiny random-weight pipeline (the comparison is numeric, so any weights do); return True
    (printing "✓ ... passed") or raise ``ExerciseError``."""
    __tracebackhide__ = True
    import torch

    if not callable(fn):
        fail(SAMPLING, f"expected a function, got {describe(fn)}")
    pipe = pipe if pipe is not None else _tiny_pipeline()
    original_scheduler = pipe.scheduler
    try:
        for case in SAMPLING_CASES:
            inputs, expected = _sampling_case(pipe, original_scheduler, case)
            given = [inputs.latents.clone(), inputs.mask.clone(), inputs.masked_image_latents.clone(),
                     inputs.text_embeddings.clone()]
            scheduler = _fresh(inputs.scheduler, case.steps)
            kept = [t.clone() for t in given]
            try:
                with torch.no_grad():
                    result = fn(pipe.unet, scheduler, *given, case.guidance_scale)
            except NotImplementedError:
                fail(SAMPLING, "your function is not written yet (it raises NotImplementedError)")
            except Exception as error:
                fail(SAMPLING, f"on {case.label}, your function raised {type(error).__name__}: {error}", error)
            if any(not torch.equal(a, b) for a, b in zip(given, kept)):
                fail(SAMPLING, f"on {case.label}, your function changed one of its input tensors in place; "
                               "the loop should build new tensors (torch.cat, scheduler.step's result)")
            problem = judge_sample_loop(result, expected, lambda: _mistakes(pipe, inputs, case))  # noqa: B023 - called within this iteration
            if problem:
                fail(SAMPLING, f"on {case.label}: {problem}")
    finally:
        pipe.scheduler = original_scheduler
    return passed(SAMPLING, f"{len(SAMPLING_CASES)} runs match the pipeline's")


_CASES_OF_TINY: dict[SamplingCase, tuple] = {}  # the default pipeline's cases, computed once


def _sampling_case(pipe, scheduler, case: SamplingCase):
    """(the loop's inputs, the pipeline's final latents) for one case (kept for the default pipeline)."""
    tiny = _tiny_pipeline.cache_info().currsize > 0 and pipe is _tiny_pipeline()
    if tiny and case in _CASES_OF_TINY:
        inputs, expected = _CASES_OF_TINY[case]
        return inputs, expected.clone()
    import diffusers

    from tryon_lab.course.inpainting.sampling import pipeline_latents, sampling_inputs
    from tryon_lab.data.world import World

    sample = World(seed=0, resolution=pipe.resolution).sample(case.index, split="test", kind="garment")
    make = getattr(diffusers, case.scheduler)
    args = (pipe, sample.scene, sample.shape_mask, sample.caption)
    inputs = sampling_inputs(*args, steps=case.steps, seed=case.index, scheduler=make.from_config(scheduler.config))
    expected = pipeline_latents(*args, steps=case.steps, seed=case.index, guidance_scale=case.guidance_scale)
    if tiny:
        _CASES_OF_TINY[case] = (inputs, expected.clone())
    return inputs, expected


def _mistakes(pipe, inputs, case: SamplingCase) -> dict[str, Any]:
    """{mistake: the final latents a loop making it gives} (diffusers' warning about the unscaled
    input silenced: the judge makes that mistake on purpose)."""
    from diffusers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return {mistake: reference_sample_loop(pipe.unet, _fresh(inputs.scheduler, case.steps), inputs,
                                               case.guidance_scale, mistake=mistake)
                for mistake in SAMPLING_MISTAKES}
    finally:
        logging.set_verbosity(verbosity)


def _fresh(scheduler, steps: int):
    fresh = type(scheduler).from_config(scheduler.config)
    fresh.set_timesteps(steps)
    return fresh


# The typical mistakes, each with what the judge tells a student whose result matches it.
SAMPLING_MISTAKES = {
    "no guidance": "your result is what the loop gives without classifier-free guidance (the text-conditioned "
                   "prediction alone); mix the unconditional and conditional halves with guidance_scale",
    "mask and masked latent swapped": "your result is what the U-Net gives when the masked-image latent comes "
                                      "before the mask; the 9 channels are [noisy latent, mask, masked-image latent]",
    "guidance reversed": "your guidance pushes the prediction away from the prompt (the halves' roles or the "
                         "difference's sign are reversed); the first half of the batch is the unconditional one",
    "input not scaled": "your result is what the loop gives when the noisy latent reaches the U-Net unscaled; "
                        "schedulers such as Euler need scheduler.scale_model_input(latent_input, t) first",
}


def reference_sample_loop(unet, scheduler, inputs, guidance_scale: float, mistake: str | None = None):
    """The guided loop as ``MaskedInpaintPipelineBase._denoise`` runs it, or with one of
    ``SAMPLING_MISTAKES`` made on purpose (the judge compares a wrong result with these)."""
    import torch

    latents = inputs.latents
    if mistake == "mask and masked latent swapped":
        channels = torch.cat([inputs.masked_image_latents, inputs.mask], dim=1)
    else:
        channels = torch.cat([inputs.mask, inputs.masked_image_latents], dim=1)
    channels = torch.cat([channels, channels])
    with torch.no_grad():
        for t in scheduler.timesteps:
            doubled = torch.cat([latents, latents])
            if mistake != "input not scaled":
                doubled = scheduler.scale_model_input(doubled, t)
            noise = unet(torch.cat([doubled, channels], dim=1), t, encoder_hidden_states=inputs.text_embeddings).sample
            uncond, cond = noise.chunk(2)
            if mistake == "no guidance":
                noise = cond
            elif mistake == "guidance reversed":
                noise = cond + guidance_scale * (uncond - cond)
            else:
                noise = uncond + guidance_scale * (cond - uncond)
            latents = scheduler.step(noise, t, latents).prev_sample
    return latents


def judge_sample_loop(result, expected, mistakes) -> str | None:
    """What is wrong with ``result`` as the final latents ``expected``, or None (never the values);
    ``mistakes()`` gives {mistake: final latents} to recognise a typical wrong loop by."""
    import torch

    problem = tensor_problem(result, tuple(expected.shape), "the final latents (one per image, the guidance batch halved)")
    if problem:
        return problem

    def error(a, b) -> float:
        return float((a.detach().double() - b.double()).abs().max())

    scale = 1.0 + float(expected.abs().max())
    if error(result, expected) <= 1e-4 * scale:
        return None
    for mistake, latents in mistakes().items():
        if error(result, latents) <= 1e-4 * scale and error(latents, expected) > 1e-3 * scale:
            return SAMPLING_MISTAKES[mistake]
    if torch.equal(result, torch.zeros_like(result)) or error(result, expected) > 1e3 * scale:
        return "your final latents are far from any denoising run; return the latents after the last scheduler step"
    return (f"your final latents differ from the pipeline's by up to {error(result, expected):.2g}; loop over "
            "scheduler.timesteps, and at each step: double the latent, scale it, append the mask and the "
            "masked-image latent, predict the noise with the text embeddings, guide, and step")
