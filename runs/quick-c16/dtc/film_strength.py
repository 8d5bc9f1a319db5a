"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/film_strength.py RUN_FOLDER STEP

How strongly does a mini16 film+perceptual DTC run's hint act on the main U-Net? At the run's newest
checkpoint STEP (loading resumes from the newest one, so an older STEP is refused), the FiLM modulation
of the first 16 val pairs (shape masks; ``DTCPipeline.hint_modulation``), per skip level: the mean |gamma - 1| + |beta| over the cells the mask covers (``course.dtc.film``'s strength; 0
at initialisation, where FiLM is the identity) and its ratio to the cells outside the mask (above 1: the hint
changes the skip more where the item goes). Printed as a table.
"""
import sys
from pathlib import Path

import numpy as np
from mini16 import own_cache, trained

from tryon_lab.course.dtc.anatomy import skip_names
from tryon_lab.course.dtc.film import level_mask
from tryon_lab.data.world import World
from tryon_lab.tables import format_table

PAIRS = 16
folder, step = Path(sys.argv[1]), int(sys.argv[2])
newest = max((int(p.name.removeprefix("step-")) for p in folder.glob("step-*")), default=None)
if newest != step:
    sys.exit(f"{folder}'s newest checkpoint is step {newest}: the loader resumes from it, so measure that one")
settings, cache = own_cache(folder)
pipe = trained(folder, settings, step, **cache)
world = World(settings.world_seed, pipe.resolution)
samples = [world.sample(i, split="val") for i in range(PAIRS)]
modulation = pipe.hint_modulation([s.scene for s in samples], [s.shape_mask for s in samples],
                                  [s.reference for s in samples])
rows = []
for name, shift, scale in zip(skip_names(pipe.unet), modulation.shifts, modulation.scales):
    strength = ((scale.float() - 1).abs() + shift.float().abs()).mean(1).numpy()  # (B, h, w)
    inside, outside = [], []
    for sample, cells in zip(samples, strength):
        covered = level_mask(sample.shape_mask, cells.shape)
        inside.append(cells[covered].mean())
        outside.append(cells[~covered].mean() if (~covered).any() else np.nan)
    rows.append([name, f"{np.mean(inside):.4f}", f"{np.nanmean(inside) / np.nanmean(outside):.2f}"])
print(f"{folder} at step {step}, {PAIRS} val pairs:")
print(format_table(rows, ["level", "mean |gamma-1|+|beta| in mask", "in / out of mask"]))
