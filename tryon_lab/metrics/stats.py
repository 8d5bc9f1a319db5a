"""Statistics that decide: bootstrap intervals, paired differences with a verdict, and KID / FID on
given feature vectors (the judge's: ``WorldJudge.features``), with the noise floor of real images.

Every interval is a 95% bootstrap over ``RESAMPLES`` resamples drawn with a fixed ``SEED``, so the
same inputs always give the same interval: the resamples' 2.5th and 97.5th percentiles, shifted by
the bootstrap's estimate of the statistic's bias (mean of the resamples minus the value). The shift
is negligible for a mean, but set statistics such as KID and FID grow when a resample repeats
samples (a repeated feature vector counts as its own neighbour), and unshifted percentiles of FID
can miss the value itself.

Samples that come in groups (e.g. try-ons of a few garments, each on many people) are not
independent: with ``groups``, a resample draws the groups with replacement and then each drawn
group's samples with replacement (a two-stage bootstrap), so the interval carries the spread
between groups as well as within them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from tryon_lab.errors import TryOnInputError

RESAMPLES = 1000  # percentiles of 1000 resamples move by well under their interval's width between seeds
SEED = 0
LEVEL = 0.95
FID_SAMPLES_PER_DIMENSION = 2  # FID's d x d covariances are unstable unless n is well above d

Statistic = Callable[..., float]


class InsufficientSamplesError(TryOnInputError):
    """Too few samples for the statistic asked for (e.g. FID on fewer than 2 x d feature vectors)."""


@dataclass(frozen=True)
class Interval:
    """A statistic on the given samples and its bootstrap interval [lo, hi]."""

    value: float
    lo: float
    hi: float

    def excludes(self, point: float = 0.0) -> bool:
        """True when ``point`` lies outside [lo, hi]."""
        return point < self.lo or point > self.hi

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def _rows(values) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if len(array) < 2:
        raise InsufficientSamplesError(f"a bootstrap needs at least 2 samples per set; got {len(array)}")
    return array


def _resample_index(rng: np.random.Generator, n: int, members: list[np.ndarray] | None) -> np.ndarray:
    """Row indices of one resample of ``n`` rows: independent rows, or (``members``: each group's row
    indices) groups drawn with replacement, then rows with replacement within each drawn group."""
    if members is None:
        return rng.integers(0, n, n)
    drawn = rng.integers(0, len(members), len(members))
    return np.concatenate([rows[rng.integers(0, len(rows), len(rows))] for rows in (members[i] for i in drawn)])


def _group_members(groups, n: int) -> list[np.ndarray] | None:
    """Each group's row indices from ``groups`` (one label per sample), or None without groups."""
    if groups is None:
        return None
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise TryOnInputError(f"groups must give one label per sample: {labels.shape[0] if labels.ndim else 0} "
                              f"labels for {n} samples")
    members = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    if len(members) < 2:
        raise InsufficientSamplesError("a grouped bootstrap needs at least 2 groups; got 1")
    return members


def _interval(value: float, resampled: list[float], level: float) -> Interval:
    bias = float(np.mean(resampled)) - value
    lo, hi = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2]) - bias
    return Interval(float(value), float(lo), float(hi))


def bootstrap(statistic: Statistic, *samples, groups=None, resamples: int = RESAMPLES, seed: int = SEED,
              level: float = LEVEL) -> Interval:
    """``statistic(*samples)`` with its bootstrap interval; each sample set (per-sample values, or
    feature rows for a set statistic such as ``kid``) is resampled with replacement on its own.
    ``bootstrap(np.mean, per_sample_psnr)``, ``bootstrap(kid, real_features, fake_features)``.
    ``groups`` (one label per sample, one sample set only): the two-stage bootstrap of groups."""
    sets = [_rows(s) for s in samples]
    if groups is not None and len(sets) != 1:
        raise TryOnInputError(f"groups apply to one sample set; got {len(sets)}")
    members = _group_members(groups, len(sets[0]))
    rng = np.random.default_rng(seed)
    resampled = [float(statistic(*(s[_resample_index(rng, len(s), members)] for s in sets)))
                 for _ in range(resamples)]
    return _interval(float(statistic(*sets)), resampled, level)


def paired_difference(a, b, statistic: Statistic = np.mean, *, reference=None, groups=None,
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> Interval:
    """``statistic(a) - statistic(b)`` for two methods scored on the same samples (row i of ``a`` and
    ``b`` is the same sample), resampling samples with the same indices for both; with ``reference``
    (e.g. real features aligned with the samples), ``statistic(reference, a) - statistic(reference, b)``;
    with ``groups`` (one label per sample), the two-stage bootstrap of groups."""
    a, b = _rows(a), _rows(b)
    if len(a) != len(b) or (reference is not None and len(_rows(reference)) != len(a)):
        raise TryOnInputError(f"paired samples must align: {len(a)} and {len(b)} rows"
                              + ("" if reference is None else f", reference {len(reference)}"))
    context = () if reference is None else (_rows(reference),)
    members = _group_members(groups, len(a))

    def difference(index) -> float:
        picked = [c[index] for c in context]
        return float(statistic(*picked, a[index])) - float(statistic(*picked, b[index]))

    rng = np.random.default_rng(seed)
    resampled = [difference(_resample_index(rng, len(a), members)) for _ in range(resamples)]
    return _interval(difference(np.arange(len(a))), resampled, level)


def verdict(difference: Interval, lower_is_better: bool, names: tuple[str, str] = ("A", "B")) -> str:
    """"A beats B" (or "B beats A") when the interval of A - B excludes zero on that side, else "not
    distinguishable"; for lower-is-better metrics (KID, FID) A beats B when A - B is below zero."""
    better, worse = names
    if not difference.excludes(0.0):
        return "not distinguishable"
    a_lower = difference.hi < 0
    return f"{better} beats {worse}" if a_lower == lower_is_better else f"{worse} beats {better}"


class _Given(torch.nn.Module):
    """Lets torchmetrics' KID and FID take feature vectors instead of images."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _tensor(features) -> torch.Tensor:
    return torch.as_tensor(np.asarray(features, dtype=np.float64))


def kid(real, fake) -> float:
    """KID (torchmetrics' unbiased polynomial-kernel MMD^2, degree 3, gamma 1/d, coef 1) between two
    sets of feature vectors (n, d); one subset of min(n_real, n_fake) rows, which is every row of
    both sets when their sizes match."""
    real, fake = _tensor(real), _tensor(fake)
    size = min(len(real), len(fake))
    if size < 2:
        raise InsufficientSamplesError(f"KID needs at least 2 feature vectors per set; got {len(real)} and {len(fake)}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=1, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():  # the subset draw (only a choice when sizes differ) must not move the caller's RNG
        torch.manual_seed(SEED)
        return float(metric.compute()[0])


def fid(real, fake) -> float:
    """FID (torchmetrics) between two sets of feature vectors (n, d); refused with
    ``InsufficientSamplesError`` unless each set has at least ``FID_SAMPLES_PER_DIMENSION`` x d rows.
    FID is biased upward at finite n, so compare methods at the same n (``paired_difference``)."""
    real, fake = _tensor(real), _tensor(fake)
    dimension = real.shape[1]
    needed = FID_SAMPLES_PER_DIMENSION * dimension
    if min(len(real), len(fake)) < needed:
        raise InsufficientSamplesError(
            f"FID on {dimension}-dimensional features needs at least {needed} samples per set "
            f"({FID_SAMPLES_PER_DIMENSION} x d); got {len(real)} real and {len(fake)} generated: "
            "use more samples or KID")
    metric = FrechetInceptionDistance(feature=_Given(dimension), normalize=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def noise_floor(real, statistic: Statistic = kid, *, resamples: int = RESAMPLES, seed: int = SEED,
                level: float = LEVEL) -> Interval:
    """What ``statistic`` (``kid`` or ``fid``) gives between two disjoint random halves of real
    feature vectors, with its bootstrap interval: a method's score inside it is indistinguishable
    from real images."""
    rows = _rows(real)
    order = np.random.default_rng(seed).permutation(len(rows))
    half = len(rows) // 2
    return bootstrap(statistic, rows[order[:half]], rows[order[half:2 * half]], resamples=resamples, seed=seed,
                     level=level)
