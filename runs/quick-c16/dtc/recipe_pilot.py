"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/recipe_pilot.py NAME RECIPE_JSON [STEPS]

One DTC run of the quick ablation's film+perceptual variant on the mini16 base with recipe changes
(a JSON dict of DTCSettings fields over the profile's [dtc.train], e.g. '{"unet": "full", "learning_rate":
1e-4}'), trained to STEPS (default 1400) in runs/quick-c16/dtc/pilot/NAME (resumable: rerun the same
command; a folder belongs to one recipe), then scored on the ablation's 256 val pairs as the ablation and
dtc-curve score (same noise, steps, guidance). Per-pair scores land in scores-val-STEPS.npz, so two pilots pair
up; the curve of the profile's recipe (runs/quick-c16/dtc/curve/film+perceptual/seed-0/curve.csv) is the
reference: identity 0.254 [0.209, 0.308], all-attribute 0.328 [0.273, 0.380] at 1400 steps.

One key is not a DTCSettings field: "hint_adapter": "vae" replaces the hint encoder's shallow CNN adapter
(trained from scratch) with a frozen copy of the base's VAE encoder (latent mean x scaling factor, minus the
empty hint's, so an empty hint still adds nothing): the hint reaches the hint encoder in the very latent code
the U-Net denoises, whose round trip keeps the motif (train_identity.py: the scratch adapter's recipe does not
learn the motif even on training items). A pilot only: its pipeline is scored, not saved.

"hint_layout": "box" (a DTCSettings field: ``masks.make_collage``) gives the run a latent cache of its own in its
folder, as the ablation's shared cache holds the paper's layout. Until commit 971082e this script patched in
its own copy of the layout, which differs from the package's in 24 of the 3000 training hints and 2 of the
256 val hints (photos whose corners show no common backdrop: the package keeps them whole). pilot/boxhint was
trained to 700 steps and scored there with that copy, then trained on from 700 on the package's hints (its
cache rebuilt) and scored with them.
"""
import copy
import json
import sys
import time

import torch
from mini16 import DTC_FIELDS, JUDGE, RUNS, own_cache, record_recipe, summary, train_and_score

from tryon_lab.models.dtc import EMPTY_HINT
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.training.dtc.ablation import split_samples
from tryon_lab.training.dtc.evaluation import judge_id, save_scores


class VAEHintAdapter(torch.nn.Module):
    """The hint (B, 3, H, W) in [-1, 1] -> its VAE latent x scaling factor (as the DTC cache encodes),
    minus the empty hint's (encoded once per hint size)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = copy.deepcopy(vae).requires_grad_(False)  # a copy: no tensor twice in a checkpoint
        self.empty: dict[tuple, torch.Tensor] = {}

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixels).latent_dist.mode() * self.vae.config.scaling_factor

    @torch.no_grad()
    def forward(self, hint: torch.Tensor) -> torch.Tensor:
        key = (tuple(hint.shape[1:]), hint.dtype, hint.device)
        if key not in self.empty:
            self.empty[key] = self.encode(torch.full_like(hint[:1], EMPTY_HINT))
        return self.encode(hint) - self.empty[key]


def use_vae_hint_adapter() -> None:
    """Every DTCPipeline.from_base from now on gets a VAEHintAdapter in place of its CNN adapter."""
    build = DTCPipeline.from_base.__func__

    def from_base(cls, base, *args, **kwargs):
        pipe = build(cls, base, *args, **kwargs)
        if pipe.hint_encoder is not None:
            pipe.hint_encoder.adapter = VAEHintAdapter(base.vae)
        return pipe
    DTCPipeline.from_base = classmethod(from_base)


name, recipe = sys.argv[1], json.loads(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1400
if unknown := set(recipe) - DTC_FIELDS - {"hint_adapter"}:
    sys.exit(f"not DTCSettings fields (nor hint_adapter): {sorted(unknown)}")
if recipe.get("hint_adapter", "cnn") == "vae":
    use_vae_hint_adapter()
folder = RUNS / "dtc" / "pilot" / name
record_recipe(folder, recipe)
settings, cache = own_cache(folder, recipe)

began = time.perf_counter()
scores = train_and_score(folder, settings, steps, lambda world: split_samples(world, settings, "val"), **cache)
save_scores(folder / f"scores-val-{steps}.npz", scores, {**settings.scoring("val", judge_id(JUDGE)), "train_steps": steps})
print(f"{name} {recipe}, {steps} steps ({time.perf_counter() - began:.0f} s): {summary(scores)}")
