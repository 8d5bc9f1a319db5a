#!/usr/bin/env bash
# One borrowed-GPU lease for Diffuse to Choose: `tryon-lab train-dtc --profile full`, every run of the
# paper's ablation (variants x seeds) trained and scored at once (--jobs 10), for at most SECONDS. What
# is left after that, the test split's bootstrap intervals and shipping the selected variant, is CPU
# work the same command finishes here. Hands back, as a tar in parts of 15 MiB (a lease returns files
# of at most 16 MiB): every run's scores, losses and record, and the trained parts (reference and hint
# encoders, U-Net LoRA) of the run the val split selects; the shipped folder too if it got that far.
#
#   scripts/gpu_dtc.sh SECONDS OUT_DIR
#   PROFILE=smoke scripts/gpu_dtc.sh 300 build/dry-out    # a dry run of the whole script on a CPU
#
# The perceptual network (the quick profile's) trains first, its crops rendered by loader workers,
# unless runs/gpu/dtc-run/perceptual-net is carried (then the lease's minutes all go to the ablation).
# Wheels in .whl/ are installed first (scripts/lease_env.sh).
# Here, afterwards:
#   cat OUT_DIR/dtc-run.tar.part-* | tar -x
#   tryon-lab train-dtc --profile full --judge data/models/world-encoder --run-dir runs/gpu/dtc-run --out data/models/dtc
set -uo pipefail
seconds=${1:?usage: scripts/gpu_dtc.sh SECONDS OUT_DIR}
out=${2:?usage: scripts/gpu_dtc.sh SECONDS OUT_DIR}
profile=${PROFILE:-full}
run=runs/gpu/dtc-run
mkdir -p "$out"
export TQDM_MININTERVAL=20
source scripts/lease_env.sh
# relative paths: the records name no machine's folders
timeout --kill-after=15 "$seconds" python3 -m tryon_lab.cli train-dtc --profile "$profile" --jobs 10 \
  --judge data/models/world-encoder --run-dir "$run" --out runs/gpu/dtc >"$out/train.log" 2>&1
echo "train-dtc exit status $? (124: stopped at the lease's budget, as planned when the intervals remain)"
grep -E "Error|error|Traceback|stopped at step" "$out/train.log" | tail -20
python3 - "$run" "$profile" "$scratch/pack-list" <<'EOF' >"$out/pack.txt"
import json, sys
from pathlib import Path

import numpy as np

from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc.ablation import LORA_FOLDER, select_variant
from tryon_lab.training.dtc.evaluation import load_scores

ablation = Path(sys.argv[1]) / "ablation"
section = load_profile(sys.argv[2])["dtc"]
metric = section["select_metric"]
files, val = [], {}
for folder in sorted(ablation.glob("*/seed-*")):
    record = folder / "pipeline" / "training.json"
    files += [f for f in (folder / "scores-val.npz", folder / "scores-test.npz", folder / "losses.csv", record) if f.is_file()]
    if record.is_file():
        steps = json.loads(record.read_text())["steps"]
        print(f"{folder.relative_to(ablation)}: {steps} steps, scored: {(folder / 'scores-test.npz').is_file()}")
    if (folder / "scores-val.npz").is_file():
        val.setdefault(folder.parent.name, []).append(float(np.mean(load_scores(folder / "scores-val.npz")[metric])))
if val:
    chosen = (section["ship"] if section["ship"] != "auto" else
              select_variant({name: {metric: float(np.mean(v))} for name, v in val.items()}, metric))
    print(f"val {metric}: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in val.items()) + f"; selected {chosen}")
    seed0 = min(ablation.glob(f"{chosen}/seed-*"))
    files += [f for f in [*(seed0 / "pipeline").glob("*_encoder/*"), *(seed0 / LORA_FOLDER).glob("*")] if f.is_file()]
for extra in (ablation / "ablation.json", ablation / "ablation-val.json"):
    files += [extra] if extra.is_file() else []
shipped = Path("runs/gpu/dtc")
files += [f for f in shipped.rglob("*") if f.is_file()] if shipped.is_dir() else []
Path(sys.argv[3]).write_text("\n".join(str(f) for f in files) + "\n")
print(f"{len(files)} files packed")
EOF
cat "$out/pack.txt"
tar -cf - -T "$scratch/pack-list" | split -b 15M - "$out/dtc-run.tar.part-"
ls -la "$out"
