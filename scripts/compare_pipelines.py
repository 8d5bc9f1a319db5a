"""Compare text inpainting pipelines on the same world samples: is a candidate base better than the one
shipped?

Every pipeline inpaints the same samples of one split (val by default: where a base is chosen; test
is for reporting what was chosen) with the same seeds, sampler and guidance; the judge (world encoder)
scores each try-on. Leftover counts only the samples whose new garment uncovers pixels. For each pipeline: all-attribute accuracy, identity accuracy among caption twins,
leftover, masked PSNR and reference similarity, with 95% bootstrap intervals, and KID of its item crops
against the samples' real crops; for each pipeline after the first, its paired difference from the
first on every metric and the verdict ("A beats B" only when the interval excludes zero).

    python scripts/compare_pipelines.py data/models/mini-sd-inpaint runs/quick-c16/pipeline --samples 256

Prints a Markdown table; ``--out FILE`` also writes it there (atomically). ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

METRICS = (  # per-sample score, label, lower is better
    ("attr_acc_all", "all-attribute accuracy", False),
    ("identity_acc", "identity accuracy (caption twins)", False),
    ("leftover", "leftover (uncovered pixels keeping the old garment)", True),
    ("masked_psnr_db", "masked PSNR (dB)", False),
    ("ref_similarity", "reference similarity (world-encoder cosine)", False),
)


def compare(folders: list[Path], judge_dir: Path, split: str, samples: int, steps: int, guidance: float,
            seed: int) -> list[tuple[str, str, str]]:
    """Score every pipeline in ``folders`` on the first ``samples`` samples of ``split`` (the same seeds
    for all) and return (metric, value, note) rows: each pipeline's figures, then each one's paired
    difference from ``folders[0]``. ``ConfigError`` before any sampling when the pipelines' resolutions
    differ or a folder is not a pipeline."""
    import numpy as np

    from tryon_lab.data.world import World
    from tryon_lab.errors import ConfigError
    from tryon_lab.metrics.inpainting import per_sample_scores, pipeline_method, summarize
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.metrics.stats import Interval, bootstrap, kid, paired_difference, verdict
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    for folder in folders:
        if not (folder / "model_index.json").is_file():
            raise ConfigError(f"{folder} is not a pipeline folder (no model_index.json)")
    labels = [str(folder) if folders.count(folder) == 1 else f"{folder} #{index + 1}"
              for index, folder in enumerate(folders)]
    pipes = {label: load_inpaint_pipeline(folder, device="cpu") for label, folder in zip(labels, folders)}
    resolutions = {name: pipe.resolution for name, pipe in pipes.items()}
    if len(set(resolutions.values())) > 1:
        raise ConfigError(f"the pipelines must share one resolution to see the same samples; got {resolutions}")
    for pipe in pipes.values():
        pipe.set_progress_bar_config(disable=True)
    judge = WorldJudge.load(judge_dir)
    world = World(seed=seed, resolution=next(iter(resolutions.values())))
    chosen = [world.sample(i, split=split) for i in range(samples)]
    outputs = {name: pipeline_method(pipe, steps, guidance, seed=seed)(chosen) for name, pipe in pipes.items()}
    scores = {name: per_sample_scores(chosen, images, judge, world) for name, images in outputs.items()}
    masks = [s.item_mask for s in chosen]
    real = judge.features([s.target for s in chosen], masks)
    features = {name: judge.features(images, masks) for name, images in outputs.items()}

    note = f"{samples} {split} samples, DDIM {steps} steps, guidance {guidance:g}, seed {seed}"
    rows = []
    for name in pipes:
        summary = summarize(scores[name], intervals=True)  # each metric over the samples that can say
        for metric, label, _ in METRICS:
            shown = Interval(summary[metric], summary[f"{metric}_lo"], summary[f"{metric}_hi"])
            rows.append((f"{name}: {label}", str(shown), note))
        rows.append((f"{name}: KID against the real crops", str(bootstrap(kid, real, features[name])),
                     "world-encoder features of the item crops"))
    reference, *others = pipes
    for name in others:
        names = (name, reference)
        for metric, label, lower in METRICS:
            a, b = scores[name][metric], scores[reference][metric]
            known = ~(np.isnan(a) | np.isnan(b))  # leftover: NaN on samples that uncover too few pixels
            if known.sum() < 2:
                rows.append((f"{name} minus {reference}: {label}", f"n/a ({known.sum()} samples can say)", ""))
                continue
            difference = paired_difference(a[known], b[known])
            rows.append((f"{name} minus {reference}: {label}", str(difference), verdict(difference, lower, names)))
        difference = paired_difference(features[name], features[reference], kid, reference=real)
        rows.append((f"{name} minus {reference}: KID", str(difference), verdict(difference, True, names)))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, compare, print (and write) the table; return the exit status."""
    from tryon_lab.errors import ConfigError
    from tryon_lab.paths import write_text_atomically
    from tryon_lab.tables import markdown_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="The first pipeline is the reference every other is compared with.")
    parser.add_argument("pipelines", nargs="+", type=Path, metavar="PIPELINE", help="pipeline folders (2 or more)")
    parser.add_argument("--split", choices=("val", "test"), default="val",
                        help="world split of the samples (default: val, where a base is chosen)")
    parser.add_argument("--samples", type=int, default=256, help="try-ons per pipeline (default: 256)")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps (default: 25)")
    parser.add_argument("--guidance", type=float, default=4.0, help="classifier-free guidance (default: 4.0)")
    parser.add_argument("--seed", type=int, default=0, help="world and noise seed (default: 0)")
    parser.add_argument("--judge", type=Path, default=Path("data/models/world-encoder"),
                        help="world encoder folder (default: data/models/world-encoder)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if len(args.pipelines) < 2:
        parser.error("give at least two pipeline folders")
    if args.samples < 2 or args.steps < 1:
        parser.error("--samples must be at least 2 and --steps at least 1")
    try:
        rows = compare(args.pipelines, args.judge, args.split, args.samples, args.steps, args.guidance, args.seed)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = markdown_table(rows, ("metric", "value [95% interval]", "note"))
    print(text, end="")
    if args.out:
        write_text_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
