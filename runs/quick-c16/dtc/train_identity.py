"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/train_identity.py [STEP=2100] [N=128]

Does the mini16 film+perceptual DTC copy the motif of the items it was trained on? The dtc-curve
run's checkpoint at STEP (runs/quick-c16/dtc/curve/film+perceptual/seed-0), scored as the curve scores
val (same sampler, noise, guidance) on the first N *train* pairs, whose items the cache trained on.
High identity here with chance on val = it memorises items (recognises them, does not copy the hint);
chance here too = it does not learn the motif at all in this recipe.
"""
import sys
from pathlib import Path

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.models.dtc import PerceptualNet
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc.ablation import CACHE_FOLDER, score_run, train_variant
from tryon_lab.training.dtc.curve import curve_folder
from tryon_lab.training.dtc_recipe import recipe_plan

RUNS, JUDGE, VARIANT = Path("runs/quick-c16"), "data/models/world-encoder", "film+perceptual"
step = int(sys.argv[1]) if len(sys.argv) > 1 else 2100
n = int(sys.argv[2]) if len(sys.argv) > 2 else 128
settings = recipe_plan(load_profile("quick"), variants=[VARIANT], judge_dir=JUDGE).ablation
base = load_inpaint_pipeline(RUNS / "pipeline", device="cpu")
perceptual = PerceptualNet.from_pretrained(RUNS / "dtc" / "perceptual-net")
folder = curve_folder(RUNS / "dtc", VARIANT, 0)
pipe, _ = train_variant(base, folder, settings, VARIANT, 0, perceptual, RUNS / "dtc" / "ablation" / CACHE_FOLDER,
                        steps=step)
pipe.set_progress_bar_config(disable=True)
world = World(settings.world_seed, base.resolution)
samples = [world.sample(i, split="train") for i in range(n)]
scores = score_run(pipe, settings, samples, WorldJudge.load(JUDGE), world)
print(f"step {step}, {n} train pairs: " + "; ".join(
    f"{metric} {bootstrap(np.mean, scores[metric])}" for metric in ("identity_acc", "attr_acc_all", "ref_similarity")))
