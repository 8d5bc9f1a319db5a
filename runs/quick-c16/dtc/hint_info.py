"""How much of the motif the DTC hint carries: the judge's identity (top-1 among caption twins) of the
reference after the collage's resize, when pasted into the mask's largest inscribed rectangle (the paper)
or into the mask's bounding box; 256 val pairs of the ablation, their training-style shape masks."""
import numpy as np
from PIL import Image

from tryon_lab.data.masks import bounding_box, largest_rectangle
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap

world, judge = World(0, 128), WorldJudge.load("data/models/world-encoder")
samples = [world.sample(i, split="val") for i in range(256)]
whole = np.ones((128, 128), bool)
for mask_name in ("shape_mask", "box_mask"):
    for name, place in (("largest inscribed rectangle", largest_rectangle), ("bounding box", bounding_box)):
        images, sizes = [], []
        for s in samples:
            top, left, bottom, right = place(getattr(s, mask_name))
            sizes.append((right - left) * (bottom - top))
            small = s.reference.convert("RGB").resize((right - left, bottom - top), Image.Resampling.LANCZOS)
            images.append(small.resize((128, 128), Image.Resampling.BICUBIC))
        hits = judge.identity_hits(images, [whole] * len(images), [s.item for s in samples], world).astype(float)
        print(f"{mask_name}, {name}: median area {np.median(sizes):.0f} px; identity {bootstrap(np.mean, hits)}", flush=True)
hits = judge.identity_hits([s.reference for s in samples], [whole] * 256, [s.item for s in samples], world)
print("the reference itself:", bootstrap(np.mean, hits.astype(float)))
