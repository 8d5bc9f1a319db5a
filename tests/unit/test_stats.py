"""Bootstrap intervals, paired verdicts (also between inpainting methods), KID / FID on feature vectors
and the noise floor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.data.world import World
from tryon_lab.errors import TryOnInputError
from tryon_lab.metrics.inpainting import evaluate_methods, per_method_scores, summarize
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import (
    InsufficientSamplesError,
    Interval,
    bootstrap,
    fid,
    kid,
    noise_floor,
    paired_difference,
    verdict,
)
from tryon_lab.models.world_encoder import WorldEncoder


def _unbiased_poly_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2 with k(a, b) = (a.b / d + 1)^3, unbiased: self-pairs left out of the within-set sums."""
    kernel = lambda a, b: (a @ b.T / x.shape[1] + 1.0) ** 3
    m = len(x)
    within = (kernel(x, x).sum() - np.trace(kernel(x, x)) + kernel(y, y).sum() - np.trace(kernel(y, y))) / (m * (m - 1))
    return float(within - 2 * kernel(x, y).sum() / m**2)


def test_bootstrap_interval_of_a_mean_is_reproducible_and_about_two_standard_errors_wide():
    values = np.random.default_rng(0).normal(1.0, 1.0, 400)
    interval = bootstrap(np.mean, values)
    assert interval == bootstrap(np.mean, values)
    assert interval.value == pytest.approx(values.mean())
    assert interval.lo < interval.value < interval.hi
    standard_error = values.std(ddof=1) / np.sqrt(len(values))
    assert interval.hi - interval.lo == pytest.approx(2 * 1.96 * standard_error, rel=0.15)
    assert str(Interval(0.5, 0.25, 0.75)) == "0.5 [0.25, 0.75]"


def test_kid_is_torchmetrics_unbiased_polynomial_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 16)), rng.normal(0.3, 1.0, size=(40, 16))
    assert kid(x, y) == pytest.approx(_unbiased_poly_mmd2(x, y), rel=1e-9)
    assert kid(x, x) == pytest.approx(_unbiased_poly_mmd2(x, x), abs=1e-12)


def test_fid_refuses_fewer_than_twice_the_feature_dimension_and_names_the_numbers():
    rng = np.random.default_rng(2)
    with pytest.raises(InsufficientSamplesError, match=r"8-dimensional.*at least 16 .*got 15 real and 40 generated"):
        fid(rng.normal(size=(15, 8)), rng.normal(size=(40, 8)))
    x = rng.normal(size=(16, 8))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_set_statistic_interval_contains_its_value_despite_repeated_samples():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(64, 8)), rng.normal(0.3, 1.0, size=(64, 8))
    for statistic in (kid, fid):
        interval = bootstrap(statistic, x, y, resamples=50)
        assert interval.lo < interval.value < interval.hi


def test_paired_difference_sees_a_small_shift_that_large_per_sample_spread_hides():
    rng = np.random.default_rng(4)
    hard = rng.normal(0.0, 10.0, 100)  # how hard each sample is, shared by both methods
    better, worse = hard + 0.5 + rng.normal(0, 0.1, 100), hard
    assert not bootstrap(np.mean, better).excludes(worse.mean())  # unpaired: hidden by the spread
    difference = paired_difference(better, worse)
    assert difference.lo > 0
    assert verdict(difference, lower_is_better=False, names=("text", "no text")) == "text beats no text"
    assert verdict(difference, lower_is_better=True, names=("text", "no text")) == "no text beats text"
    noise = rng.normal(0, 0.1, 100)
    same = paired_difference(hard + noise - noise.mean(), hard)
    assert verdict(same, lower_is_better=False) == "not distinguishable"


def test_paired_kid_difference_against_shared_real_features_picks_the_closer_method():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 8))
    close, far = real + rng.normal(0, 0.1, real.shape), real + 1.0
    difference = paired_difference(close, far, kid, reference=real, resamples=50)
    assert difference.hi < 0
    assert verdict(difference, lower_is_better=True, names=("close", "far")) == "close beats far"


def test_paired_difference_refuses_misaligned_samples():
    with pytest.raises(TryOnInputError, match="3 and 4 rows"):
        paired_difference(np.zeros(3), np.zeros(4))


def test_noise_floor_of_real_features_is_below_a_shifted_set():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(120, 8))
    floor = noise_floor(real, resamples=50)
    assert floor.lo <= 0.0 <= floor.hi
    assert kid(real[:60], rng.normal(0.5, 1.0, size=(60, 8))) > floor.hi
    fid_floor = noise_floor(rng.normal(size=(64, 8)), fid, resamples=50)
    assert 0.0 <= fid_floor.value < fid_floor.hi
    with pytest.raises(InsufficientSamplesError):
        noise_floor(real[:30], fid)


def test_per_method_scores_align_samples_for_a_paired_verdict():
    torch.manual_seed(0)
    judge = WorldJudge(WorldEncoder.for_world())
    world = World(resolution=64)
    samples = [world.sample(i) for i in range(12)]

    def noisy(amount: int):
        def method(batch):
            rng = np.random.default_rng(amount)
            return [Image.fromarray(np.clip(np.asarray(s.target, np.int16) + rng.integers(-amount, amount + 1, (64, 64, 3)),
                                            0, 255).astype(np.uint8)) for s in batch]
        return method

    methods = {"light": noisy(10), "heavy": noisy(80)}
    values = per_method_scores(methods, samples, judge)
    assert {len(v) for per_sample in values.values() for v in per_sample.values()} == {12}
    assert evaluate_methods(methods, samples, judge) == {name: summarize(v) for name, v in values.items()}
    difference = paired_difference(values["light"]["masked_psnr_db"], values["heavy"]["masked_psnr_db"])
    assert verdict(difference, lower_is_better=False, names=("light", "heavy")) == "light beats heavy"


def test_grouped_bootstrap_carries_the_spread_between_groups_that_independent_rows_hide():
    rng = np.random.default_rng(7)
    # three garments, each with its own effect, 24 cases each: the case-level interval is narrow
    # around the mean of three draws; the grouped one must be wide enough to hold the group effects
    effects = np.repeat([0.1, 0.5, 0.9], 24)
    groups = np.repeat(["tee", "dress", "hoodie"], 24)
    values = effects + rng.normal(0, 0.05, len(effects))
    independent, grouped = bootstrap(np.mean, values), bootstrap(np.mean, values, groups=groups)
    assert grouped.value == independent.value
    assert grouped.hi - grouped.lo > 5 * (independent.hi - independent.lo)
    base = values - effects
    assert paired_difference(values, base, groups=groups).lo < 0.25 < paired_difference(values, base).lo


def test_grouped_bootstrap_refuses_misaligned_or_single_groups():
    values = np.arange(6.0)
    with pytest.raises(TryOnInputError, match="one label per sample: 5 labels for 6 samples"):
        bootstrap(np.mean, values, groups=["a"] * 5)
    with pytest.raises(InsufficientSamplesError, match="at least 2 groups"):
        paired_difference(values, values, groups=["a"] * 6)
    with pytest.raises(TryOnInputError, match="groups apply to one sample set"):
        bootstrap(kid, np.ones((6, 2)), np.ones((6, 2)), groups=list("aabbcc"))
