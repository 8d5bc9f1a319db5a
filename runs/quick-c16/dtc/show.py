"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/show.py RUN_FOLDER STEP SPLIT [N=8]

A picture of what a mini16 film+perceptual DTC run paints: for the first N pairs of SPLIT ("train" or
"val"), one row each: the scene, the hint collage it was given (in the run's layout), its try-on (sampled as the ablation
samples), the mini16 text base's try-on from the pair's caption (the model the DTC starts from, same
sampler steps and noise seeds, its own guidance) and the ground truth. Written to
RUN_FOLDER/show-SPLIT-STEP.png. An overfit run (overfit/nN-*) uses its N pairs' own latent cache.
"""
import sys
from pathlib import Path

from mini16 import RUNS, own_cache, trained
from PIL import Image

from tryon_lab.data.masks import make_collage
from tryon_lab.data.world import World
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.training.dtc.evaluation import dtc_method

folder, step, split = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 8
settings, cache = own_cache(folder)
pipe = trained(folder, settings, step, **cache)
world = World(settings.world_seed, pipe.resolution)
samples = [world.sample(i, split=split) for i in range(n)]
outputs = dtc_method(pipe, settings.sample_steps, settings.guidance_scale, settings.world_seed, settings.eval_batch_size)(samples)
text = load_inpaint_pipeline(RUNS / "pipeline", device="cpu")
text.set_progress_bar_config(disable=True)
batch = settings.eval_batch_size
worded = [image for start in range(0, n, batch) for image in
          text(*map(list, zip(*[(s.scene, s.shape_mask, s.caption) for s in samples[start:start + batch]])),
               num_inference_steps=settings.sample_steps, seed=settings.world_seed + start).images]
size = pipe.resolution
sheet = Image.new("RGB", (5 * size, n * size), "white")
for row, (sample, output, words) in enumerate(zip(samples, outputs, worded)):
    hint = make_collage(sample.reference, sample.shape_mask, layout=pipe.config.hint_layout)
    for col, image in enumerate((sample.scene, hint, output, words, sample.target)):
        sheet.paste(image.convert("RGB").resize((size, size)), (col * size, row * size))
sheet.save(folder / f"show-{split}-{step}.png")
print(f"wrote {folder / f'show-{split}-{step}.png'}: scene | hint | try-on | text base's try-on | ground truth")
