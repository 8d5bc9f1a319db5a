"""Scoring DTC variants so that the ablation can decide.

Each trained run (variant x seed) makes try-ons of the same world samples with the same sampling
noise: ``val`` samples (the ablation picks its variant there) and ``test`` samples (the reported
table), whose items, people and rooms no training saw (world v2 splits by identity). Per try-on:
masked PSNR, box SSIM and, with the judge, attribute hits, **identity accuracy** (top-1 among the
item's caption twins, ``WorldJudge.identity_hits``) and reference similarity; per set: KID on the
judge's features of the item crops against the real ones (``metrics.stats.kid``; FID too when there
are at least 2 x d samples). A variant's value averages its seeds (per try-on for per-sample
metrics, per seed for KID / FID), with a 95% bootstrap interval over samples and each seed's value
beside it; two variants are compared by a paired bootstrap of their difference and
``stats.verdict`` ("not distinguishable" unless the interval excludes zero).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tryon_lab.errors import ConfigError
from tryon_lab.metrics.stats import (
    FID_SAMPLES_PER_DIMENSION,
    bootstrap,
    fid,
    kid,
    paired_difference,
    verdict,
)
from tryon_lab.pipelines.samplers import DTC_GUIDANCE
from tryon_lab.training.dtc.variants import parse_variant

FEATURES = "features"  # the judge's features of the generated item crops (n, d), stored beside the scores
_SCORING_KEY = "scoring"  # in a scores file: how they were made, as JSON
# metric -> (title, lower is better)
METRICS: dict[str, tuple[str, bool]] = {
    "identity_acc": ("identity acc. (caption twins) ↑", False),
    "attr_acc_all": ("attr. acc. (all) ↑", False),
    "ref_similarity": ("ref. similarity ↑", False),
    "kid_world": ("KID (world enc.) ↓", True),
    "fid_world": ("FID (world enc.) ↓", True),
    "masked_psnr_db": ("masked PSNR dB ↑", False),
    "box_ssim": ("box SSIM ↑", False),
}
SET_METRICS: dict[str, Callable] = {"kid_world": kid, "fid_world": fid}
COMPARED = ("identity_acc", "attr_acc_all", "ref_similarity", "kid_world", "fid_world", "masked_psnr_db")


def dtc_method(pipe, steps: int = 25, guidance_scale: float = DTC_GUIDANCE, seed: int = 0, batch_size: int = 8,
               progress: str | None = None):
    """A ``metrics.inpainting`` Method: each sample's shape mask on its scene, with its reference; with
    ``progress``, a progress bar of that title counts the try-ons made."""
    from tqdm.auto import tqdm

    def run(samples: Sequence) -> list:
        outputs: list = []
        with tqdm(total=len(samples), desc=progress, unit="try-on", disable=progress is None) as bar:
            for start in range(0, len(samples), batch_size):
                chunk = samples[start:start + batch_size]
                result = pipe([s.scene for s in chunk], [s.shape_mask for s in chunk], [s.reference for s in chunk],
                              num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed + start)
                outputs.extend(result.images)
                bar.update(len(chunk))
        return outputs

    return run


def score_tryons(samples: Sequence, outputs: Sequence, judge, world) -> dict[str, np.ndarray]:
    """Per-try-on scores of ``outputs`` (one per sample): masked PSNR and box SSIM, and with a judge
    attribute hits, identity hits, reference similarity and the crops' features (``FEATURES``)."""
    from tryon_lab.metrics.inpainting import per_sample_scores

    values = per_sample_scores(samples, outputs, judge)
    if judge is not None:
        items = [s.item_mask for s in samples]
        values["identity_acc"] = judge.identity_hits(outputs, items, [s.item for s in samples], world).astype(float)
        values[FEATURES] = judge.features(outputs, items)
    return values


def real_features(samples: Sequence, judge) -> np.ndarray:
    """The judge's features of the ground-truth item crops of ``samples`` (what KID compares against)."""
    return judge.features([s.target for s in samples], [s.item_mask for s in samples])


def judge_id(judge_dir: str | Path | None) -> str:
    """What names the judge in a scoring record: its folder's sha256 (first 16 hex), "" without a judge."""
    from tryon_lab.paths import sha256_folder

    return sha256_folder(judge_dir)[:16] if judge_dir and Path(judge_dir, "config.json").is_file() else ""


def save_scores(path: str | Path, values: dict[str, np.ndarray], scoring: dict) -> None:
    """Write per-try-on scores to ``path`` (.npz), atomically, with ``scoring``: how they were made
    (judge, samples, sampler settings; ``AblationSettings.scoring``)."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "wb") as file:
        np.savez(file, **values, **{_SCORING_KEY: np.array(json.dumps(scoring, sort_keys=True))})
    tmp.replace(path)


def load_scores(path: str | Path) -> dict[str, np.ndarray]:
    """Per-try-on scores written by ``save_scores``."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k != _SCORING_KEY}


def scoring_of(path: str | Path) -> dict | None:
    """How the scores at ``path`` were made (``save_scores``' ``scoring``); None when there is no
    such file or it does not say (written before scores recorded it)."""
    if not Path(path).is_file():
        return None
    with np.load(path) as data:
        return json.loads(str(data[_SCORING_KEY])) if _SCORING_KEY in data.files else None


def _set_statistic(metric: Callable, dimension: int) -> Callable:
    """``metric(real, fake)`` averaged over seeds, whose features sit side by side in ``fake`` (n, S x d)."""

    def statistic(real, packed):
        return float(np.mean([metric(real, part) for part in np.split(packed, packed.shape[1] // dimension, axis=1)]))

    return statistic


def _per_sample(runs: Sequence[dict[str, np.ndarray]], metric: str) -> np.ndarray:
    return np.mean([r[metric] for r in runs], axis=0)


def _packed(runs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([r[FEATURES] for r in runs], axis=1)


def _set_metrics(real: np.ndarray | None, n: int) -> list[str]:
    if real is None:
        return []
    return [m for m in SET_METRICS if m != "fid_world" or n >= FID_SAMPLES_PER_DIMENSION * real.shape[1]]


def summarize_variant(runs: Sequence[dict[str, np.ndarray]], real: np.ndarray | None = None,
                      resamples: int = 1000) -> dict[str, float | list[float]]:
    """One variant's scores from its seeds' per-try-on scores (aligned by sample): for each metric its
    value, ``<metric>_lo`` / ``<metric>_hi`` (95% bootstrap over samples) and ``<metric>_seeds``
    (each seed's value); KID (and FID) against ``real`` features when given and the runs have features."""
    summary: dict[str, float | list[float]] = {}
    for metric in METRICS:
        if metric in SET_METRICS:
            if metric not in _set_metrics(real, len(runs[0].get(FEATURES, ()))) or FEATURES not in runs[0]:
                continue
            function = SET_METRICS[metric]
            interval = bootstrap(_set_statistic(function, real.shape[1]), real, _packed(runs), resamples=resamples)
            seeds = [float(function(real, r[FEATURES])) for r in runs]
        elif metric in runs[0]:
            interval = bootstrap(np.mean, _per_sample(runs, metric), resamples=resamples)
            seeds = [float(np.mean(r[metric])) for r in runs]
        else:
            continue
        summary.update({metric: interval.value, f"{metric}_lo": interval.lo, f"{metric}_hi": interval.hi,
                        f"{metric}_seeds": seeds})
    return summary


def compare_variants(a: tuple[str, Sequence[dict[str, np.ndarray]]], b: tuple[str, Sequence[dict[str, np.ndarray]]],
                     real: np.ndarray | None = None, resamples: int = 1000) -> list[dict]:
    """Paired differences A - B (same samples, same sampling noise) of every compared metric both have,
    each with its 95% interval and ``stats.verdict``: [{"a", "b", "metric", "difference", "lo", "hi", "verdict"}].
    KID and FID (the latter only with enough samples) need ``real`` features and both runs' features."""
    (name_a, runs_a), (name_b, runs_b) = a, b
    rows = []
    for metric in COMPARED:
        lower_is_better = METRICS[metric][1]
        if metric in SET_METRICS:
            if FEATURES not in runs_a[0] or FEATURES not in runs_b[0] or \
                    metric not in _set_metrics(real, len(runs_a[0][FEATURES])):
                continue
            interval = paired_difference(_packed(runs_a), _packed(runs_b),
                                         _set_statistic(SET_METRICS[metric], real.shape[1]), reference=real,
                                         resamples=resamples)
        elif metric in runs_a[0] and metric in runs_b[0]:
            interval = paired_difference(_per_sample(runs_a, metric), _per_sample(runs_b, metric), resamples=resamples)
        else:
            continue
        rows.append({"a": name_a, "b": name_b, "metric": metric, "difference": interval.value, "lo": interval.lo,
                     "hi": interval.hi, "verdict": verdict(interval, lower_is_better, (name_a, name_b))})
    return rows


def ablation_table(results: dict[str, dict], baseline: str = "baseline") -> str:
    """A Markdown table of variant scores ({variant: {metric: value}}): each value with its 95%
    interval and its seeds' values when recorded (``summarize_variant``); a column per metric present."""
    present = [(k, title) for k, (title, _) in METRICS.items() if any(k in r for r in results.values())]
    head = ["variant"] + [t for _, t in present]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ordered = sorted(results, key=lambda name: name != baseline)
    for name in ordered:
        lines.append("| " + " | ".join([name] + [format_score(results[name], k) for k, _ in present]) + " |")
    return "\n".join(lines)


def comparisons_table(comparisons: Sequence[dict]) -> str:
    """A Markdown table of ``compare_variants`` rows: A - B with its interval, and the verdict."""
    if not comparisons:
        return "(no two variants differ in exactly one factor: nothing to compare)"
    lines = ["| A | B | metric | A − B [95% interval] | verdict |", "|---|---|---|---|---|"]
    for row in comparisons:
        lines.append(f"| {row['a']} | {row['b']} | {row['metric']} | "
                     f"{_number(row['difference'])} [{_number(row['lo'])}, {_number(row['hi'])}] | {row['verdict']} |")
    return "\n".join(lines)


# The factors the ablation varies one at a time: (title, the side with it, the side without), as the
# prose names them; a comparison's A is always the side with it (``ablation.comparison_pairs``).
FACTORS = {"hint": ("the hint (DTC against the no-hint baseline)", "the hint", "no hint"),
           "fusion": ("FiLM against direct addition", "FiLM", "addition"),
           "perceptual": ("the perceptual loss", "with the loss", "without it"),
           "timestep": ("the hint encoder's timestep", "with the timestep", "without it")}
NOT_DISTINGUISHABLE = "not distinguishable"


def comparison_factor(a: str, b: str) -> str:
    """The factor (a ``FACTORS`` key) in which variants ``a`` and ``b`` differ; ``ConfigError`` for
    unknown names or for two variants that differ in more than one."""
    va, vb = parse_variant(a), parse_variant(b)
    if not va.differs_in_one_factor(vb):
        raise ConfigError(f"{a!r} and {b!r} do not differ in exactly one factor")
    if va.perceptual != vb.perceptual:
        return "perceptual"
    if va.hint_timestep != vb.hint_timestep:
        return "timestep"
    return "hint" if None in (va.fusion, vb.fusion) else "fusion"


def _by_factor(comparisons: Sequence[dict]) -> dict[str, dict[tuple[str, str], list[dict]]]:
    grouped: dict[str, dict[tuple[str, str], list[dict]]] = {}
    for row in comparisons:
        pair = (row["a"], row["b"])
        grouped.setdefault(comparison_factor(*pair), {}).setdefault(pair, []).append(row)
    return {factor: grouped[factor] for factor in FACTORS if factor in grouped}


def factor_tallies(comparisons: Sequence[dict]) -> dict[str, str]:
    """{factor title: "k favour <with>, m favour <without>, n not distinguishable (of N paired comparisons)"}
    for every factor the ``compare_variants`` rows vary, in ``FACTORS`` order."""
    tallies = {}
    for factor, pairs in _by_factor(comparisons).items():
        title, more, less = FACTORS[factor]
        rows = [row for group in pairs.values() for row in group]
        favour_a = sum(row["verdict"] == f"{row['a']} beats {row['b']}" for row in rows)
        favour_b = sum(row["verdict"] == f"{row['b']} beats {row['a']}" for row in rows)
        tallies[title] = (f"{favour_a} favour {more}, {favour_b} favour {less}, {len(rows) - favour_a - favour_b} "
                          f"{NOT_DISTINGUISHABLE} (of {len(rows)} paired comparison{'s' * (len(rows) > 1)})")
    return tallies


def factor_verdicts(comparisons: Sequence[dict]) -> str:
    """Markdown: for each factor the ablation varied, the tally of its paired verdicts
    (``factor_tallies``) and, per pair of variants, what the intervals decide (``compare_variants``
    rows). Reads the verdicts; decides nothing."""
    grouped, tallies = _by_factor(comparisons), factor_tallies(comparisons)
    if not grouped:
        return "(no two variants differ in exactly one factor: nothing to compare)"
    lines = []
    for factor, pairs in grouped.items():
        title = FACTORS[factor][0]
        lines.append(f"**{title[0].upper() + title[1:]}**: {tallies[title]}.")
        for (a, b), group in pairs.items():
            wins = [f"{row['verdict']} on {METRICS[row['metric']][0]} ({_number(row['difference'])} "
                    f"[{_number(row['lo'])}, {_number(row['hi'])}])" for row in group
                    if row["verdict"] != NOT_DISTINGUISHABLE]
            rest = [METRICS[row["metric"]][0] for row in group if row["verdict"] == NOT_DISTINGUISHABLE]
            parts = wins + ([f"{NOT_DISTINGUISHABLE} on {', '.join(rest)}"] if rest else [])
            lines.append(f"- `{a}` against `{b}`: " + "; ".join(parts) + ".")
        lines.append("")
    return "\n".join(lines).strip()


def _number(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.3f}"


def format_score(scores: dict, metric: str) -> str:
    """``metric`` of a summary as text: value [interval] (seeds a / b) when recorded; "" when absent."""
    if metric not in scores:
        return ""
    text = _number(scores[metric])
    if f"{metric}_lo" in scores:
        text += f" [{_number(scores[f'{metric}_lo'])}, {_number(scores[f'{metric}_hi'])}]"
    seeds = scores.get(f"{metric}_seeds") or []
    if len(seeds) > 1:
        text += " (seeds " + " / ".join(_number(s) for s in seeds) + ")"
    return text
