"""What the mini16 DTC pilot scripts share: the base, judge and variant, training one run and reporting
its scores. Import from a script run as ``PYTHONPATH=. python runs/quick-c16/dtc/<script>.py``."""
from pathlib import Path

import numpy as np

from tryon_lab.data.world import World
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.models.dtc import PerceptualNet
from tryon_lab.pipelines.loading import load_inpaint_pipeline
from tryon_lab.profiles import load_profile
from tryon_lab.training.dtc.ablation import CACHE_FOLDER, AblationSettings, score_run, train_variant
from tryon_lab.training.dtc.curve import CURVE_METRICS
from tryon_lab.training.dtc_recipe import recipe_plan

RUNS, JUDGE, VARIANT = Path("runs/quick-c16"), "data/models/world-encoder", "film+perceptual"


def ablation_settings() -> AblationSettings:
    """The quick profile's ablation settings for VARIANT, judged by JUDGE."""
    return recipe_plan(load_profile("quick"), variants=[VARIANT], judge_dir=JUDGE).ablation


def train_and_score(folder: Path, settings: AblationSettings, steps: int, samples) -> dict[str, np.ndarray]:
    """Train (or resume) VARIANT/seed 0 in ``folder`` on the mini16 base to ``steps``; per-pair scores
    on the WorldSample list ``samples(world)``, sampled as the ablation samples."""
    base = load_inpaint_pipeline(RUNS / "pipeline", device="cpu")
    perceptual = PerceptualNet.from_pretrained(RUNS / "dtc" / "perceptual-net")
    pipe, _ = train_variant(base, folder, settings, VARIANT, 0, perceptual, RUNS / "dtc" / "ablation" / CACHE_FOLDER,
                            steps=steps)
    pipe.set_progress_bar_config(disable=True)
    world = World(settings.world_seed, base.resolution)
    return score_run(pipe, settings, samples(world), WorldJudge.load(JUDGE), world)


def summary(scores: dict[str, np.ndarray]) -> str:
    """Each curve metric's mean and 95% bootstrap interval, on one line."""
    return "; ".join(f"{metric} {bootstrap(np.mean, scores[metric])}" for metric in CURVE_METRICS)
