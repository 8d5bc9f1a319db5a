"""Learning curves of the inpainting U-Net: each kept checkpoint of a run, scored on val samples.

A run keeps its checkpoints at multiples of ``milestone_every`` (see ``InpaintSettings``); this
module rebuilds the pipeline each one holds (the EMA weights when the run keeps an EMA, as the
shipped model does) and scores it with the judge on the *val* split, the split recipes are tuned
on; the model card's figures stay on test. Scores land in ``<run_dir>/curve.csv``, one row per
checkpoint; a checkpoint already in the file is not scored again, so the command can be re-run
while training goes on.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tryon_lab.pipelines.samplers import TEXT_GUIDANCE
from tryon_lab.training.checkpoints import checkpoint_dirs, checkpoint_step

CURVE_FILE = "curve.csv"
FIGURE_FILE = "curve.png"
EMA_FILE = "custom_checkpoint_0.pkl"  # accelerate's name for the first object registered for checkpointing
COLUMNS = ("step", "attr_acc_all", "attr_acc_all_lo", "attr_acc_all_hi", "leftover", "leftover_lo", "leftover_hi",
           "masked_psnr_db", "samples")


def checkpoint_pipeline(run_dir: str | Path, checkpoint: str | Path, vae_dir: str | Path, config):
    """The ``TryOnInpaintPipeline`` a U-Net run's ``checkpoint`` folder holds (its EMA weights
    when it has them), with the run's tokenizer and the VAE in ``vae_dir``, sampling with DDIM."""
    from diffusers import AutoencoderKL
    from diffusers.training_utils import EMAModel
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    from tryon_lab.models.components import (
        build_scheduler,
        build_text_encoder,
        build_unet,
    )
    from tryon_lab.training.inpaint import trained_pipeline

    checkpoint = Path(checkpoint)
    tokenizer = CLIPTokenizer.from_pretrained(Path(run_dir) / "tokenizer")
    trained = torch.nn.ModuleDict({"unet": build_unet(config), "text_encoder": build_text_encoder(config, tokenizer)})
    trained.load_state_dict(load_file(checkpoint / "model.safetensors"))
    if (checkpoint / EMA_FILE).is_file():
        # the EMA follows the objective's parameters: the U-Net's, then the text encoder's, as here
        ema = EMAModel(trained.parameters())
        ema.load_state_dict(torch.load(checkpoint / EMA_FILE, weights_only=False))
        ema.copy_to(trained.parameters())
    pipe = trained_pipeline(AutoencoderKL.from_pretrained(vae_dir), trained["text_encoder"], tokenizer,
                            trained["unet"], build_scheduler(config))
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(torch.float32)


def read_curve(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of ``<run_dir>/curve.csv`` (numbers), oldest step first; [] when there is none."""
    return read_curve_file(Path(run_dir) / CURVE_FILE)


def read_curve_file(path: str | Path) -> list[dict[str, float]]:
    """The rows of the curve file ``path`` (numbers), oldest step first; [] when there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open() as handle:
        rows = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    return sorted(rows, key=lambda row: row["step"])


def append_row(run_dir: str | Path, row: dict[str, float], columns: tuple[str, ...]) -> None:
    """Add one point (``columns``, step first) to ``<run_dir>/curve.csv``, writing its header when new."""
    path = Path(run_dir) / CURVE_FILE
    new_file = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new_file:
            writer.writeheader()
        writer.writerow(row)


def learning_curve(run_dir: str | Path, vae_dir: str | Path, judge_dir: str | Path, config, samples: int = 64,
                   steps: int = 25, guidance_scale: float = TEXT_GUIDANCE, seed: int = 0) -> list[dict[str, float]]:
    """Score every kept checkpoint of the U-Net run in ``run_dir`` not yet in its curve on the first
    ``samples`` val samples (all-attribute accuracy and leftover with 95% intervals, masked PSNR);
    append them to ``curve.csv`` and return the whole curve."""
    from tryon_lab.data.world import World
    from tryon_lab.metrics.inpainting import pipeline_method, score_outputs
    from tryon_lab.metrics.judge import WorldJudge

    world = World(seed, config.resolution)
    val = [world.sample(i, split="val") for i in range(samples)]
    judge = WorldJudge.load(judge_dir)

    def score(pipe) -> dict[str, float]:
        scores = score_outputs(val, pipeline_method(pipe, steps, guidance_scale, seed=seed)(val), judge, intervals=True)
        return {**{key: scores[key] for key in COLUMNS if key in scores}, "samples": samples}

    return extend_curve(run_dir, lambda checkpoint: checkpoint_pipeline(run_dir, checkpoint, vae_dir, config), score,
                        COLUMNS)


def extend_curve(run_dir: str | Path, load: Callable[[Path], Any], score: Callable[[Any], dict[str, float]],
                 columns: tuple[str, ...]) -> list[dict[str, float]]:
    """Append to ``<run_dir>/curve.csv`` one row (``columns``, step first) for every kept checkpoint of
    the run not yet in it: ``score(load(checkpoint))``. A checkpoint the training run prunes between
    listing and loading (not a milestone) is passed over. Returns the whole curve, oldest step first."""
    rows = read_curve(run_dir)
    done = {int(row["step"]) for row in rows}
    for checkpoint in checkpoint_dirs(run_dir):
        step = checkpoint_step(checkpoint)
        if step in done:
            continue
        try:
            model = load(checkpoint)
        except FileNotFoundError:
            continue
        row = {"step": step, **score(model)}
        append_row(run_dir, row, columns)
        rows.append({key: float(value) for key, value in row.items()})
    return sorted(rows, key=lambda row: row["step"])


def write_learning_curve(run_dir: str | Path, vae_dir: str | Path, judge_dir: str | Path, profile,
                         samples: int = 64) -> list[dict[str, float]]:
    """Score the U-Net run in ``run_dir`` (``learning_curve`` with ``profile``'s model config) and draw it
    into ``<run_dir>/curve.png``; return the rows. ``ConfigError`` before any work if ``run_dir`` holds
    no checkpoints or ``vae_dir`` / ``judge_dir`` is not a saved model folder."""
    from tryon_lab.errors import ConfigError
    from tryon_lab.models.config import load_model_config

    run_dir = Path(run_dir)
    if not checkpoint_dirs(run_dir) or not (run_dir / "tokenizer").is_dir():
        raise ConfigError(f"--run-dir {run_dir} holds no U-Net checkpoints (step-* folders and a tokenizer)")
    for flag, folder in (("--vae", vae_dir), ("--judge", judge_dir)):
        if not Path(folder, "config.json").is_file():
            raise ConfigError(f"{flag} must name a saved model folder (with config.json); got {str(folder)!r}")
    config = load_model_config(profile["pretrain"]["model"])
    rows = learning_curve(run_dir, vae_dir, judge_dir, config, samples=samples)
    curve_figure(rows, f"{run_dir}: {samples} val samples, 95% intervals").savefig(run_dir / FIGURE_FILE, dpi=80)
    return rows


def curve_figure(rows: list[dict[str, float]], title: str = "",
                 metrics: dict[str, str] | None = None, bars: dict[str, float] | None = None,
                 bar_labels: dict[str, str] | None = None):
    """``metrics`` ({column: label}; default all-attribute accuracy and leftover) with their 95%
    intervals (``<column>_lo`` / ``_hi``) against the training step; ``bars`` ({column: value}) as
    dashed lines in the metric's colour, labelled "bar: <metric's label>" unless ``bar_labels`` names
    them."""
    from tryon_lab.plotting import NotebookFigure

    metrics = metrics or {"attr_acc_all": "all-attribute accuracy", "leftover": "leftover"}
    figure = NotebookFigure(figsize=(6, 3))
    axis = figure.subplots()
    steps = [row["step"] for row in rows]
    for key, label in metrics.items():
        line, = axis.plot(steps, [row[key] for row in rows], marker="o", label=label)
        axis.fill_between(steps, [row[f"{key}_lo"] for row in rows], [row[f"{key}_hi"] for row in rows], alpha=0.2,
                          color=line.get_color())
        if bars and key in bars:
            axis.axhline(bars[key], linestyle="--", linewidth=1, color=line.get_color(),
                         label=(bar_labels or {}).get(key, f"bar: {label}"))
    axis.set_xlabel("training step")
    axis.set_ylim(0, 1)
    axis.set_title(title or "val samples, 95% intervals")
    axis.legend(fontsize=8 if not bars else 7)
    figure.tight_layout()
    return figure


def steps_to_reach(rows: list[dict[str, float]], metric: str, bar: float) -> float | None:
    """The step at which ``metric`` would reach ``bar`` (from below) if the curve went on as a straight
    line through its last two points (``rows`` oldest first): the last point's step when it is there
    already; None with fewer than two points or when the last segment does not rise. An extrapolation,
    not a measurement: a curve that flattens reaches the bar later."""
    if len(rows) < 2:
        return None
    (step0, value0), (step1, value1) = ((row["step"], row[metric]) for row in rows[-2:])
    if value1 >= bar:
        return step1
    if value1 <= value0:
        return None
    return step1 + (bar - value1) * (step1 - step0) / (value1 - value0)
