"""What the mini16 DTC pilot scripts share: the base, judge and variant, training one run and reporting
its scores. Import from a script run as ``PYTHONPATH=. python runs/quick-c16/dtc/<script>.py``."""
import json
import sys
from dataclasses import fields, replace
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
from tryon_lab.training.dtc.train import DTCSettings
from tryon_lab.training.dtc_recipe import recipe_plan

RUNS, JUDGE, VARIANT = Path("runs/quick-c16"), "data/models/world-encoder", "film+perceptual"
DTC_FIELDS = {field.name for field in fields(DTCSettings)}  # a recipe's other keys (e.g. "hint_adapter") are the scripts'


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


def overfit_cache(n: int, layout: str = "rectangle") -> Path:
    """The latent cache of the first ``n`` train pairs with hints in ``layout``, shared by every overfit run
    on them (OVERFIT/nN-*) with that layout."""
    return OVERFIT / f"n{n}" / ("dtc-cache" if layout == "rectangle" else f"dtc-cache-{layout}")


def own_cache(folder: Path, recipe: dict | None = None) -> tuple[AblationSettings, dict]:
    """``ablation_settings()`` with the DTCSettings fields of ``recipe`` (default: the folder's recipe.json; none
    without one; the hint layout "rectangle", the paper's, unless it says) over its [dtc.train], so a script that
    loads a run builds the model and optimizer the run trained, and ``trained``'s extra arguments for the run in
    ``folder``: an overfit run
    (OVERFIT/nN or OVERFIT/nN-NAME) trains on ``overfit_cache(N, layout)`` with dataset_size N; any other on the
    ablation's shared cache, or on its own (``folder``/dtc-cache) when its layout is not the one that cache holds."""
    settings = ablation_settings()
    recorded = folder / "recipe.json"
    if recipe is None:
        recipe = json.loads(recorded.read_text()) if recorded.is_file() else {}
    layout = recipe.get("hint_layout", "rectangle")
    train = replace(settings.train, **{key: value for key, value in recipe.items() if key in DTC_FIELDS})
    if folder.resolve().parent != OVERFIT.resolve():
        return replace(settings, train=train), ({} if layout == "rectangle" else {"cache_dir": folder / "dtc-cache"})
    n = int(folder.name.split("-")[0].removeprefix("n"))
    return replace(settings, train=replace(train, dataset_size=n)), {"cache_dir": overfit_cache(n, layout)}


def record_recipe(folder: Path, recipe: dict) -> None:
    """Record ``recipe`` in ``folder``/recipe.json (``own_cache`` builds the settings from it); a folder trained
    with another recipe is refused (one recipe per folder, so a resumed run is the same run)."""
    folder.mkdir(parents=True, exist_ok=True)
    recorded = folder / "recipe.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != recipe:
        sys.exit(f"{folder} was trained with {recorded.read_text()}: give this recipe another NAME")
    recorded.write_text(json.dumps(recipe, sort_keys=True))


def summary(scores: dict[str, np.ndarray]) -> str:
    """Each curve metric's mean and 95% bootstrap interval, on one line."""
    return "; ".join(f"{metric} {bootstrap(np.mean, scores[metric])}" for metric in CURVE_METRICS)
