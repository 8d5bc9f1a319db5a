"""Issue-16 protocol: how many sampling steps the DTC ablation's metrics need. The shipped DTC makes
try-ons of the ablation's val pairs (a recipe choice, so val) at several step counts with the same
noise; each count is compared with the most steps by paired bootstrap. The issue asks for KID and
FID "sampled with the fewest steps that keep the metric stable": the fewest count from which up no
paired KID or FID difference is distinguishable from the most steps. The stricter count, for every
compared metric, is reported beside it.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.loading import load_dtc_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc.ablation import score_run, split_samples
from tryon_lab.training.dtc.evaluation import (
    METRICS,
    SET_METRICS,
    compare_variants,
    format_score,
    real_features,
    summarize_variant,
)
from tryon_lab.training.dtc_recipe import recipe_plan

MODELS = ("mini-sd-inpaint", "dtc", "world-encoder")
STEP_COUNTS = (10, 15, 25, 50)  # the last is the reference
PROFILE = "quick"


@torch.no_grad()
def run() -> list[tuple]:
    """Measure and return (metric, value, note) rows."""
    judge_dir = shipped_model("world-encoder")
    settings = recipe_plan(load_profile(PROFILE), judge_dir=judge_dir).ablation
    pipe = load_dtc_pipeline(device="cpu")
    pipe.set_progress_bar_config(disable=True)
    judge, world = WorldJudge.load(judge_dir), World(settings.world_seed, pipe.resolution)
    samples = split_samples(world, settings, "val")
    real = real_features(samples, judge)
    scores, seconds = {}, {}
    for steps in STEP_COUNTS:
        began = time.perf_counter()
        scores[steps] = [score_run(pipe, replace(settings, sample_steps=steps), samples, judge, world)]
        seconds[steps] = time.perf_counter() - began
    note = (f"shipped DTC on the {PROFILE} ablation's {len(samples)} val pairs, guidance {settings.guidance_scale:g}, "
            "the same noise at every step count; 95% bootstrap interval")
    rows: list[tuple] = []
    for steps in STEP_COUNTS:
        summary = summarize_variant(scores[steps], real, settings.bootstrap_resamples)
        rows += [(f"{steps} steps: {METRICS[m][0]}", format_score(summary, m), note) for m in METRICS if m in summary]
        rows.append((f"{steps} steps: wall seconds for all pairs", round(seconds[steps], 1), "2 threads"))
    reference = STEP_COUNTS[-1]
    differs: dict[int, set[str]] = {}  # step count -> the metrics distinguishable from the reference
    for steps in STEP_COUNTS[:-1]:
        compared = compare_variants((f"{steps} steps", scores[steps]), (f"{reference} steps", scores[reference]),
                                    real, settings.bootstrap_resamples)
        rows += [(f"{steps} - {reference} steps: {row['metric']}",
                  f"{row['difference']:.4g} [{row['lo']:.4g}, {row['hi']:.4g}]", row["verdict"]) for row in compared]
        differs[steps] = {row["metric"] for row in compared if row["verdict"] != "not distinguishable"}
    for what, metrics in (("the set metrics (KID, FID)", set(SET_METRICS)), ("every compared metric", set(METRICS))):
        rows.append((f"fewest steps that keep {what} stable", fewest_stable(differs, metrics, reference),
                     f"it and every count above it not distinguishable from {reference} steps on those paired "
                     f"differences above; the ablation samples {settings.sample_steps}"))
    return rows


def fewest_stable(differs: dict[int, set[str]], metrics: set[str], reference: int) -> int:
    """The fewest step count from which up every count is not distinguishable from ``reference`` on
    ``metrics`` (``differs``: each count's distinguishable metrics); ``reference`` when none is."""
    fewest = reference
    for steps in sorted(differs, reverse=True):
        if differs[steps] & metrics:
            break
        fewest = steps
    return fewest
