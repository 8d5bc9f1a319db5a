#!/usr/bin/env bash
# One borrowed-GPU lease, prepared as one script: train the shipped mini-sd-inpaint further with the
# `full` profile's U-Net recipe (batch 64, Min-SNR, EMA, a 100,000-sample latent cache) for a fixed
# number of minutes, score it on the test split, and hand back the finished pipeline folder as a tar
# in parts of 15 MiB (a lease returns files of at most 16 MiB) with its logs.
#
#   scripts/gpu_lease.sh MINUTES OUT_DIR
#
# Wheels in .whl/ (packages the GPU machine lacks, e.g. diffusers) are installed first when present.
# Here, afterwards: cat OUT_DIR/mini-sd-inpaint.tar.part-* | tar -x -C runs/gpu
set -euo pipefail
minutes=${1:?usage: scripts/gpu_lease.sh MINUTES OUT_DIR}
out=${2:?usage: scripts/gpu_lease.sh MINUTES OUT_DIR}
mkdir -p "$out"
source scripts/lease_env.sh
finish() {
  cp "$scratch/build/logs/tryon-lab-pretrain.log" "$out/third-party.log" 2>/dev/null || true
  cp runs/gpu/run/losses.csv "$out/losses.csv" 2>/dev/null || true
}
trap finish EXIT
python3 -m tryon_lab.cli pretrain unet --profile full --init data/models/mini-sd-inpaint \
  --vae data/models/mini-sd-inpaint/vae --judge data/models/world-encoder \
  --run-dir runs/gpu/run --out runs/gpu/mini-sd-inpaint --minutes "$minutes" 2>&1 | tee "$out/train.log"
# relative --run-dir/--out: the model card records the command as given, so no machine's paths
tar -C runs/gpu -cf - mini-sd-inpaint | split -b 15M - "$out/mini-sd-inpaint.tar.part-"
ls -la "$out"
