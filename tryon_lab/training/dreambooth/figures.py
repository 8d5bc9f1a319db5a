"""Figures and tables of notebook 02: the instance set, before/after grids, score and cost tables.

Every function takes results the other ``dreambooth`` modules return and draws or formats them;
none computes a metric (``paired_table``'s intervals are bootstrap statistics of the per-case
scores it is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

from tryon_lab.data.masks import overlay
from tryon_lab.metrics.stats import bootstrap, paired_difference, verdict
from tryon_lab.plotting import NotebookFigure, image_grid
from tryon_lab.tables import format_table
from tryon_lab.training.dreambooth.evaluate import HeldOutCase, Scored
from tryon_lab.training.dreambooth.instances import InstanceSet

SCORE_COLUMNS = {  # score key -> table header
    "identity_acc": "identity",
    "attr_acc_all": "all attributes",
    "attr_acc_colour": "colour",
    "attr_acc_pattern": "pattern",
    "ref_similarity": "ref. similarity",
    "masked_psnr_db": "masked PSNR dB",
}


def instance_grid(instances: InstanceSet, ncols: int = 5, size: float = 1.8) -> NotebookFigure:
    """Takes an instance set; returns a grid of its training pairs (each photo with its mask
    tinted), followed by the item's reference picture."""
    images: list[Image.Image] = [overlay(im, m) for im, m in zip(instances.images, instances.masks)]
    titles = [f"pair {i}" for i in range(len(images))]
    if instances.reference is not None:
        images.append(instances.reference)
        titles.append("reference")
    return image_grid(images, titles, ncols=ncols, size=size)


def comparison_grid(cases: Sequence[HeldOutCase], outputs: Mapping[str, Scored | Sequence[Image.Image]],
                    rows: int = 4, size: float = 1.8) -> NotebookFigure:
    """Takes held-out cases and {column name: Scored (or images in case order)}; returns a grid with
    one row per case (the first ``rows``, spread over the mask kinds): the scene with its mask
    tinted, the ground truth, then each column's output."""
    picked = _spread(cases, rows)
    images: list[Image.Image] = []
    titles: list[str] = []
    for i in picked:
        case = cases[i]
        images += [overlay(case.sample.scene, case.mask), case.sample.target]
        titles += [f"{case.mask_kind} mask", "ground truth"]
        for name, out in outputs.items():
            images.append((out.images if isinstance(out, Scored) else out)[i])
            titles.append(name)
    return image_grid(images, titles, ncols=2 + len(outputs), size=size)


def _spread(cases: Sequence[HeldOutCase], rows: int) -> list[int]:
    """Indices of ``rows`` cases taking the mask kinds in turn (shape, box, brush, shape, ...)."""
    by_kind: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        by_kind.setdefault(case.mask_kind, []).append(i)
    picked: list[int] = []
    depth = 0
    while len(picked) < min(rows, len(cases)):
        for indices in by_kind.values():
            if depth < len(indices) and len(picked) < rows:
                picked.append(indices[depth])
        depth += 1
    return picked


def scores_table(results: Mapping[str, Scored], kinds: Sequence[str] | None = None) -> str:
    """Takes {model name: Scored}; returns a text table, one row per (model, mask kind), with
    attribute accuracies, reference similarity and masked PSNR (columns the scores have)."""
    first = next(iter(results.values())).scores
    kinds = list(kinds or first)
    columns = [k for k in SCORE_COLUMNS if k in first[kinds[0]]]
    rows = []
    for name, scored in results.items():
        for kind in kinds:
            values = scored.scores[kind]
            rows.append([name, kind, *[round(values[c], 3 if c != "masked_psnr_db" else 1) for c in columns]])
    return format_table(rows, ["model", "masks", *[SCORE_COLUMNS[c] for c in columns]])


def paired_table(results: Mapping[str, Scored], against: str, key: str = "identity_acc") -> str:
    """Takes {method: Scored} scored on the same cases (with per-case ``key`` values); returns a text
    table: each method's mean with its 95% bootstrap interval, and each other method minus ``against``,
    paired over the cases, with the verdict the interval allows."""
    reference = results[against].per_sample[key]
    rows = []
    for name, scored in results.items():
        values = scored.per_sample[key]
        if name == against:
            rows.append([name, str(bootstrap(np.mean, values)), "", ""])
            continue
        difference = paired_difference(values, reference)
        rows.append([name, str(bootstrap(np.mean, values)), str(difference),
                     verdict(difference, lower_is_better=False, names=(name, against))])
    header = SCORE_COLUMNS.get(key, key)
    return format_table(rows, ["method", f"{header} [95% interval]", f"minus {against}", "verdict"])


def cost_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Takes ``evaluate.footprint`` rows (optionally with "attr_acc_all"); returns them as a text table."""
    headers = {"mode": "fine-tune", "attr_acc_all": "all-attribute acc.", "trainable_parameters": "trainable params",
               "trainable_fraction": "fraction", "steps_per_second": "steps/s", "size_on_disk_mb": "size on disk MB"}
    keys = [k for k in headers if any(k in r for r in rows)]
    cells = [[_cell(k, r.get(k, "")) for k in keys] for r in rows]
    return format_table(cells, [headers[k] for k in keys])


def _cell(key: str, value: object) -> object:
    if key == "trainable_fraction" and isinstance(value, float):
        return f"{100 * value:.2f}%"
    if key == "trainable_parameters" and isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return round(value, 3)
    return value


def diversity_table(scores: Mapping[str, Scored]) -> str:
    """Takes {model name: ``prior_diversity`` result}; returns a text table of the diversity measures."""
    names = ("mean_pairwise_distance", "colour_entropy_bits", "pattern_entropy_bits")
    rows = [[name, *[round(s.scores["all"][k], 3) for k in names]] for name, s in scores.items()]
    return format_table(rows, ["model (class prompt)", "pairwise distance", "colour entropy bits", "pattern entropy bits"])


def gallery_grid(cases: Sequence[HeldOutCase], gallery: Mapping[str, Sequence[Image.Image]],
                 references: Mapping[str, Image.Image | None], size: float = 1.8) -> NotebookFigure:
    """Takes cases and ``evaluate.garment_gallery``'s {garment: images}; returns a grid: a first row
    of catalog references, then one row per case (the scene with its mask tinted, then each garment)."""
    blank = Image.new("RGB", cases[0].sample.scene.size, "white")
    images: list[Image.Image] = [blank] + [references.get(n) or blank for n in gallery]
    titles = ["catalog"] + [n.replace("garment-", "") for n in gallery]
    for i, case in enumerate(cases):
        images += [overlay(case.sample.scene, case.mask)] + [out[i] for out in gallery.values()]
        titles += [f"{case.mask_kind} mask"] + [""] * len(gallery)
    return image_grid(images, titles, ncols=1 + len(gallery), size=size)
