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

Nor is "hint_layout": "box": the hint collage holds the reference's content (cropped to what differs from its
corners' colour: a catalog shot's margins go) stretched over the mask's bounding box, instead of the whole
reference in the mask's largest rectangle (the paper's layout). At 128 px the paper's layout shrinks a worn
garment's catalog shot into its torso rectangle, so a motif of about 12 px on the target is about 4 px in the
hint; the box layout puts it about where and about as large as the target shows it. The run builds its own
latent cache (the hints are cached) in its folder, in training and in scoring alike.
"""
import copy
import json
import sys
import time

import numpy as np
import torch
from mini16 import JUDGE, RUNS, ablation_settings, summary, train_and_score, with_recipe
from PIL import Image

import tryon_lab.data.datasets
import tryon_lab.pipelines.dtc
from tryon_lab.data.masks import bounding_box
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


def content_box(image: Image.Image, tolerance: int = 24) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the pixels differing by more than ``tolerance`` in some channel from the
    median of the image's four corners (its backdrop); the whole image when none does."""
    pixels = np.asarray(image.convert("RGB")).astype(int)
    backdrop = np.median(pixels[[0, 0, -1, -1], [0, -1, 0, -1]], axis=0)
    content = np.abs(pixels - backdrop).max(-1) > tolerance
    return bounding_box(content) if content.any() else (0, 0, *pixels.shape[:2])


def box_collage(reference: Image.Image, mask: np.ndarray, background=(0, 0, 0)) -> Image.Image:
    """The hint with the box layout: ``reference``'s content box stretched over ``mask``'s bounding box, on black."""
    mask = np.asarray(mask, dtype=bool)
    top, left, bottom, right = bounding_box(mask)
    t, l, b, r = content_box(reference)
    pasted = reference.convert("RGB").crop((l, t, r, b)).resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    collage = Image.new("RGB", (mask.shape[1], mask.shape[0]), background)
    collage.paste(pasted, (left, top))
    return collage


def use_box_layout() -> None:
    """Training pairs and the pipeline's hints from now on use ``box_collage``."""
    tryon_lab.data.datasets.make_collage = box_collage
    tryon_lab.pipelines.dtc.make_collage = box_collage


name, recipe = sys.argv[1], json.loads(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1400
fields = dict(recipe)
if fields.pop("hint_adapter", "cnn") == "vae":
    use_vae_hint_adapter()
folder = RUNS / "dtc" / "pilot" / name
cache = {}
if fields.pop("hint_layout", "rectangle") == "box":
    use_box_layout()
    cache = {"cache_dir": folder / "dtc-cache"}
settings = with_recipe(ablation_settings(), folder, recipe, fields)

began = time.perf_counter()
scores = train_and_score(folder, settings, steps, lambda world: split_samples(world, settings, "val"), **cache)
save_scores(folder / f"scores-val-{steps}.npz", scores, {**settings.scoring("val", judge_id(JUDGE)), "train_steps": steps})
print(f"{name} {recipe}, {steps} steps ({time.perf_counter() - began:.0f} s): {summary(scores)}")
