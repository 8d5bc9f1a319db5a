"""Run from the repository root: python runs/quick/fast-vae-val/newold.py OLD_FAST_VAE_DIR

New (polished) fast VAE minus old on val LCM-4 try-ons, paired; and each minus the base VAE."""
import sys, time
import numpy as np
from diffusers import AutoencoderKL
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.inpainting import per_sample_scores, sampler_method
from tryon_lab.metrics.stats import bootstrap, paired_difference
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.pipelines.samplers import load_lcm
from tryon_lab.training.fast_vae import codec_seconds

P = "data/models/mini-sd-inpaint"
pipe = load_inpaint_pipeline(P, device="cpu"); pipe.set_progress_bar_config(disable=True)
load_lcm(pipe, P)
old = AutoencoderKL.from_pretrained(sys.argv[1])  # the fast VAE before the polish phase (commit 44cf938).eval()
n = 256
world = World(0, pipe.resolution)
samples = [world.sample(i, split="val") for i in range(n)]
judge = WorldJudge.load("data/models/world-encoder")
configs = {"new": pipe.fast_vae, "old": old, "base": None}
M = ("attr_acc_all", "identity_acc", "masked_psnr_db", "leftover")
scores = {}
for name, vae in configs.items():
    pipe.fast_vae = vae
    scores[name] = per_sample_scores(samples, sampler_method(pipe, "lcm")(samples), judge, world)
    print(name, {m: str(bootstrap(np.nanmean, scores[name][m])) for m in M}, flush=True)
for a, b in (("new", "old"), ("new", "base"), ("old", "base")):
    for m in M:
        x, y = scores[a][m], scores[b][m]
        keep = ~(np.isnan(x) | np.isnan(y))
        print(f"{a} - {b} {m}: {paired_difference(x[keep], y[keep])}", flush=True)
for name in ("new", "old"):
    print(name, "decode+encode s/img", round(codec_seconds(configs[name], pipe.resolution), 4))
