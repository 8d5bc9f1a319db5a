"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/train_identity.py [STEP=2100] [N=128]

Does the mini16 film+perceptual DTC copy the motif of the items it was trained on? The dtc-curve
run's checkpoint at STEP (runs/quick-c16/dtc/curve/film+perceptual/seed-0), scored as the curve scores
val (same sampler, noise, guidance) on the first N *train* pairs, whose items the cache trained on.
High identity here with chance on val = it memorises items (recognises them, does not copy the hint);
chance here too = it does not learn the motif at all in this recipe.
"""
import sys

from mini16 import RUNS, VARIANT, ablation_settings, summary, train_and_score

from tryon_lab.training.dtc.curve import curve_folder

step = int(sys.argv[1]) if len(sys.argv) > 1 else 2100
n = int(sys.argv[2]) if len(sys.argv) > 2 else 128
scores = train_and_score(curve_folder(RUNS / "dtc", VARIANT, 0), ablation_settings(), step,
                         lambda world: [world.sample(i, split="train") for i in range(n)])
print(f"step {step}, {n} train pairs: {summary(scores)}")
