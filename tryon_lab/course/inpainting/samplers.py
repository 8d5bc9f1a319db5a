"""Samplers compared (notebook 01): one try-on with each sampler of ``pipelines.samplers``, same
seed and steps, timed and measured against a long DDIM run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tryon_lab.metrics.image import psnr
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.samplers import SAMPLERS, TEXT_GUIDANCE, make_scheduler
from tryon_lab.plotting import NotebookFigure, image_grid
from tryon_lab.tables import format_table

COMPARED = ("ddim", "dpm", "euler")


@dataclass
class SamplerRun:
    """One sampler's try-on: its ``name`` (the sampler's label), the model-square ``raw`` output, the pasted-back
    ``image``, wall ``seconds``, and (when a reference was run) ``psnr_to_reference`` in dB."""

    name: str
    steps: int
    raw: Image.Image
    image: Image.Image
    seconds: float
    psnr_to_reference: float | None = None


def compare_schedulers(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str = "", *,
                       samplers: Sequence[str] = COMPARED, steps: int = 20, seed: int = 0,
                       guidance_scale: float = TEXT_GUIDANCE, reference_steps: int | None = None) -> list[SamplerRun]:
    """Run the same try-on (same seed, same steps) with each sampler named in ``samplers`` (names of
    ``pipelines.samplers.SAMPLERS``); return one ``SamplerRun`` each.

    All samplers solve the same denoising process, so with many steps they agree; with few
    they differ in how well they follow it. With ``reference_steps``, a DDIM run of that many
    steps is added first (named "DDIM (reference)") and every run's PSNR against it is filled in.
    A one-step warm-up run comes before the timings; ``pipe.scheduler`` is restored afterwards.
    """
    original = pipe.scheduler

    def run(name: str, n: int) -> SamplerRun:
        pipe.scheduler = make_scheduler(name, original.config)
        started = time.perf_counter()
        out = pipe(image, mask, prompt, num_inference_steps=n, guidance_scale=guidance_scale, seed=seed)
        return SamplerRun(SAMPLERS[name].label, n, out.raw[0], out.images[0], time.perf_counter() - started)

    try:
        run("ddim", 1)  # warm-up: first calls pay for allocations
        runs = [run(name, steps) for name in samplers]
        if reference_steps:
            reference = run("ddim", reference_steps)
            reference.name = "DDIM (reference)"
            for r in [reference, *runs]:
                r.psnr_to_reference = psnr(r.raw, reference.raw)
            runs.insert(0, reference)
    finally:
        pipe.scheduler = original
    return runs


def sampler_figure(runs: Sequence[SamplerRun], gain: float = 4.0, size: float = 2.2) -> NotebookFigure:
    """Figure: each run's raw output with its steps and time (top row) and, when the runs were
    measured against a reference (the first run), where they differ from it: the absolute
    difference, times ``gain`` so that small ones show (bottom row)."""
    images = [r.raw for r in runs]
    titles = [f"{r.name}, {r.steps} steps, {r.seconds:.2f} s" for r in runs]
    if runs and runs[0].psnr_to_reference is not None:
        reference = np.asarray(runs[0].raw, dtype=np.float32)
        for r in runs:
            difference = np.abs(np.asarray(r.raw, dtype=np.float32) - reference) * gain
            images.append(Image.fromarray(np.clip(difference, 0, 255).astype(np.uint8)))
            titles.append("(the reference)" if r is runs[0] else f"|difference| x{gain:g}, PSNR {r.psnr_to_reference:.1f} dB")
    return image_grid(images, titles, ncols=len(runs), size=size)


def sampler_table(runs: Sequence[SamplerRun]) -> str:
    """A text table of sampler runs: name, steps, seconds, and PSNR to the reference if known."""

    def quality(run: SamplerRun):
        if run.psnr_to_reference is None:
            return "-"
        return round(run.psnr_to_reference, 1) if np.isfinite(run.psnr_to_reference) else "identical"

    rows = [[r.name, r.steps, round(r.seconds, 2), quality(r)] for r in runs]
    return format_table(rows, ["sampler", "steps", "seconds", "PSNR to reference (dB)"])


@dataclass
class StepsCurve:
    """One sampler's quality against its step count: ``steps``, the mean masked PSNR (dB) of its
    try-ons against the ground truth at each, and the wall ``seconds`` per try-on."""

    name: str
    steps: list[int]
    psnr: list[float]
    seconds: list[float]


def quality_by_steps(pipe: TryOnInpaintPipeline, samples: Sequence[Any], step_counts: Sequence[int], *,
                     samplers: Sequence[str] = ("ddim", "dpm", "lcm"), seed: int = 0) -> list[StepsCurve]:
    """Inpaint the same world ``samples`` (shape mask, caption) with each sampler at each of
    ``step_counts``, with each sampler's own guidance; return one ``StepsCurve`` per sampler. ``lcm``
    runs when the pipeline's folder holds its LCM LoRA (``tryon-lab distill``) and is left out
    otherwise. The pipeline samples with DDIM again afterwards."""
    from tryon_lab.metrics.image import masked_psnr
    from tryon_lab.pipelines.samplers import load_lcm, use_sampler

    available = [s for s in samplers if s != "lcm" or (pipe.name_or_path and load_lcm(pipe, pipe.name_or_path))]
    curves = []
    try:
        for name in available:
            chosen = use_sampler(pipe, name)
            curve = StepsCurve(chosen.label, [], [], [])
            for n in step_counts:
                started = time.perf_counter()
                out = pipe([s.scene for s in samples], [s.shape_mask for s in samples], [s.caption for s in samples],
                           num_inference_steps=n, guidance_scale=chosen.guidance_scale, seed=seed)
                curve.seconds.append((time.perf_counter() - started) / len(samples))
                curve.steps.append(n)
                curve.psnr.append(float(np.mean([masked_psnr(o, s.target, s.shape_mask)
                                                 for o, s in zip(out.images, samples)])))
            curves.append(curve)
    finally:
        use_sampler(pipe, "ddim")
    return curves


def steps_figure(curves: Sequence[StepsCurve]) -> NotebookFigure:
    """Figure: masked PSNR against steps (left) and against seconds per try-on (right), one line per sampler."""
    figure = NotebookFigure(figsize=(9.0, 3.4))
    left, right = figure.subplots(1, 2)
    for curve in curves:
        left.plot(curve.steps, curve.psnr, marker="o", label=curve.name)
        right.plot(curve.seconds, curve.psnr, marker="o", label=curve.name)
    left.set(xscale="log", xlabel="steps", ylabel="masked PSNR to the ground truth (dB)")
    right.set(xscale="log", xlabel="seconds per try-on", ylabel="masked PSNR (dB)")
    left.legend()
    figure.tight_layout()
    return figure
