"""The paper's ablation (Tables 1 and 2) on one shared recipe: every variant trains the same U-Net
parameters (``DTCSettings.unet``) and is scored on the same val and test samples.

Runs: every variant with ``seeds[0]``, and the ``seed_variants`` with every seed; run
``<variant>/seed-<s>`` trains in ``run_dir/<variant>/seed-<s>`` (checkpoints, losses.csv), is saved
to its ``pipeline`` folder (fp32, the U-Net's LoRA fused: loading it reproduces the trained model;
the LoRA itself also in ``unet-lora``) and scored into ``scores-val.npz`` / ``scores-test.npz``.
Every stage is skipped when its output exists, so an interrupted ablation resumes; a run kept with
only its record, scores and ``losses.csv`` counts as scored, and is retrained (``ensure_weights``)
only if it is the one shipped. ``jobs`` runs train at once in worker processes. Val picks the
shipped variant; test is the reported table (``evaluation``). The training pairs and evaluation samples come from world ``world_seed``;
a run's seed sets its initialisation and noise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.compositing import SEAM_PX
from tryon_lab.pipelines.samplers import DTC_GUIDANCE
from tryon_lab.training.dtc.evaluation import (
    METRICS,
    compare_variants,
    dtc_method,
    judge_id,
    load_scores,
    real_features,
    save_scores,
    score_tryons,
    scoring_of,
    summarize_variant,
)
from tryon_lab.training.dtc.train import DTCSettings, train_dtc
from tryon_lab.training.dtc.variants import Variant, parse_variants
from tryon_lab.training.pretrain import TRAINING_RECORD

SPLITS = ("val", "test")
RESULTS_FILE = "ablation.json"
VAL_FILE = "ablation-val.json"  # the val summaries, written before the test split's (slow) KID intervals
CACHE_FOLDER = "dtc-cache"  # the latent cache every run shares, beside the variants
LORA_FOLDER = "unet-lora"  # a run's trained U-Net LoRA (``unet = "lora"``), written before it is fused


@dataclass(frozen=True)
class AblationSettings:
    """What the ablation trains and how it scores: one DTCSettings for every variant.

    ``eval_samples`` test samples (the reported table; KID wants >= 500), ``val_samples`` val samples
    (selection), sampled ``eval_batch_size`` at a time (each batch's noise seeded by its first index,
    so the same for every variant); ``bootstrap_resamples`` per interval (KID's cost grows with it)."""

    train: DTCSettings
    variants: tuple[str, ...] = ("baseline", "add", "film")
    seeds: tuple[int, ...] = (0,)
    seed_variants: tuple[str, ...] = ()
    eval_samples: int = 64
    val_samples: int = 32
    sample_steps: int = 25
    guidance_scale: float = DTC_GUIDANCE
    eval_batch_size: int = 8
    world_seed: int = 0
    bootstrap_resamples: int = 1000
    parsed: dict[str, Variant] = field(init=False, repr=False, compare=False)

    def scoring(self, split: str, judge: str) -> dict:
        """How a run's ``split`` scores are made with the judge named ``judge`` (a ``judge_id``): what,
        changed, changes them; stored with the scores, which are made again when it differs."""
        return {"judge": judge, "samples": self.val_samples if split == "val" else self.eval_samples,
                "steps": self.sample_steps, "guidance": self.guidance_scale, "batch": self.eval_batch_size,
                "world_seed": self.world_seed, "seam_px": SEAM_PX}

    def __post_init__(self):
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "seed_variants", tuple(self.seed_variants))
        object.__setattr__(self, "parsed", parse_variants(self.variants))
        if not self.seeds:
            raise ConfigError("[dtc] seeds is empty: give at least one training seed")
        stray = [v for v in self.seed_variants if v not in self.variants]
        if stray:
            raise ConfigError(f"[dtc] seed_variants {stray} are not among the variants {list(self.variants)}")
        if self.eval_samples < 2 or self.val_samples < 2:
            raise ConfigError("[dtc] eval_samples and val_samples must be >= 2 (intervals need two samples)")

    def runs(self) -> list[tuple[str, int]]:
        """Every (variant, seed) the ablation trains, variants in order."""
        return [(name, seed) for name in self.variants
                for seed in (self.seeds if name in self.seed_variants else self.seeds[:1])]

    def needs_perceptual(self) -> bool:
        """Whether any variant trains with the perceptual loss."""
        return any(v.perceptual for v in self.parsed.values())


@dataclass
class AblationResult:
    """{split: {variant: summary}} (``summarize_variant``), the test split's paired comparisons, and
    each run's training wall time."""

    scores: dict[str, dict[str, dict]]
    comparisons: list[dict]
    wall_seconds: dict[str, float]

    @property
    def test(self) -> dict[str, dict]:
        """The reported table: {variant: summary} on the test split."""
        return self.scores["test"]

    def to_json(self) -> dict:
        """A JSON-able record."""
        return {"scores": self.scores, "comparisons": self.comparisons, "wall_seconds": self.wall_seconds}


def select_variant(val: dict[str, dict], metric: str) -> str:
    """The variant with the best val ``metric`` (seed mean); ``ConfigError`` when no variant has it."""
    scored = {name: s[metric] for name, s in val.items() if metric in s}
    if not scored:
        raise ConfigError(f"no variant has a val {metric!r} score (the judge's metrics need --judge)")
    lower_is_better = METRICS[metric][1]
    return (min if lower_is_better else max)(scored, key=scored.get)


def run_ablation(base, run_dir: str | Path, settings: AblationSettings, *, perceptual_dir: str | Path | None,
                 judge_dir: str | Path | None = None, jobs: int = 1) -> AblationResult:
    """Train and score every run of ``settings`` on top of ``base`` (folder or pipeline); resumable.

    ``perceptual_dir``: the PerceptualNet folder (needed by ``+perceptual`` variants); ``judge_dir``:
    the world encoder (without it only masked PSNR and box SSIM are scored); ``jobs`` > 1 trains and
    scores that many runs at once in worker processes (a GPU, or a machine with many cores; ``base``
    must then be a folder), after building their shared latent cache here. Writes
    ``run_dir/ablation.json`` and returns the AblationResult.
    """
    if settings.needs_perceptual() and perceptual_dir is None:
        raise ConfigError("a +perceptual variant needs the perceptual network: give perceptual_dir")
    if jobs > 1 and not isinstance(base, (str, Path)):
        raise ConfigError("jobs > 1 loads the base model in every worker: give base as a folder")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pending = [run for run in settings.runs() if not _scored(run_dir, *run, settings, judge_id(judge_dir))]
    if jobs > 1 and len(pending) > 1:
        _run_in_workers(base, run_dir, settings, pending, perceptual_dir, judge_dir, jobs)
    context = _ScoringContext.load(base, settings, perceptual_dir, judge_dir)
    scores: dict[str, dict[str, list]] = {split: {} for split in SPLITS}
    wall: dict[str, float] = {}
    for name, seed in settings.runs():
        run_scores, wall[f"{name}/seed-{seed}"] = _train_and_score(context, run_dir, settings, name, seed)
        for split in SPLITS:
            scores[split].setdefault(name, []).append(run_scores[split])
    real = real_features(context.samples["test"], context.judge) if context.judge is not None else None
    resamples = settings.bootstrap_resamples
    summaries = {"val": {name: summarize_variant(runs, None, resamples) for name, runs in scores["val"].items()}}
    (run_dir / VAL_FILE).write_text(json.dumps(summaries["val"], indent=2))  # selection needs no test interval
    summaries["test"] = {name: summarize_variant(runs, real, resamples) for name, runs in scores["test"].items()}
    comparisons = [row for a, b in comparison_pairs(settings.parsed)
                   for row in compare_variants((a, scores["test"][a]), (b, scores["test"][b]), real, resamples)]
    result = AblationResult(summaries, comparisons, wall)
    (run_dir / RESULTS_FILE).write_text(json.dumps(result.to_json(), indent=2))
    return result


@dataclass
class _ScoringContext:
    """What training and scoring a run needs besides its settings: the base pipeline, the perceptual
    network (or None), the judge (or None) and its ``judge_id``, the world and its val and test samples."""

    base: object
    perceptual: object
    judge: object
    judge_id: str
    world: object
    samples: dict[str, list]

    @classmethod
    def load(cls, base, settings: AblationSettings, perceptual_dir, judge_dir) -> _ScoringContext:
        from tryon_lab.data.world import World
        from tryon_lab.metrics.judge import WorldJudge
        from tryon_lab.models.dtc import PerceptualNet
        from tryon_lab.pipelines.loading import load_inpaint_pipeline

        if isinstance(base, (str, Path)):
            base = load_inpaint_pipeline(base, device="cpu")
        judge = WorldJudge.load(judge_dir) if judge_dir and Path(judge_dir, "config.json").is_file() else None
        perceptual = PerceptualNet.from_pretrained(perceptual_dir) if settings.needs_perceptual() else None
        world = World(settings.world_seed, base.resolution)
        samples = {split: split_samples(world, settings, split) for split in SPLITS}
        return cls(base, perceptual, judge, judge_id(judge_dir), world, samples)


def _scored(run_dir: Path, name: str, seed: int, settings: AblationSettings, judge: str) -> bool:
    """Whether run ``name``/``seed`` is trained (its record written last) and scored on every split as
    ``settings`` score with the judge named ``judge`` (a ``judge_id``); scores made otherwise (another
    judge, other samples or sampler settings) are made again, or grow when they only lack samples (``_grows``)."""
    folder = run_dir / name / f"seed-{seed}"
    return (folder / "pipeline" / TRAINING_RECORD).is_file() and all(
        scoring_of(folder / f"scores-{split}.npz") == settings.scoring(split, judge) for split in SPLITS)


def _train_and_score(context: _ScoringContext, run_dir: Path, settings: AblationSettings, name: str,
                     seed: int) -> tuple[dict[str, dict], float]:
    """({split: per-try-on scores}, training wall seconds) of run ``name``/``seed``: trained, saved
    and scored unless its scores exist, made as these settings and this judge make them (a scored run's
    model is not loaded)."""
    import torch

    folder = run_dir / name / f"seed-{seed}"
    if _scored(run_dir, name, seed, settings, context.judge_id):
        record = json.loads((folder / "pipeline" / TRAINING_RECORD).read_text())
        return {split: load_scores(folder / f"scores-{split}.npz") for split in SPLITS}, float(record["wall_seconds"])
    pipe, wall = _trained(context.base, folder, settings, name, seed, context.perceptual)
    pipe.to("cuda" if torch.cuda.is_available() else "cpu").set_progress_bar_config(disable=True)
    for split in SPLITS:
        path = folder / f"scores-{split}.npz"
        scoring, kept = settings.scoring(split, context.judge_id), scoring_of(path)
        if kept == scoring:
            continue
        start = kept["samples"] if _grows(kept, scoring) else 0
        values = score_run(pipe, settings, context.samples[split], context.judge, context.world, start,
                           progress=f"scoring {name}/seed-{seed} on {split}")
        if start:
            old = load_scores(path)
            values = {key: np.concatenate([old[key], values[key]]) for key in values}
        save_scores(path, values, scoring)
    return {split: load_scores(folder / f"scores-{split}.npz") for split in SPLITS}, wall


def _grows(kept: dict | None, scoring: dict) -> bool:
    """Whether scores made as ``kept`` are the first rows of those ``scoring`` makes: the same scoring
    with fewer samples, a whole number of batches (so every later batch draws the noise one pass over
    all the samples gives it); only the new samples are then sampled and scored."""
    if kept is None or not 0 < kept["samples"] < scoring["samples"] or kept["samples"] % scoring["batch"]:
        return False
    return {**kept, "samples": scoring["samples"]} == scoring


def split_samples(world, settings: AblationSettings, split: str) -> list:
    """The ablation's pairs of ``split``: ``val_samples`` val pairs (selection) or ``eval_samples`` test pairs."""
    return [world.sample(i, split=split) for i in range(settings.val_samples if split == "val" else settings.eval_samples)]


def score_run(pipe, settings: AblationSettings, samples: list, judge, world, start: int = 0,
              progress: str | None = None) -> dict:
    """Per-try-on scores (``score_tryons``) of ``pipe`` on ``samples[start:]``, sampled as the ablation
    samples every run: its steps, guidance, batch and noise seeds (a batch's seed is the world seed plus
    its first index in ``samples``), so two runs' scores pair up; ``progress`` titles a progress bar."""
    samples = samples[start:]
    outputs = dtc_method(pipe, settings.sample_steps, settings.guidance_scale, settings.world_seed + start,
                         settings.eval_batch_size, progress)(samples)
    return score_tryons(samples, outputs, judge, world)


def train_variant(base, folder: Path, settings: AblationSettings, name: str, seed: int, perceptual, cache_dir: Path,
                  steps: int | None = None, lora_dir: Path | None = None):
    """Train (or resume) run ``name``/``seed`` in ``folder`` with the ablation's recipe for that variant
    (to ``steps``, default the recipe's), on the latent cache in ``cache_dir``; ``train_dtc``'s
    (pipeline, LoopResult)."""
    variant = settings.parsed[name]
    train = replace(settings.train, hint_timestep=variant.hint_timestep, steps=steps or settings.train.steps)
    return train_dtc(base, folder, train, fusion=variant.fusion, seed=seed, world_seed=settings.world_seed,
                     perceptual=perceptual if variant.perceptual else None, cache_dir=cache_dir, lora_dir=lora_dir)


def _run_in_workers(base, run_dir: Path, settings: AblationSettings, runs: list[tuple[str, int]], perceptual_dir,
                    judge_dir, jobs: int) -> None:
    """Train and score ``runs`` ``jobs`` at a time, each in a fresh (spawned) process with its share of
    the CPU threads; the shared latent cache is built first, here, so no two workers build it."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.common import make_accelerator
    from tryon_lab.training.dtc.train import dtc_cache

    dtc_cache(make_accelerator(0), load_inpaint_pipeline(base, device="cpu"), settings.train.dataset_size,
              settings.world_seed, run_dir / CACHE_FOLDER)
    threads = max(1, (os.cpu_count() or 1) // min(jobs, len(runs)))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(runs)), mp_context=spawn) as pool:
        futures = [pool.submit(_worker, str(base), str(run_dir), settings, name, seed,
                               None if perceptual_dir is None else str(perceptual_dir),
                               None if judge_dir is None else str(judge_dir), threads) for name, seed in runs]
        for future in futures:
            future.result()  # a worker's error surfaces here, with its traceback


def _worker(base: str, run_dir: str, settings: AblationSettings, name: str, seed: int, perceptual_dir: str | None,
            judge_dir: str | None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    context = _ScoringContext.load(base, settings, perceptual_dir, judge_dir)
    _train_and_score(context, Path(run_dir), settings, name, seed)


def comparison_pairs(variants: dict[str, Variant]) -> list[tuple[str, str]]:
    """(A, B) for every two variants that differ in one factor (fusion, hint timestep, perceptual
    loss): each hint variant against the baseline, FiLM against addition, with against without the
    perceptual loss and the timestep; A is the one with more (film > add > baseline, +t, +perceptual)."""
    rank = {None: 0, "add": 1, "film": 2}
    pairs = []
    names = list(variants)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            va, vb = variants[a], variants[b]
            if va.differs_in_one_factor(vb):
                key_a = (rank[va.fusion], va.hint_timestep, va.perceptual)
                key_b = (rank[vb.fusion], vb.hint_timestep, vb.perceptual)
                pairs.append((a, b) if key_a > key_b else (b, a))
    return pairs


def ensure_weights(base, run_dir: str | Path, settings: AblationSettings, name: str, seed: int,
                   perceptual) -> Path:
    """The ``pipeline`` folder of run ``name``/``seed`` under ``run_dir``, with its weights: retrained
    (same settings and seed) when only the run's record, scores and loss curve were kept (a run's
    weights are not kept between machines; its scores are what the ablation needs). ``perceptual``:
    the PerceptualNet or its folder. Raises ``ConfigError`` when the retrained loss curve differs
    from the kept one: the scores would then describe other weights."""
    from tryon_lab.training.losslog import read_losses

    folder = Path(run_dir) / name / f"seed-{seed}"
    if not (folder / "pipeline" / "model_index.json").is_file():
        kept = read_losses(folder / "losses.csv")
        _trained(base, folder, settings, name, seed, perceptual)
        if kept and read_losses(folder / "losses.csv") != kept:
            raise ConfigError(f"retraining {name}/seed-{seed} did not reproduce the loss curve of the run that was "
                                f"scored; delete {folder} to train and score it again")
    return folder / "pipeline"


def _trained(base, folder: Path, settings: AblationSettings, name: str, seed: int, perceptual):
    """(the run's DTCPipeline, its training wall seconds): loaded from ``folder/pipeline`` or trained and saved there."""
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.training.common import run_record, save_atomically

    saved = folder / "pipeline"
    if (saved / "model_index.json").is_file():
        record = json.loads((saved / TRAINING_RECORD).read_text())
        return DTCPipeline.from_pretrained(saved, local_files_only=True), float(record.get("wall_seconds") or 0.0)
    variant = settings.parsed[name]
    pipe, loop = train_variant(base, folder, settings, name, seed, perceptual, folder.parent.parent / CACHE_FOLDER,
                               lora_dir=folder / LORA_FOLDER)
    train = replace(settings.train, hint_timestep=variant.hint_timestep)  # what the record says it trained
    record = run_record({"variant": name, "seed": seed, "fusion": variant.fusion,
                         "hint_timestep": variant.hint_timestep, "perceptual": variant.perceptual, "unet": train.unet,
                         "steps": loop.steps, "wall_seconds": loop.wall_seconds, "last_losses": loop.last_losses,
                         "settings": asdict(train)})

    def write(tmp: Path) -> None:
        pipe.save_pretrained(tmp, safe_serialization=True)
        (tmp / TRAINING_RECORD).write_text(json.dumps(record, indent=2))

    save_atomically(saved, write)
    return pipe, float(loop.wall_seconds)
