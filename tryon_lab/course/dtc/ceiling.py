"""What a model's VAE lets through (notebook 03): the judge's identity accuracy on ground-truth
renderings as drawn and after the VAE encodes and decodes them. Every latent model paints through
its decoder, so the round trip's score is where its identity accuracy is expected to stop."""

from __future__ import annotations

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.baselines import vae_round_trip
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.training.dtc.curve import BARS


def decoder_ceiling(vae, judge, samples: int, split: str = "val", seed: int = 0) -> dict:
    """Identity accuracy (95% intervals) of ``samples`` ``split`` renderings at the VAE's size: as drawn
    (``truth``) and after ``vae``'s round trip (``round_trip``), with ``chance``."""
    world = World(seed=seed, resolution=vae.config.sample_size)
    truth = [world.sample(i, split=split) for i in range(samples)]
    masks, items = [s.item_mask for s in truth], [s.item for s in truth]
    drawn = [s.target for s in truth]

    def accuracy(images):
        return bootstrap(np.mean, judge.identity_hits(images, masks, items, world).astype(float))

    return {"truth": accuracy(drawn), "round_trip": accuracy(vae_round_trip(vae, drawn)),
            "chance": judge.chance_identity, "samples": samples, "split": split}


def ceiling_note(ceiling: dict) -> str:
    """A Markdown sentence on ``decoder_ceiling``'s result, against the course's identity bar."""
    bar, trip = BARS["identity_acc"], ceiling["round_trip"]
    verdict = ("so this decoder, not the U-Net's training, keeps identity under the bar" if trip.hi < bar else
               "so the decoder leaves room to reach the bar")
    return (f"On {ceiling['samples']} {ceiling['split']} renderings the judge finds the right motif in "
            f"**{ceiling['truth']}** of the pictures as drawn, and in **{trip}** after this model's VAE has "
            f"encoded and decoded them (chance {ceiling['chance']:.2f}, the bar {bar:.2f}): {verdict}.")
