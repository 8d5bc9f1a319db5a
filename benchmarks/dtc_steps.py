"""Issue-16 protocol: how many sampling steps the DTC ablation's metrics need. The shipped DTC makes
try-ons of the ablation's val pairs (a recipe choice, so val) at several step counts with the same
noise; each count is compared with the most steps by paired bootstrap, and three counts are read
from the verdicts: the fewest from which up KID and FID are not distinguishable from the most steps;
the fewest from which up no compared metric is worse (the rule the ablation's `sample_steps`
follows: its table reports every metric from the same try-ons, and a count that scores better on
one is not one to avoid); the fewest from which up no compared metric differs at all.
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
    COMPARED,
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
    worse: dict[int, set[str]] = {}  # step count -> the metrics on which the reference beats it
    for steps in STEP_COUNTS[:-1]:
        compared = compare_variants((f"{steps} steps", scores[steps]), (f"{reference} steps", scores[reference]),
                                    real, settings.bootstrap_resamples)
        rows += [(f"{steps} - {reference} steps: {row['metric']}",
                  f"{row['difference']:.4g} [{row['lo']:.4g}, {row['hi']:.4g}]", row["verdict"]) for row in compared]
        differs[steps] = {row["metric"] for row in compared if row["verdict"] != "not distinguishable"}
        worse[steps] = {row["metric"] for row in compared if row["verdict"] == f"{reference} steps beats {steps} steps"}
    every = set(COMPARED)
    for title, verdicts, metrics in (("keep the set metrics (KID, FID) not distinguishable", differs, set(SET_METRICS)),
                                     ("leave no compared metric worse (the ablation's rule)", worse, every),
                                     ("keep every compared metric not distinguishable", differs, every)):
        rows.append((f"fewest steps that {title}", fewest_stable(verdicts, metrics, reference),
                     f"it and every count above it, against {reference} steps on the paired differences above; "
                     f"the ablation samples {settings.sample_steps}"))
    return rows


def fewest_stable(flagged: dict[int, set[str]], metrics: set[str], reference: int) -> int:
    """The fewest step count from which up no count has one of ``metrics`` flagged (``flagged``: each
    count's metrics that differ from, or are worse than, ``reference``); ``reference`` when every count has."""
    fewest = reference
    for steps in sorted(flagged, reverse=True):
        if flagged[steps] & metrics:
            break
        fewest = steps
    return fewest
