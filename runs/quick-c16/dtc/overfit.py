"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/overfit.py [STEPS=300] [N=64]

Can the mini16 film+perceptual DTC learn the motif at all? The profile's recipe trained on only the
first N train pairs (its own latent cache, runs/quick-c16/dtc/overfit/dtc-cache, so the ablation's
3000-pair cache stays as it is) to STEPS (resumable: rerun with more), then scored on those same N
pairs as the ablation scores val (same sampler, noise, guidance). Each pair is seen STEPS x 16 (the batch) / N
times (75 at 300 steps). Identity well above chance = the architecture carries the motif and the full
recipe lacks signal or steps; chance even here = it cannot carry it at this scale, whatever the recipe.
"""
import sys
from dataclasses import replace

from mini16 import RUNS, ablation_settings, summary, train_and_score

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
plan = ablation_settings()
settings = replace(plan, train=replace(plan.train, dataset_size=n))
folder = RUNS / "dtc" / "overfit"
scores = train_and_score(folder / f"n{n}", settings, steps, lambda world: [world.sample(i, split="train") for i in range(n)],
                         cache_dir=folder / f"n{n}" / "dtc-cache")
print(f"step {steps}, {n} train pairs (all it trained on, each seen {steps * settings.train.batch_size / n:.0f} times): "
      f"{summary(scores)}")
