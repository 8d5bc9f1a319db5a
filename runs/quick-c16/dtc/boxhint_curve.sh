#!/usr/bin/env bash
# Run from the repository root: bash runs/quick-c16/dtc/boxhint_curve.sh [LAST_STEP=7000]
# The box-layout pilot's learning curve on val: resumes runs/quick-c16/dtc/pilot/boxhint from its newest
# checkpoint and trains it in legs of 700 steps up to LAST_STEP, scoring the 256 val pairs after each leg
# (scores-val-STEP.npz). A leg already scored is skipped, so a killed run restarts with the same command.
# Each leg's console goes to runs/quick-c16/dtc/pilot-boxhint-STEP.log.
set -euo pipefail
last=${1:-7000}
for ((step = 2100; step <= last; step += 700)); do
  [[ -f runs/quick-c16/dtc/pilot/boxhint/scores-val-$step.npz ]] && continue
  PYTHONPATH=. .venv/bin/python runs/quick-c16/dtc/recipe_pilot.py boxhint '{"hint_layout": "box"}' "$step" \
    > "runs/quick-c16/dtc/pilot-boxhint-$step.log" 2>&1
done
