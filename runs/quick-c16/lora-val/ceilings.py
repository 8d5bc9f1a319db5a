"""The judge's identity on the DreamBooth val garments' held-out renderings and on their round trip through
each base's VAE (benchmarks.dreambooth.identity_ceilings): which garments a base's latent space lets move."""
from diffusers import AutoencoderKL

from benchmarks.dreambooth import garments, identity_ceilings
from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge

judge, world = WorldJudge.load("data/models/world-encoder"), World(0, 128)
for base in ("data/models/mini-sd-inpaint", "runs/quick-c16/pipeline"):
    vae = AutoencoderKL.from_pretrained(f"{base}/vae")
    for item in garments(world, "val"):
        c = identity_ceilings(vae, judge, world, item, "val")
        print(f"{base}  {item.item_id}: ground truth {c['ground truth']:.3f}, round trip {c['round trip']:.3f}", flush=True)
