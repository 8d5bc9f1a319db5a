"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/recipe_pilot.py NAME RECIPE_JSON [STEPS]

One DTC run of the quick ablation's film+perceptual variant on the mini16 base with recipe changes
(a JSON dict of DTCSettings fields over the profile's [dtc.train], e.g. '{"unet": "full", "learning_rate":
1e-4}'), trained to STEPS (default 1400) in runs/quick-c16/dtc/pilot/NAME (resumable: rerun the same
command; a folder belongs to one recipe), then scored on the ablation's 256 val pairs as the ablation and
dtc-curve score (same noise, steps, guidance). Per-pair scores land in scores-val.npz, so two pilots pair
up; the curve of the profile's recipe (runs/quick-c16/dtc/curve/film+perceptual/seed-0/curve.csv) is the
reference: identity 0.254 [0.209, 0.308], all-attribute 0.328 [0.273, 0.380] at 1400 steps.
"""
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.models.dtc import PerceptualNet
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc.ablation import CACHE_FOLDER, score_run, split_samples, train_variant
from tryon_lab.training.dtc.evaluation import judge_id, save_scores
from tryon_lab.training.dtc_recipe import recipe_plan

RUNS, JUDGE, VARIANT = Path("runs/quick-c16"), "data/models/world-encoder", "film+perceptual"

name, recipe = sys.argv[1], json.loads(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1400
plan = recipe_plan(load_profile("quick"), variants=[VARIANT], judge_dir=JUDGE)
settings = replace(plan.ablation, train=replace(plan.ablation.train, **recipe))
folder = RUNS / "dtc" / "pilot" / name
folder.mkdir(parents=True, exist_ok=True)
recorded = folder / "recipe.json"
if recorded.is_file() and json.loads(recorded.read_text()) != recipe:
    sys.exit(f"{folder} was trained with {recorded.read_text()}: give this recipe another NAME")
recorded.write_text(json.dumps(recipe, sort_keys=True))

base = load_inpaint_pipeline(RUNS / "pipeline", device="cpu")
perceptual = PerceptualNet.from_pretrained(RUNS / "dtc" / "perceptual-net")
began = time.perf_counter()
pipe, _ = train_variant(base, folder, settings, VARIANT, 0, perceptual, RUNS / "dtc" / "ablation" / CACHE_FOLDER,
                      steps=steps)
pipe.set_progress_bar_config(disable=True)
world = World(settings.world_seed, base.resolution)
scores = score_run(pipe, settings, split_samples(world, settings, "val"), WorldJudge.load(JUDGE), world)
save_scores(folder / "scores-val.npz", scores, {**settings.scoring("val", judge_id(JUDGE)), "train_steps": steps})
print(f"{name} {recipe}, {steps} steps ({time.perf_counter() - began:.0f} s): " + "; ".join(
    f"{metric} {bootstrap(np.mean, scores[metric])}" for metric in ("identity_acc", "attr_acc_all", "ref_similarity")))
