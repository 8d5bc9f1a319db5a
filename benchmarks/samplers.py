"""Issue-20 bars on the shipped inpainting model: few-step sampling against 25-step DDIM, side by
side in one run on the same test try-ons and seeds.

Every sampler inpaints the same test samples (items, people and rooms no training saw) with the
same seeds; the judge (world encoder) scores all-attribute and identity accuracy per try-on, and
KID compares each sampler's item crops with the ground-truth crops of the same samples. Each
sampler is compared with DDIM-25 by paired bootstrap intervals of the difference; the verdict says
"not distinguishable" unless the interval excludes zero.

Wall time: the samplers take turns batch by batch (batch 8, their order rotated each batch), so
a machine that slows down during the run slows them alike; switching samplers is not timed. The
LCM-4 / DDIM-25 ratio gets a bootstrap interval over batches (paired), and the bar counts as met
only when the whole interval lies under it.
"""

from __future__ import annotations

import time

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.inpainting import per_sample_scores, pipeline_method
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap, kid, paired_difference, verdict
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
from tryon_lab.pipelines.samplers import load_lcm, use_sampler

MODELS = ("mini-sd-inpaint", "mini-sd-inpaint/lcm", "mini-sd-inpaint/fast_vae", "world-encoder")  # lcm runs with the fast VAE when there is one

SAMPLES = 512  # KID wants hundreds of crops per set; 512 keeps the slowest sampler near 10 minutes on 2 cores
REFERENCE = ("ddim", 25)
# (sampler, steps[, "base VAE"]): the last runs lcm with the base VAE instead of the fast one, to tell
# the LoRA's share of a difference from the fast VAE's
RUNS = (("ddim", 25), ("ddim", 4), ("dpm", 20), ("dpm", 4), ("lcm", 4), ("lcm", 4, "base VAE"))
BAR_RATIO = 0.15  # the bar: LCM-4 takes at most 0.15x the time of DDIM-25
BATCH = 8


def _label(run: tuple) -> str:
    return f"{run[0]}-{run[1]}" + (f" ({run[2]})" if len(run) > 2 else "")


def _take_turns(pipe, runs: list[tuple], samples: list) -> tuple[dict, dict]:
    """Every run's try-ons of ``samples`` and its wall seconds per batch, the runs alternating batch by
    batch; seeds are those of one pass over all samples (``pipeline_method``: seed = the batch's start)."""
    fast = getattr(pipe, "fast_vae", None)
    outputs = {run: [] for run in runs}
    seconds = {run: [] for run in runs}
    for turn, start in enumerate(range(0, len(samples), BATCH)):
        batch = samples[start:start + BATCH]
        for run in runs[turn % len(runs):] + runs[:turn % len(runs)]:
            pipe.fast_vae = None if len(run) > 2 else fast
            chosen = use_sampler(pipe, run[0])
            began = time.perf_counter()
            outputs[run] += pipeline_method(pipe, run[1], chosen.guidance_scale, seed=start, batch_size=BATCH)(batch)
            seconds[run].append(time.perf_counter() - began)
    pipe.fast_vae = fast
    return outputs, {run: np.array(values) for run, values in seconds.items()}


def _ratio(times: np.ndarray) -> float:
    """Total seconds of column 0 over column 1 (rows: batches)."""
    return float(times[:, 0].sum() / times[:, 1].sum())


def run() -> list[tuple]:
    """Measure and return (metric, value, note) rows."""
    folder = shipped_model(SHIPPED_INPAINT)
    pipe = load_inpaint_pipeline(folder, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    has_lcm = load_lcm(pipe, folder)
    judge = WorldJudge.load(shipped_model("world-encoder"))
    world = World(seed=0, resolution=pipe.resolution)
    samples = [world.sample(i, split="test") for i in range(SAMPLES)]
    masks = [s.item_mask for s in samples]
    real = judge.features([s.target for s in samples], masks)
    fast = getattr(pipe, "fast_vae", None)
    runs = [r for r in RUNS if (has_lcm or r[0] != "lcm") and (fast is not None or len(r) == 2)]

    outputs, batch_seconds = _take_turns(pipe, runs, samples)
    seconds = {run: float(values.sum()) for run, values in batch_seconds.items()}
    scores = {run: per_sample_scores(samples, outputs[run], judge, world) for run in runs}
    features = {run: judge.features(outputs[run], masks) for run in runs}

    note = f"{SAMPLES} test try-ons, same seeds for every sampler; judge = world encoder"
    rows: list[tuple] = []
    if not has_lcm:
        rows.append(("lcm-4", "not measured", "the shipped model has no LCM LoRA: run `tryon-lab distill` first"))
    for key in runs:
        label = _label(key)
        rows += [
            (f"{label}: all-attribute accuracy", str(bootstrap(np.mean, scores[key]["attr_acc_all"])), note),
            (f"{label}: identity accuracy", str(bootstrap(np.mean, scores[key]["identity_acc"])),
             f"top-1 among caption twins; chance {judge.chance_identity:.2f}"),
            (f"{label}: KID against the same samples' real crops", str(bootstrap(kid, real, features[key])),
             "world-encoder features (d=128); the judge section gives the real-vs-real noise floor"),
            (f"{label}: seconds per try-on", round(seconds[key] / SAMPLES, 4),
             f"x{seconds[key] / seconds[REFERENCE]:.3f} of {_label(REFERENCE)}"),
        ]
    names = ("attr_acc_all", "identity_acc")
    comparisons = [(key, REFERENCE) for key in runs if key != REFERENCE]
    comparisons += [(("lcm", 4), key) for key in runs if len(key) > 2]  # the fast VAE's own share
    for key, other in comparisons:
        pair = (_label(key), _label(other))
        for metric in names:
            difference = paired_difference(scores[key][metric], scores[other][metric])
            rows.append((f"{pair[0]} - {pair[1]}: {metric}", str(difference), verdict(difference, False, pair)))
        difference = paired_difference(features[key], features[other], kid, reference=real)
        rows.append((f"{pair[0]} - {pair[1]}: KID", str(difference), verdict(difference, True, pair)))
    if has_lcm:
        ratio = bootstrap(_ratio, np.stack([batch_seconds[("lcm", 4)], batch_seconds[REFERENCE]], axis=1))
        met = "met" if ratio.hi <= BAR_RATIO else "not met" if ratio.lo > BAR_RATIO else "undecided: the interval spans it"
        rows.append(("lcm-4 / ddim-25 wall time", str(ratio),
                     f"bar <= {BAR_RATIO}: {met}; samplers taking turns batch by batch, "
                     f"95% bootstrap interval over the {len(batch_seconds[REFERENCE])} batches"))
    codecs = [("ddim", "VAE")] + ([("lcm", "fast VAE (lcm)")] if fast is not None else [])
    for sampler, name in codecs:
        use_sampler(pipe, sampler)
        floor = vae_seconds(pipe, samples)
        rows.append((f"{name} encode + decode: seconds per try-on", round(floor / SAMPLES, 4),
                     f"x{floor / seconds[REFERENCE]:.3f} of {_label(REFERENCE)}: the masked image's encoding and the "
                     "result's decoding, which a sampler pays whatever its steps"))
    return rows


def vae_seconds(pipe, samples, batch_size: int = 8) -> float:
    """Wall seconds to encode the masked images of ``samples`` and decode as many latents with the VAE
    of ``pipe``'s current sampler, in batches of ``batch_size`` as the samplers run: the part of a
    try-on no step count shortens."""
    import torch

    start = time.perf_counter()
    for first in range(0, len(samples), batch_size):
        chunk = samples[first:first + batch_size]
        channels = pipe.encode_inpaint_channels([s.scene for s in chunk], [s.shape_mask for s in chunk], None)
        with torch.no_grad():
            pipe.decode_latents(torch.zeros_like(channels[:, 1:]))
    return time.perf_counter() - start
