"""Score an inpainting method on world samples: masked PSNR / SSIM against the ground truth,
leftover (the old garment kept where the new one shows skin), and the judge's attribute
accuracy, identity accuracy and reference similarity on the generated region.

A per-sample score may be NaN where the sample cannot say (leftover without uncovered pixels);
summaries and intervals are over the samples that can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from tryon_lab.data.world import World, WorldSample
from tryon_lab.metrics.image import box_ssim, masked_psnr
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.leftover import leftover_share
from tryon_lab.metrics.stats import bootstrap
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

Method = Callable[[Sequence[WorldSample]], list[Image.Image]]


def per_sample_scores(samples: Sequence[WorldSample], outputs: Sequence[Image.Image],
                      judge: WorldJudge | None, world: World | None = None) -> dict[str, np.ndarray]:
    """Per try-on: masked PSNR (dB), box SSIM, leftover (NaN where nothing is uncovered) and, with a
    judge, attribute hits and reference similarity; with a judge and the samples' ``world``, identity
    hits (top-1 among caption twins)."""
    masks = [s.shape_mask for s in samples]
    values = {
        "masked_psnr_db": np.array([masked_psnr(o, s.target, m) for o, s, m in zip(outputs, samples, masks)]),
        "box_ssim": np.array([box_ssim(o, s.target, m) for o, s, m in zip(outputs, samples, masks)]),
        "leftover": np.array([leftover_share(o, s.scene, s.target, s.shape_mask, s.item_mask)
                              for o, s in zip(outputs, samples)]),
    }
    if judge is not None:
        # The judge looks where the reference item should now be, not at the union with the old one.
        items = [s.item_mask for s in samples]
        hits = judge.attribute_hits(outputs, items, [s.item for s in samples])
        values.update({f"attr_acc_{name}": h.astype(float) for name, h in hits.items()})
        values["ref_similarity"] = judge.reference_similarities(outputs, items, [s.reference for s in samples])
        if world is not None:
            values["identity_acc"] = judge.identity_hits(outputs, items, [s.item for s in samples], world).astype(float)
    return values


def summarize(values: dict[str, np.ndarray], intervals: bool = False) -> dict[str, float]:
    """Means of per-sample scores; with ``intervals``, each also gets ``<name>_lo`` / ``<name>_hi``,
    its 95% bootstrap interval."""
    scores: dict[str, float] = {}
    for name, per_sample in values.items():
        known = per_sample[~np.isnan(per_sample)]
        scores[name] = float(np.mean(known)) if known.size else float("nan")
        if intervals:
            interval = bootstrap(np.mean, known) if known.size >= 2 else None
            scores[f"{name}_lo"] = interval.lo if interval else float("nan")
            scores[f"{name}_hi"] = interval.hi if interval else float("nan")
    return scores


def score_outputs(samples: Sequence[WorldSample], outputs: Sequence[Image.Image], judge: WorldJudge | None,
                  intervals: bool = False, world: World | None = None) -> dict[str, float]:
    """``summarize`` of ``per_sample_scores``: mean masked PSNR (dB), box SSIM, leftover and, with a
    judge, attribute accuracy, reference similarity (and identity accuracy, given the ``world``)."""
    return summarize(per_sample_scores(samples, outputs, judge, world), intervals)


def pipeline_method(pipe, steps: int = 25, guidance_scale: float = TEXT_GUIDANCE, use_text: bool = True, seed: int = 0,
                    batch_size: int = 8, feather_px: float | None = None) -> Method:
    """A Method that inpaints each sample's shape mask on its scene, prompted by its caption (or ""),
    pasted back with a ``feather_px`` seam (default: the pipeline's)."""

    def run(samples: Sequence[WorldSample]) -> list[Image.Image]:
        outputs: list[Image.Image] = []
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            prompts = [s.caption if use_text else "" for s in chunk]
            result = pipe([s.scene for s in chunk], [s.shape_mask for s in chunk], prompts,
                          num_inference_steps=steps, guidance_scale=guidance_scale if use_text else 1.0,
                          seed=seed + start, feather_px=feather_px)
            outputs.extend(result.images)
        return outputs

    return run


def sampler_method(pipe, sampler: str, steps: int | None = None, seed: int = 0, batch_size: int = 8) -> Method:
    """A Method that switches ``pipe`` to ``sampler`` (``pipelines.samplers``: its default steps
    unless ``steps``, its guidance) before inpainting, so methods of one pipeline can alternate."""
    from tryon_lab.pipelines.samplers import use_sampler

    def run(samples: Sequence[WorldSample]) -> list[Image.Image]:
        chosen = use_sampler(pipe, sampler)
        return pipeline_method(pipe, steps or chosen.steps, chosen.guidance_scale, seed=seed,
                               batch_size=batch_size)(samples)

    return run


def per_method_scores(methods: dict[str, Method], samples: Sequence[WorldSample], judge: WorldJudge | None,
                      world: World | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run every method on the same samples; returns {method name: per-sample scores}, aligned by
    sample so that ``stats.paired_difference`` can compare two methods."""
    return {name: per_sample_scores(samples, method(samples), judge, world) for name, method in methods.items()}


def evaluate_methods(methods: dict[str, Method], samples: Sequence[WorldSample], judge: WorldJudge | None,
                     intervals: bool = False, world: World | None = None) -> dict[str, dict[str, float]]:
    """Run every method on the same samples; returns {method name: scores} (``summarize``)."""
    return {name: summarize(values, intervals)
            for name, values in per_method_scores(methods, samples, judge, world).items()}
