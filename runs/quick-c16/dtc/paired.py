"""Run from the repository root: PYTHONPATH=. python runs/quick-c16/dtc/paired.py RUN_A RUN_B STEP [STEP ...]

Two pilots scored on the same 256 val pairs (recipe_pilot.py writes pilot/NAME/scores-val-STEPS.npz with the
same noise for every run), compared pair by pair: A minus B at each STEP, with the paired 95% bootstrap
interval and its verdict, for the curve metrics (identity, all-attribute, reference similarity).
"""
import sys
from pathlib import Path

from tryon_lab.metrics.stats import paired_difference, verdict
from tryon_lab.training.dtc.curve import CURVE_METRICS
from tryon_lab.training.dtc.evaluation import load_scores

PILOTS = Path("runs/quick-c16/dtc/pilot")
a, b, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
for step in steps:
    first, second = (load_scores(PILOTS / name / f"scores-val-{step}.npz") for name in (a, b))
    for metric in CURVE_METRICS:
        difference = paired_difference(first[metric], second[metric])
        print(f"{step} steps, {a} minus {b}, {metric}: {difference} ({verdict(difference, False, (a, b))})")
