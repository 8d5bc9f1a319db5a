#!/usr/bin/env bash
# The 16-channel-latent model (models/configs/mini16.json) on 2 CPU cores, as one resumable chain.
# Each stage resumes from its checkpoints and is skipped once its output holds a training.json, so the
# same command continues on the next machine after the runs are carried (scripts/carry_run.py):
#
#   scripts/mini16_route.sh [RUNS]          # default RUNS: runs/quick-c16
#
# 1. the VAE's phase 1 (its latent space; 12000 steps), scored by the judge on val and test;
# 2. its learning curve: each kept checkpoint's round-trip identity on val (tryon-lab curve);
# 3. the U-Net on that latent, its body transplanted from the shipped 4-channel model
#    (conv_in and conv_out new; 8000 steps, then resumed to 12000: leftover was still falling), with its
#    learning curve on val;
# 4. the pipeline against the shipped base on the same 256 val try-ons (compare-val.md): whether it ships;
#    and the DreamBooth protocol on val with it as the base (dreambooth-val.md): what its latent space
#    lets fine-tuning capture of a garment's motif;
# 5. Diffuse to Choose on it: the paper's ablation (train-dtc), whose hint the 4-channel VAE's round trip
#    could not carry;
# 6. its LCM LoRA and fast VAE (the lcm sampler), as the shipped base has them.
# The VAE's decoder-only phases (pretrain vae --phases decoder anneal polish, about 4 hours here) are left
# out: they sharpen pixels (masked PSNR), not what the bars measure, and a decoder put into the pipeline
# after stage 5 would change what DTC's perceptual loss trained through and every score made since.
set -euo pipefail

# one function, read whole before it runs: editing this file while a route runs cannot change that run
route() {
  local runs=${1:-runs/quick-c16}
  local judge=data/models/world-encoder
  done_in() { [ -f "$1/training.json" ]; }
  # a run's learning curve is scored while its checkpoints are here (a carried run keeps only its curve)
  has_checkpoints() { compgen -G "$1/step-*" > /dev/null; }

  done_in "$runs/vae-final" || tryon-lab pretrain vae --profile quick --model mini16 --steps 12000 --phases vae \
    --judge "$judge" --run-dir "$runs/vae" --out "$runs/vae-final"
  ! has_checkpoints "$runs/vae" || tryon-lab curve --model mini16 --run-dir "$runs/vae" --judge "$judge"

  done_in "$runs/pipeline" || tryon-lab pretrain unet --profile quick --model mini16 --steps 12000 --init data/models/mini-sd-inpaint \
    --vae "$runs/vae-final" --judge "$judge" --run-dir "$runs/unet" --out "$runs/pipeline"
  ! has_checkpoints "$runs/unet" || tryon-lab curve --profile quick --model mini16 --run-dir "$runs/unet" --vae "$runs/vae-final" --judge "$judge"

  [ -f "$runs/compare-val.md" ] || python scripts/compare_pipelines.py data/models/mini-sd-inpaint "$runs/pipeline" \
    --judge "$judge" --out "$runs/compare-val.md"
  # 400 steps: chosen on val with this base (150, the shipped base's recipe, left its full fine-tune near chance)
  [ -f "$runs/dreambooth-val.md" ] || python -m benchmarks.dreambooth_val --base "$runs/pipeline" --set steps=400 \
    --out "$runs/dreambooth-val.md"
  done_in "$runs/dtc-final" || tryon-lab train-dtc --profile quick --base "$runs/pipeline" --judge "$judge" \
    --run-dir "$runs/dtc" --out "$runs/dtc-final"
  done_in "$runs/pipeline/lcm" || tryon-lab distill --profile quick --base "$runs/pipeline" --judge "$judge" \
    --run-dir "$runs/distill"
  done_in "$runs/pipeline/fast_vae" || tryon-lab distill-vae --profile quick --base "$runs/pipeline" --judge "$judge" \
    --run-dir "$runs/distill-vae"
}

route "$@"
