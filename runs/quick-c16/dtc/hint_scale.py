"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/hint_scale.py [N=256]

How large does the paper's hint layout show an item, next to the target? For the first N val pairs (shape
masks, as the ablation scores them): the item's extent in the hint (its catalog shot's content box,
``masks.content_box``, scaled as ``make_collage`` stretches the whole shot into the mask's largest rectangle)
over its extent on the target (the mask's bounding box), per axis, and their geometric mean. The box layout
stretches the content box over the mask's bounding box, so its ratio is 1 by construction.
"""
import sys

import numpy as np

from tryon_lab.data.masks import bounding_box, content_box, largest_rectangle
from tryon_lab.data.world import World

n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
world = World(0, 128)  # the quick ablation's world seed and the mini16 resolution
ratios = []
for i in range(n):
    sample = world.sample(i, split="val")
    mask = np.asarray(sample.shape_mask, dtype=bool)
    top, left, bottom, right = bounding_box(mask)
    r_top, r_left, r_bottom, r_right = largest_rectangle(mask)
    c_top, c_left, c_bottom, c_right = content_box(sample.reference)
    width, height = sample.reference.size
    rows = (c_bottom - c_top) / height * (r_bottom - r_top) / (bottom - top)
    cols = (c_right - c_left) / width * (r_right - r_left) / (right - left)
    ratios.append(np.sqrt(rows * cols))
q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
print(f"paper's layout, {n} val pairs: the item in the hint at a median {q50:.2f} (quartiles {q25:.2f} to {q75:.2f}) "
      f"of its linear size on the target")
