"""Run from the repository root: python runs/quick/fast-vae-val/enc8.py CANDIDATE_PIPELINE_DIR

The candidate fast VAE (narrow encoder [8, 16, 32, 64], norm groups 8, polish 2500 steps) against the
shipped one on val LCM-4 try-ons, paired; the candidate's encoder with the shipped decoder isolates
the encoder; each minus the base VAE. Then wall seconds per LCM-4 try-on, the two interleaved."""
import copy
import sys
import time

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.inpainting import per_sample_scores, sampler_method
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap, paired_difference
from tryon_lab.models import FastAutoencoderKL
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.pipelines.samplers import load_lcm
from tryon_lab.training.fast_vae import codec_seconds

P = "data/models/mini-sd-inpaint"
pipe = load_inpaint_pipeline(P, device="cpu")
pipe.set_progress_bar_config(disable=True)
load_lcm(pipe, P)
new = FastAutoencoderKL.from_pretrained(f"{sys.argv[1]}/fast_vae").eval()
hybrid = copy.deepcopy(pipe.fast_vae)  # the candidate's encoder, the shipped decoder
hybrid.encoder, hybrid.quant_conv = copy.deepcopy(new.encoder), copy.deepcopy(new.quant_conv)
n = 256
world = World(0, pipe.resolution)
samples = [world.sample(i, split="val") for i in range(n)]
judge = WorldJudge.load("data/models/world-encoder")
configs = {"new": new, "old": pipe.fast_vae, "new_encoder": hybrid, "base": None}
M = ("attr_acc_all", "identity_acc", "masked_psnr_db", "leftover")
scores = {}
for name, vae in configs.items():
    pipe.fast_vae = vae
    scores[name] = per_sample_scores(samples, sampler_method(pipe, "lcm")(samples), judge, world)
    print(name, {m: str(bootstrap(np.nanmean, scores[name][m])) for m in M}, flush=True)
for a, b in (("new", "old"), ("new_encoder", "old"), ("new", "base"), ("old", "base")):
    for m in M:
        x, y = scores[a][m], scores[b][m]
        keep = ~(np.isnan(x) | np.isnan(y))
        print(f"{a} - {b} {m}: {paired_difference(x[keep], y[keep])}", flush=True)
for name in ("new", "old"):
    print(name, "encode+decode s/img", round(codec_seconds(configs[name], pipe.resolution), 4), flush=True)
seconds = {"new": [], "old": []}
for _ in range(5):  # interleaved, so drift in the machine's speed falls on both
    for name in seconds:
        pipe.fast_vae = configs[name]
        start = time.perf_counter()
        sampler_method(pipe, "lcm")(samples[:64])
        seconds[name].append((time.perf_counter() - start) / 64)
ratio = np.array(seconds["new"]) / np.array(seconds["old"])
print("LCM-4 s/try-on", {k: [round(v, 4) for v in s] for k, s in seconds.items()},
      "new/old per round", np.round(ratio, 3).tolist(), "median", round(float(np.median(ratio)), 3))
