"""What the mini16 DTC pilot scripts share: the base, judge and variant, training one run and reporting
its scores. Import from a script run as ``PYTHONPATH=. python runs/quick-c16/dtc/<script>.py``."""
import json
import sys
from dataclasses import replace
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


def trained(folder: Path, settings: AblationSettings, steps: int,
            cache_dir: Path = RUNS / "dtc" / "ablation" / CACHE_FOLDER):
    """VARIANT/seed 0 trained (or resumed) in ``folder`` on the mini16 base to ``steps`` (latent cache in
    ``cache_dir``: the ablation's 3000 pairs by default); the DTCPipeline, progress bar off."""
    base = load_inpaint_pipeline(RUNS / "pipeline", device="cpu")
    perceptual = PerceptualNet.from_pretrained(RUNS / "dtc" / "perceptual-net")
    pipe, _ = train_variant(base, folder, settings, VARIANT, 0, perceptual, cache_dir, steps=steps)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def train_and_score(folder: Path, settings: AblationSettings, steps: int, samples,
                    cache_dir: Path = RUNS / "dtc" / "ablation" / CACHE_FOLDER) -> dict[str, np.ndarray]:
    """``trained(folder, settings, steps, cache_dir)``'s per-pair scores on the WorldSample list
    ``samples(world)``, sampled as the ablation samples."""
    pipe = trained(folder, settings, steps, cache_dir)
    world = World(settings.world_seed, pipe.resolution)
    return score_run(pipe, settings, samples(world), WorldJudge.load(JUDGE), world)


OVERFIT = RUNS / "dtc" / "overfit"


def overfit_cache(n: int) -> Path:
    """The latent cache of the first ``n`` train pairs, shared by every overfit run on them (OVERFIT/nN-*)."""
    return OVERFIT / f"n{n}" / "dtc-cache"


def own_cache(folder: Path) -> tuple[AblationSettings, dict]:
    """``ablation_settings()`` and ``trained``'s extra arguments for the run in ``folder``: an overfit run
    (OVERFIT/nN or OVERFIT/nN-NAME) trains on ``overfit_cache(N)`` with dataset_size N; any other on the
    ablation's shared cache."""
    settings = ablation_settings()
    if folder.resolve().parent != OVERFIT.resolve():
        return settings, {}
    n = int(folder.name.split("-")[0].removeprefix("n"))
    return replace(settings, train=replace(settings.train, dataset_size=n)), {"cache_dir": overfit_cache(n)}


def with_recipe(settings: AblationSettings, folder: Path, recipe: dict, fields: dict | None = None) -> AblationSettings:
    """``settings`` with ``fields`` (default: all of ``recipe``; DTCSettings fields) over its [dtc.train];
    ``recipe`` is recorded in ``folder``/recipe.json, and a folder trained with another recipe is refused
    (one recipe per folder, so a resumed run is the same run)."""
    folder.mkdir(parents=True, exist_ok=True)
    recorded = folder / "recipe.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != recipe:
        sys.exit(f"{folder} was trained with {recorded.read_text()}: give this recipe another NAME")
    recorded.write_text(json.dumps(recipe, sort_keys=True))
    return replace(settings, train=replace(settings.train, **(recipe if fields is None else fields)))


def summary(scores: dict[str, np.ndarray]) -> str:
    """Each curve metric's mean and 95% bootstrap interval, on one line."""
    return "; ".join(f"{metric} {bootstrap(np.mean, scores[metric])}" for metric in CURVE_METRICS)
