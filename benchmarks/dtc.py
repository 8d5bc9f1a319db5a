"""Issue-5 bars on the shipped DTC: the ablation (beside the paper's tables) and the cost of a try-on.

The ablation's scores come from the ``tryon-lab train-dtc`` run that produced data/models/dtc
(``training.json``): every variant trained on the same recipe (the same U-Net parameters) and
scored there on the same test try-all pairs, with intervals and paired verdicts. Timings are measured here, interleaved, on one held-out pair.
"""

from __future__ import annotations

import json
import time

import torch

from tryon_lab.data.world import World
from tryon_lab.metrics.timing import measure_step_times
from tryon_lab.paths import shipped_model
from tryon_lab.pipelines.loading import (
    SHIPPED_DTC,
    load_dtc_pipeline,
    load_inpaint_pipeline,
)
from tryon_lab.training.curve import read_curve_file
from tryon_lab.training.dtc.curve import BARS, LABELS, SHIPPED_CURVE, bar_reach
from tryon_lab.training.dtc.evaluation import METRICS, factor_tallies, format_score
from tryon_lab.training.dtc.variants import parse_variant

MODELS = ("mini-sd-inpaint", "dtc", "world-encoder")  # the ablation (judged) is read from dtc/training.json; timings run both

STEPS, GUIDANCE = 25, 5.0

# Diffuse to Choose (Seyfioglu et al.), FID. Table 1: in-house try-all test set; Table 2:
# VITON-HD-NoFace. Their PBE_best / "+ perceptual loss" is a Paint-by-Example model with DINOv2 and
# the perceptual loss: our "baseline+perceptual".
PAPER_FID = {
    "Table 1: PBE_best -> DTC direct addition -> DTC FiLM": (6.65, 6.19, 5.72),
    "Table 2: PBE + DINOv2 + perceptual -> DTC": (5.93, 5.39),
}


def _ablation_rows(record: dict) -> list[tuple]:
    """Rows of the recorded ablation: every variant's metrics (with its 95% interval and seeds when
    recorded), every paired difference with its verdict, and the paper's tables beside them."""
    settings = record.get("settings", {})
    pairs = settings.get("eval_samples")
    note = (f"{pairs} test try-all pairs (items no training saw); judge = world encoder; mean over training seeds "
            "[95% bootstrap interval]")
    rows = []
    for row in record.get("comparisons", []):  # the paper's headline: the DTC against Paint by Example
        if row["a"] == record["variant"] and parse_variant(row["b"]).fusion is None:
            rows.append((f"headline, shipped {row['a']} - no-hint {row['b']}: {METRICS[row['metric']][0]}",
                         f"{row['difference']:.4g} [{row['lo']:.4g}, {row['hi']:.4g}]",
                         f"{row['verdict']}; paired over the {pairs} test pairs"))
    for name, scores in record["ablation"].items():
        for metric, (title, _) in METRICS.items():
            if metric in scores:
                rows.append((f"{name}: {title}", format_score(scores, metric), note))
    for row in record.get("comparisons", []):
        rows.append((f"{row['a']} - {row['b']}: {row['metric']}",
                     f"{row['difference']:.4g} [{row['lo']:.4g}, {row['hi']:.4g}]", row["verdict"]))
    for title, tally in factor_tallies(record.get("comparisons", [])).items():
        rows.append((f"verdicts: {title}", tally, "paired 95% intervals on the test pairs, every metric compared"))
    for name, seconds in record.get("hint_step_seconds", {}).items():
        rows.append((f"{name}: CPU seconds per sampling step", seconds,
                     "+t: the hint encoder takes the timestep and runs at every step"))
    for table, fids in PAPER_FID.items():
        gains = ", ".join(f"{100 * (fids[0] - f) / fids[0]:.1f}%" for f in fids[1:])
        rows.append((f"the paper, {table}", " -> ".join(map(str, fids)), f"FID gain over the PBE variant: {gains}"))
    return rows


def _curve_rows(record: dict) -> list[tuple]:
    """The shipped variant's learning curve past the recipe's length (``tryon-lab dtc-curve --into``),
    when the DTC folder has one: identity and all-attribute accuracy on val pairs per training step."""
    rows = read_curve_file(shipped_model(SHIPPED_DTC) / SHIPPED_CURVE)
    note = (f"{record['variant']} trained on past the recipe's {record['steps']} steps (tryon-lab dtc-curve); "
            "{} val pairs, 95% interval; the bars (on test): "
            + ", ".join(f"{LABELS[metric]} >= {bar}" for metric, bar in BARS.items()))
    points = [(f"learning curve, step {int(r['step'])}: {LABELS[metric]}",
               f"{r[metric]:.3f} [{r[metric + '_lo']:.3f}, {r[metric + '_hi']:.3f}]", note.format(int(r["samples"])))
              for r in rows for metric in BARS]
    reach = [(f"learning curve: step at which {LABELS[metric]} would reach {BARS[metric]} on val",
              "not rising at the last point" if step is None else f"{step:.0f}",
              "the straight line through the last two points, extended: an extrapolation, not a measurement "
              "(a curve that flattens needs more steps than this)") for metric, step in bar_reach(rows).items()]
    return points + (reach if len(rows) > 1 else [])


@torch.no_grad()
def run() -> list[tuple]:
    """Measure and return (metric, value, note) rows."""
    record = json.loads((shipped_model(SHIPPED_DTC) / "training.json").read_text())
    rows = _ablation_rows(record) + _curve_rows(record)
    dtc = load_dtc_pipeline(device="cpu")
    text = load_inpaint_pipeline(device="cpu")
    sample = World(seed=0, resolution=text.resolution).sample(0, split="test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = measure_step_times({"text": text, "dtc": dtc, "dtc:recompute": dtc}, sample.scene, sample.shape_mask,
                                   sample.reference, steps=STEPS, guidance_scale=GUIDANCE, clock=time.process_time)
    finally:
        torch.set_num_threads(threads)
    note = f"{STEPS} DDIM steps, guidance {GUIDANCE}, CPU seconds at 1 thread (unaffected by other load), median of 3"
    rows += [
        ("plain text try-on (s)", times["text"]["call_s"], note),
        ("DTC try-on, hint features cached (s)", times["dtc"]["call_s"], note),
        ("DTC try-on, hint recomputed every step (s)", times["dtc:recompute"]["call_s"], note),
        ("ratio DTC / plain try-on", times["dtc"]["call_s"] / times["text"]["call_s"], "bar <= 1.2"),
        ("per step: cached / recomputed (ms)",
         f"{1000 * times['dtc']['step_s']:.1f} / {1000 * times['dtc:recompute']['step_s']:.1f}",
         "the hint does not depend on the noisy latent, so its features are computed once"),
    ]
    return rows
