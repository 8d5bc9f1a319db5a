"""Run from the repository root (at commit 44cf938): python runs/quick/fast-vae-val/halves.py 256

Which half of the fast VAE costs LCM-4 attribute accuracy? val, paired."""
import copy, sys, time
import numpy as np
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.inpainting import per_sample_scores, sampler_method
from tryon_lab.metrics.stats import bootstrap, paired_difference
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.pipelines.samplers import load_lcm

P = "data/models/mini-sd-inpaint"
pipe = load_inpaint_pipeline(P, device="cpu"); pipe.set_progress_bar_config(disable=True)
load_lcm(pipe, P)
fast, base = pipe.fast_vae, pipe.vae
def hybrid(enc, dec):
    h = copy.deepcopy(dec)
    h.encoder, h.quant_conv = enc.encoder, enc.quant_conv
    return h
n = int(sys.argv[1]) if len(sys.argv) > 1 else 256
world = World(0, pipe.resolution)
samples = [world.sample(i, split="val") for i in range(n)]
judge = WorldJudge.load("data/models/world-encoder")
configs = {"fast": fast, "base": None, "baseenc_fastdec": hybrid(base, fast), "fastenc_basedec": hybrid(fast, base)}
scores = {}
for name, vae in configs.items():
    t = time.time(); pipe.fast_vae = vae
    scores[name] = per_sample_scores(samples, sampler_method(pipe, "lcm")(samples), judge, world)
    print(name, round(time.time() - t), {m: str(bootstrap(np.mean, scores[name][m])) for m in ("attr_acc_all", "identity_acc", "masked_psnr_db")}, flush=True)
for name in configs:
    if name == "fast": continue
    for m in ("attr_acc_all", "identity_acc", "masked_psnr_db"):
        print(f"{name} - fast {m}: {paired_difference(scores[name][m], scores['fast'][m])}", flush=True)
