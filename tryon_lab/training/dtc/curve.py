"""A DTC ablation run trained past the ablation's length, scored on val as it goes: a learning curve.

The ablation trains every run ``train.steps`` steps; whether more training would reach the bars
(identity and all-attribute accuracy on unseen items) is a question for a longer run of one variant.
``extend_run`` starts from the ablation run's last checkpoint (copied, the run itself is left as it
is) and trains on in ``<run_dir>/curve/<variant>/seed-<s>``. The loop's learning rate is constant
after warmup and its data depend only on the step, so continuing equals one longer run. After every
``every`` steps the model is scored on the ablation's val samples with the ablation's sampling (same
noise, steps, guidance); the ablation's own val scores are the curve's first point. Rows land in
``curve.csv`` (a point already there is not scored again: rerun to resume) and ``curve.png``
(``training.curve``'s files and figure).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from tryon_lab.errors import ConfigError
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.training.checkpoints import CHECKPOINT_PREFIX, checkpoint_dirs
from tryon_lab.training.curve import (
    FIGURE_FILE,
    append_row,
    curve_figure,
    read_curve,
    read_curve_file,
    steps_to_reach,
)
from tryon_lab.training.dtc.ablation import CACHE_FOLDER, AblationSettings, score_run, split_samples, train_variant
from tryon_lab.training.dtc.evaluation import judge_id, load_scores, scoring_of

CURVE_METRICS = ("identity_acc", "attr_acc_all", "ref_similarity")
COLUMNS = ("step", *(f"{m}{end}" for m in CURVE_METRICS for end in ("", "_lo", "_hi")), "samples", "train_seconds")
# the retraining issue's bars on unseen items, drawn on the figure
BARS = {"identity_acc": 0.60, "attr_acc_all": 0.70}
SCORING_FILE = "scoring.json"  # in a curve's folder: how its rows were scored (AblationSettings.scoring)
SHIPPED_CURVE = "learning_curve.csv"  # the curve inside a DTC folder that ships its variant
SHIPPED_FIGURE = "learning_curve.png"
LABELS = {"identity_acc": "identity accuracy", "attr_acc_all": "all-attribute accuracy"}


def curve_folder(run_dir: str | Path, name: str, seed: int) -> Path:
    """Where the longer run of ablation run ``name``/``seed`` (under recipe folder ``run_dir``) trains."""
    return Path(run_dir) / "curve" / name / f"seed-{seed}"


def curve_row(step: int, scores: dict[str, np.ndarray], train_seconds: float, resamples: int) -> dict[str, float]:
    """One point of the curve: each metric's val mean and 95% bootstrap interval at ``step``."""
    row: dict[str, float] = {"step": step, "samples": len(scores[CURVE_METRICS[0]]), "train_seconds": train_seconds}
    for metric in CURVE_METRICS:
        interval = bootstrap(np.mean, scores[metric], resamples=resamples)
        row.update({metric: interval.value, f"{metric}_lo": interval.lo, f"{metric}_hi": interval.hi})
    return row


def _start_from_ablation(run: Path, folder: Path, steps: int) -> None:
    """Copy the ablation run's checkpoint at ``steps`` and its loss log into the empty ``folder``
    (through a temporary folder, so a killed copy leaves nothing that looks complete)."""
    checkpoint = run / f"{CHECKPOINT_PREFIX}{steps:06d}"
    if checkpoint_dirs(folder) or checkpoint not in checkpoint_dirs(run):
        return  # resumed, or trained from scratch (a kept run without its checkpoints: same weights, more time)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{checkpoint.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    shutil.copy2(run / "losses.csv", folder / "losses.csv")
    tmp.rename(folder / checkpoint.name)


def extend_run(base, run_dir: str | Path, settings: AblationSettings, name: str, seed: int, steps: int, every: int,
               *, perceptual, judge_dir: str | Path) -> list[dict[str, float]]:
    """Train ablation run ``name``/``seed`` of the recipe in ``run_dir`` (its ``ablation/`` scored
    already) on to ``steps``, scoring the val samples after every ``every`` steps; returns the whole
    curve (the ablation's point first). ``base``: the text inpainting pipeline the ablation trained on;
    ``perceptual``: its PerceptualNet (or None). ``ConfigError`` before any training for an unknown
    variant, an unscored run, a missing judge or steps that add no point."""
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge

    if name not in settings.parsed:
        raise ConfigError(f"{name!r} is not one of the ablation's variants {list(settings.variants)}")
    run = Path(run_dir) / "ablation" / name / f"seed-{seed}"
    if not (run / "scores-val.npz").is_file():
        raise ConfigError(f"{run} is not scored yet: run train-dtc first (the curve starts where its run ends)")
    if not Path(judge_dir, "config.json").is_file():
        raise ConfigError(f"--judge must name the world encoder folder (with config.json); got {str(judge_dir)!r}")
    scoring = settings.scoring("val", judge_id(judge_dir))
    if scoring_of(run / "scores-val.npz") != scoring:
        raise ConfigError(f"{run} was scored otherwise (another judge, other samples or steps): run train-dtc "
                          f"with --judge {judge_dir} first (it scores the kept runs again)")
    start = settings.train.steps
    if every < 1 or steps < start + every:
        raise ConfigError(f"--steps {steps} adds no point: give at least {start} + --every ({every}) steps")
    variant = settings.parsed[name]
    if variant.perceptual and perceptual is None:
        raise ConfigError(f"{name} trains with the perceptual loss: give its perceptual network")
    folder = curve_folder(run_dir, name, seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, recorded = read_curve(folder), folder / SCORING_FILE
    if rows and (not recorded.is_file() or json.loads(recorded.read_text()) != scoring):
        raise ConfigError(f"the curve in {folder} was scored otherwise (another judge, other samples or steps): "
                          "delete that folder to score the curve again")
    if not rows:
        recorded.write_text(json.dumps(scoring, sort_keys=True))
        first = curve_row(start, load_scores(run / "scores-val.npz"), 0.0, settings.bootstrap_resamples)
        append_row(folder, first, COLUMNS)
        rows = [first]
    done = {int(row["step"]) for row in rows}
    _start_from_ablation(run, folder, start)
    judge = WorldJudge.load(judge_dir)
    world = World(settings.world_seed, base.resolution)
    samples = split_samples(world, settings, "val")
    for point in range(start + every, steps + 1, every):
        if point in done:
            continue
        pipe, loop = train_variant(base, folder, settings, name, seed, perceptual, run.parent.parent / CACHE_FOLDER,
                                   steps=point)
        pipe.set_progress_bar_config(disable=True)
        row = curve_row(point, score_run(pipe, settings, samples, judge, world), round(loop.wall_seconds, 1),
                        settings.bootstrap_resamples)
        append_row(folder, row, COLUMNS)
        rows.append(row)
    return sorted(rows, key=lambda row: row["step"])


def write_curve_figure(folder: str | Path, rows: list[dict[str, float]], title: str) -> Path:
    """Draw identity and all-attribute accuracy (95% intervals, the bars dashed) against the step into
    ``folder/curve.png``; returns its path."""
    path = Path(folder) / FIGURE_FILE
    curve_figure(rows, title, LABELS, BARS).savefig(path, dpi=80)
    return path


def bar_reach(rows: list[dict[str, float]]) -> dict[str, float | None]:
    """{metric: the step at which the curve ``rows`` would reach its bar in ``BARS``} (see
    ``training.curve.steps_to_reach``: the last two points' straight line; None when not rising)."""
    return {metric: steps_to_reach(rows, metric, bar) for metric, bar in BARS.items()}


def reach_note(model_dir: str | Path | None) -> str:
    """Markdown: for each bar, the step at which the learning curve a DTC folder holds would reach it
    if it went on as the straight line through its last two points (``training.curve.steps_to_reach``),
    or that it is not rising there; "" without a curve."""
    rows = read_curve_file(Path(model_dir) / SHIPPED_CURVE) if model_dir is not None else []
    if len(rows) < 2:
        return ""
    lines = [f"- {LABELS[metric]} " + ("is not rising at the last point" if step is None else
                                        f"would reach {BARS[metric]} at about step {step:.0f}")
             for metric, step in bar_reach(rows).items()]
    return ("Extending the last two points as a straight line (an extrapolation, not a measurement; a curve "
            "that flattens needs more):\n\n" + "\n".join(lines))


def shipped_curve_figure(model_dir: str | Path | None):
    """The figure of the learning curve a DTC folder holds (``dtc-curve --into``), or None without one."""
    rows = read_curve_file(Path(model_dir) / SHIPPED_CURVE) if model_dir is not None else []
    return curve_figure(rows, "the shipped variant trained on: val pairs, 95% intervals", LABELS, BARS) if rows else None
