"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/vae_ceiling.py [N=256]

How much identity can a DTC try-on on the mini16 base show at best? The first N val pairs of the ablation
(the pairs every pilot is scored on), their ground-truth targets scored as a try-on is scored (the judge's
identity among the 4 caption twins and all-attribute accuracy on the item crop), then the same targets after a
round trip through each base's VAE (``metrics.baselines.vae_round_trip``): a model that paints the exact latent
of the truth shows no more than that. Paired difference round trip minus truth, 95% bootstrap intervals.
"""
import sys

import numpy as np
from diffusers import AutoencoderKL
from mini16 import JUDGE, RUNS, ablation_settings

from tryon_lab.data.world import World
from tryon_lab.metrics.baselines import vae_round_trip
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap, paired_difference
from tryon_lab.training.dtc.ablation import split_samples

n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
settings = ablation_settings()
world, judge = World(settings.world_seed, 128), WorldJudge.load(JUDGE)
samples = split_samples(world, settings, "val")[:n]
masks, items = [s.item_mask for s in samples], [s.item for s in samples]


def hits(images) -> tuple[np.ndarray, np.ndarray]:
    """Identity and all-attribute hits of ``images`` (one per sample) as the ablation scores try-ons."""
    return (judge.identity_hits(images, masks, items, world).astype(float),
            judge.attribute_hits(images, masks, items)["all"].astype(float))


truth = hits([s.target for s in samples])
print(f"{n} val pairs, ground truth: identity {bootstrap(np.mean, truth[0])}, all-attribute {bootstrap(np.mean, truth[1])}")
for name, folder in (("mini16 base", RUNS / "pipeline"), ("shipped base", "data/models/mini-sd-inpaint")):
    vae = AutoencoderKL.from_pretrained(f"{folder}/vae").eval()
    identity, attributes = hits(vae_round_trip(vae, [s.target for s in samples]))
    print(f"{name} VAE round trip: identity {bootstrap(np.mean, identity)} "
          f"(minus truth {paired_difference(identity, truth[0])}), all-attribute {bootstrap(np.mean, attributes)}",
          flush=True)
