"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/overfit.py [STEPS=300] [N=64] [NAME RECIPE_JSON]

Can the mini16 film+perceptual DTC learn the motif at all? The profile's recipe trained on only the
first N train pairs (its own latent cache, runs/quick-c16/dtc/overfit/nN/dtc-cache, shared by every
recipe on those N pairs with the paper's hint layout, dtc-cache-box for "hint_layout": "box", so the
ablation's 3000-pair cache stays as it is) to STEPS (resumable: rerun with more), then scored on those same N
pairs as the ablation scores val (same sampler, noise, guidance). Each pair is seen STEPS x 16 (the batch) / N
times (75 at 300 steps). Identity well above chance = the architecture carries the motif and the full
recipe lacks signal or steps; chance even here = it cannot carry it at this scale, whatever the recipe.
"""
import json
import sys

from mini16 import JUDGE, OVERFIT, own_cache, record_recipe, summary, train_and_score

from tryon_lab.training.dtc.evaluation import judge_id, save_scores

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
n = int(sys.argv[2]) if len(sys.argv) > 2 else 64
name, recipe = (f"n{n}-{sys.argv[3]}", json.loads(sys.argv[4])) if len(sys.argv) > 4 else (f"n{n}", {})
folder = OVERFIT / name
record_recipe(folder, recipe)
settings, cache = own_cache(folder, recipe)
scores = train_and_score(folder, settings, steps, lambda world: [world.sample(i, split="train") for i in range(n)], **cache)
save_scores(folder / f"scores-train-{steps}.npz", scores,
            {**settings.scoring("train", judge_id(JUDGE)), "train_steps": steps, "pairs": n})
print(f"step {steps}, {n} train pairs (all it trained on, each seen {steps * settings.train.batch_size / n:.0f} times), "
      f"recipe {recipe}: {summary(scores)}")
