#!/usr/bin/env bash
# One borrowed-GPU lease, prepared as one script: train the shipped mini-sd-inpaint further with the
# `full` profile's U-Net recipe (batch 64, Min-SNR, EMA, a 100,000-sample latent cache) for a fixed
# number of minutes, score it on the test split, and hand back the finished pipeline folder as a tar
# in parts of 15 MiB (a lease returns files of at most 16 MiB) with its logs.
#
#   scripts/gpu_lease.sh MINUTES OUT_DIR
#   scripts/gpu_lease.sh MINUTES OUT_DIR mini16 runs/quick-c16/vae-final   # another model config on its VAE
#
# With a model config and its VAE (carried to the machine: runs/ is not in git) the U-Net starts from the
# shipped one's body, its conv_in and conv_out new (a transplant onto the new latent width).
#
# Wheels in .whl/ (packages the GPU machine lacks, e.g. diffusers) are installed first when present.
# Here, afterwards: cat OUT_DIR/mini-sd-inpaint.tar.part-* | tar -x -C runs/gpu
set -euo pipefail
minutes=${1:?usage: scripts/gpu_lease.sh MINUTES OUT_DIR [MODEL VAE]}
out=${2:?usage: scripts/gpu_lease.sh MINUTES OUT_DIR [MODEL VAE]}
model=${3:-mini}
vae=${4:-data/models/mini-sd-inpaint/vae}
mkdir -p "$out"
source scripts/lease_env.sh
finish() {
  cp "$scratch/build/logs/tryon-lab-pretrain.log" "$out/third-party.log" 2>/dev/null || true
  cp runs/gpu/run/losses.csv "$out/losses.csv" 2>/dev/null || true
}
trap finish EXIT
python3 -m tryon_lab.cli pretrain unet --profile full --model "$model" --init data/models/mini-sd-inpaint \
  --vae "$vae" --judge data/models/world-encoder \
  --run-dir runs/gpu/run --out runs/gpu/mini-sd-inpaint --minutes "$minutes" 2>&1 | tee "$out/train.log"
# relative --run-dir/--out: the model card records the command as given, so no machine's paths
tar -C runs/gpu -cf - mini-sd-inpaint | split -b 15M - "$out/mini-sd-inpaint.tar.part-"
ls -la "$out"
