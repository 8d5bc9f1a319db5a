"""Score an inpainting method on world samples: masked PSNR / SSIM against the ground truth and
the judge's attribute accuracy and reference similarity on the generated region."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from tryon_lab.data.world import WorldSample
from tryon_lab.metrics.image import box_ssim, masked_psnr
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.metrics.stats import bootstrap

Method = Callable[[Sequence[WorldSample]], list[Image.Image]]


def per_sample_scores(samples: Sequence[WorldSample], outputs: Sequence[Image.Image],
                      judge: WorldJudge | None) -> dict[str, np.ndarray]:
    """Per try-on: masked PSNR (dB), box SSIM and, with a judge, attribute hits and reference similarity."""
    masks = [s.shape_mask for s in samples]
    values = {
        "masked_psnr_db": np.array([masked_psnr(o, s.target, m) for o, s, m in zip(outputs, samples, masks)]),
        "box_ssim": np.array([box_ssim(o, s.target, m) for o, s, m in zip(outputs, samples, masks)]),
    }
    if judge is not None:
        # The judge looks where the reference item should now be, not at the union with the old one.
        items = [s.item_mask for s in samples]
        hits = judge.attribute_hits(outputs, items, [s.item for s in samples])
        values.update({f"attr_acc_{name}": h.astype(float) for name, h in hits.items()})
        values["ref_similarity"] = judge.reference_similarities(outputs, items, [s.reference for s in samples])
    return values


def summarize(values: dict[str, np.ndarray], intervals: bool = False) -> dict[str, float]:
    """Means of per-sample scores; with ``intervals``, each also gets ``<name>_lo`` / ``<name>_hi``,
    its 95% bootstrap interval."""
    scores: dict[str, float] = {}
    for name, per_sample in values.items():
        scores[name] = float(np.mean(per_sample))
        if intervals:
            interval = bootstrap(np.mean, per_sample)
            scores[f"{name}_lo"], scores[f"{name}_hi"] = interval.lo, interval.hi
    return scores


def score_outputs(samples: Sequence[WorldSample], outputs: Sequence[Image.Image], judge: WorldJudge | None,
                  intervals: bool = False) -> dict[str, float]:
    """Mean masked PSNR (dB), box SSIM and, with a judge, attribute accuracy and reference similarity
    (``summarize`` of ``per_sample_scores``)."""
    return summarize(per_sample_scores(samples, outputs, judge), intervals)


def pipeline_method(pipe, steps: int = 25, guidance_scale: float = 4.0, use_text: bool = True, seed: int = 0,
                    batch_size: int = 8) -> Method:
    """A Method that inpaints each sample's shape mask on its scene, prompted by its caption (or "")."""

    def run(samples: Sequence[WorldSample]) -> list[Image.Image]:
        outputs: list[Image.Image] = []
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            prompts = [s.caption if use_text else "" for s in chunk]
            result = pipe([s.scene for s in chunk], [s.shape_mask for s in chunk], prompts,
                          num_inference_steps=steps, guidance_scale=guidance_scale if use_text else 1.0,
                          seed=seed + start)
            outputs.extend(result.images)
        return outputs

    return run


def per_method_scores(methods: dict[str, Method], samples: Sequence[WorldSample],
                      judge: WorldJudge | None) -> dict[str, dict[str, np.ndarray]]:
    """Run every method on the same samples; returns {method name: per-sample scores}, aligned by
    sample so that ``stats.paired_difference`` can compare two methods."""
    return {name: per_sample_scores(samples, method(samples), judge) for name, method in methods.items()}


def evaluate_methods(methods: dict[str, Method], samples: Sequence[WorldSample], judge: WorldJudge | None,
                     intervals: bool = False) -> dict[str, dict[str, float]]:
    """Run every method on the same samples; returns {method name: scores} (``summarize``)."""
    return {name: summarize(values, intervals) for name, values in per_method_scores(methods, samples, judge).items()}
