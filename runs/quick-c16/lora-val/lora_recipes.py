"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/lora-val/lora_recipes.py BASE RECIPE_JSON [RECIPE_JSON ...]

LoRA DreamBooth recipes on the val protocol of benchmarks/dreambooth.py (6 val garments, 8 val people
x shape/box/brush masks, caption class words, 400 steps), on a candidate base: each recipe's
identity accuracy minus the base given the full caption, paired, garments then cases. Only LoRA
arms train (the full arm of this base is in dreambooth-val-6garments-caption-steps400-unet12000.md).
A RECIPE_JSON is a dict of DreamBoothSettings fields over the profile's, e.g. '{"lora_rank": 32}'."""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.dreambooth import EVAL_PEOPLE, GUIDANCE, STEPS, arm_settings, class_word, garments
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap, paired_difference
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dreambooth import train_dreambooth, world_instances
from tryon_lab.training.dreambooth.evaluate import garment_scores, heldout_cases

base_dir = Path(sys.argv[1])
recipes = [json.loads(text) for text in sys.argv[2:]]
profile = load_profile("quick")
judge = WorldJudge.load("data/models/world-encoder")
base = load_inpaint_pipeline(base_dir, device="cpu")
base.set_progress_bar_config(disable=True)
world = World(0, base.resolution)
scoring = {"judge": judge, "steps": STEPS, "guidance_scale": GUIDANCE, "world": world}
items = garments(world, "val")
cases = [heldout_cases(world, item, EVAL_PEOPLE, split="val") for item in items]
groups = np.concatenate([np.full(len(c), i) for i, c in enumerate(cases)])
reference = np.concatenate([garment_scores(base, c, None, **scoring).per_sample["identity_acc"] for c in cases])
print("base, full caption: identity", bootstrap(np.mean, reference, groups=groups), flush=True)
with tempfile.TemporaryDirectory() as tmp:
    for number, recipe in enumerate(recipes):
        settings = arm_settings(profile, {"steps": 400, **recipe})[1]
        start, identity, attributes = time.time(), [], []
        for index, (item, item_cases) in enumerate(zip(items, cases)):
            instances = world_instances(world, item, settings.n_people, token=f"sks{index or ''}",
                                        class_word=class_word(item, "caption"), mask_kinds=settings.mask_kinds,
                                        n_scenes=settings.num_class_images)
            lora = train_dreambooth(base_dir, instances, Path(tmp) / f"lora-{number}-{index}", settings,
                                    class_dir=Path(tmp) / f"class-{index}")
            scored = garment_scores(lora.pipe, item_cases, instances.instance_prompt, **scoring).per_sample
            identity.append(scored["identity_acc"])
            attributes.append(scored["attr_acc_all"])
            print(f"  {recipe} {item.item_id}: identity {scored['identity_acc'].mean():.3f}", flush=True)
        identity, attributes = np.concatenate(identity), np.concatenate(attributes)
        print(f"{recipe} (rank {settings.lora_rank}, lr {settings.lora_learning_rate}, {settings.steps} steps): "
              f"identity {bootstrap(np.mean, identity, groups=groups)}; all-attribute "
              f"{bootstrap(np.mean, attributes, groups=groups)}; minus base, full caption "
              f"{paired_difference(identity, reference, groups=groups)}; {time.time() - start:.0f} s", flush=True)
