"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/show.py RUN_FOLDER STEP SPLIT [N=8]

A picture of what a mini16 film+perceptual DTC run paints: for the first N pairs of SPLIT ("train" or
"val"), one row each: the scene, the hint collage it was given, its try-on (sampled as the ablation
samples) and the ground truth. Written to RUN_FOLDER/show-SPLIT-STEP.png. RUN_FOLDER's own latent cache
(RUN_FOLDER/dtc-cache) is used when it has one (overfit runs), with its pair count as dataset_size.
"""
import sys
from pathlib import Path

from mini16 import own_cache, trained
from PIL import Image

from tryon_lab.data.masks import make_collage
from tryon_lab.data.world import World
from tryon_lab.training.dtc.evaluation import dtc_method

folder, step, split = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 8
settings, cache = own_cache(folder)
pipe = trained(folder, settings, step, **cache)
world = World(settings.world_seed, pipe.resolution)
samples = [world.sample(i, split=split) for i in range(n)]
outputs = dtc_method(pipe, settings.sample_steps, settings.guidance_scale, settings.world_seed, settings.eval_batch_size)(samples)
size = pipe.resolution
sheet = Image.new("RGB", (4 * size, n * size), "white")
for row, (sample, output) in enumerate(zip(samples, outputs)):
    hint = make_collage(sample.reference, sample.shape_mask)
    for col, image in enumerate((sample.scene, hint, output, sample.target)):
        sheet.paste(image.convert("RGB").resize((size, size)), (col * size, row * size))
sheet.save(folder / f"show-{split}-{step}.png")
print(f"wrote {folder / f'show-{split}-{step}.png'}: scene | hint | try-on | ground truth")
