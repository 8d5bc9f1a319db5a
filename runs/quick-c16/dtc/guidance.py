"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/guidance.py RUN_FOLDER STEP SPLIT N G1 [G2 ...]

Does the sampler's guidance scale hold the motif back? A mini16 film+perceptual DTC run's checkpoint at
STEP scored on the first N pairs of SPLIT ("train" or "val") at each guidance scale G (the ablation
samples at 5.0), everything else as the ablation samples (same noise, so the scales pair up). Per-pair
scores land in RUN_FOLDER/guidance-SPLIT-STEP-G.npz. An overfit run (overfit/nN-*) uses its N pairs' own latent cache.
"""
import sys
from dataclasses import replace
from pathlib import Path

from mini16 import JUDGE, own_cache, summary, trained

from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.training.dtc.ablation import score_run
from tryon_lab.training.dtc.evaluation import judge_id, save_scores

folder, step, split, n = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
settings, cache = own_cache(folder)
pipe = trained(folder, settings, step, **cache)
world, judge = World(settings.world_seed, pipe.resolution), WorldJudge.load(JUDGE)
samples = [world.sample(i, split=split) for i in range(n)]
for scale in map(float, sys.argv[5:]):
    at = replace(settings, guidance_scale=scale)
    scores = score_run(pipe, at, samples, judge, world)
    save_scores(folder / f"guidance-{split}-{step}-{scale:g}.npz", scores, {**at.scoring(split, judge_id(JUDGE)), "train_steps": step, "pairs": n})
    print(f"step {step}, {n} {split} pairs, guidance {scale:g}: {summary(scores)}", flush=True)
