"""DreamBooth bars on the shipped base model, with the profile's recipe: does fine-tuning capture
what words cannot say?

Each garment is a *test* item: its motif (what tells it from its caption twins) was never seen by
the base model, so the base given the full caption can only guess among the twins (chance 1/4).
Full and LoRA fine-tunes train on the garment worn by train-split people and are judged on
test-split people (shape, box and brush masks), against the base with the class prompt and with
the full caption. Bars: identity accuracy (top-1 among the caption twins) of full and LoRA >= the
base given the full caption + 40 points (paired 95% interval over the same cases); prior
preservation keeps the class prompt's variety (diversity ratio >= 0.80); adapter switch <= 0.2 s.
Prior drift (the DreamBooth paper's PRES, read by our judge): each fine-tune is also given the class
prompt alone on the same cases; identity accuracy above the base's there means the class itself now
paints the garment. Unlike the diversity ratio it stays meaningful when the class words are the
whole caption, whose base images all share one colour and pattern.

A fine-tune's success varies from garment to garment far more than from person to person, so the
cases of one garment are not independent samples: every interval is a two-stage bootstrap (garments
with replacement, then each drawn garment's cases), over two garments of each category. Each garment
also gets a row of its own: every arm's identity beside the judge's on the ground truth of the same
people and on its round trip through the base's VAE (a garment whose motif the VAE loses cannot show
what fine-tuning learnt of it).

``python -m benchmarks dreambooth-val`` runs the same protocol on val garments and val people:
that is where a recipe is tuned (the ``quick`` profile's ``[dreambooth]`` values), never on test.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

MODELS = ("mini-sd-inpaint", "world-encoder")

CATEGORIES = ("tee", "dress", "hoodie")
GARMENTS_PER_CATEGORY = 2  # the first of its split in catalog order; 1 -> 2: garment-to-garment spread is measurable
EVAL_PEOPLE = 8  # x 3 masks x 6 garments = 144 cases per model
DIVERSITY_IMAGES = 24
STEPS, GUIDANCE = 15, 4.0  # sampling, as the quick profile evaluates
SWITCH_REPEATS = 10
BAR_POINTS = 40.0


def bar_verdict(difference) -> str:
    """The +BAR_POINTS bar read from a paired interval: met only when its whole 95% interval clears
    the bar; an estimate above it whose interval reaches below is said as such."""
    if 100 * difference.lo >= BAR_POINTS:
        return "met (the whole 95% interval)"
    if 100 * difference.value >= BAR_POINTS:
        return f"the estimate clears it, the 95% interval does not (its lower end {100 * difference.lo:.0f} points)"
    return "not met"


def drift_verdict(difference) -> str:
    """Prior drift read from the paired interval of (fine-tuned minus base) identity under the class prompt."""
    if difference.lo > 0:
        return "drifted: the class prompt now paints this garment more often"
    if difference.hi < 0:
        return "the class prompt paints this garment less often than before"
    return "no drift distinguishable"


def garments(world, split: str) -> list:
    """The benchmark's garments: the first ``GARMENTS_PER_CATEGORY`` ``split`` items of each of ``CATEGORIES``."""
    items = list(world.items("garment", split))
    return [item for category in CATEGORIES
            for item in [item for item in items if item.category == category][:GARMENTS_PER_CATEGORY]]


CLASS_WORDS = ("category", "caption")


def checked_class_words(class_words: str) -> str:
    """``class_words`` if it is one of ``CLASS_WORDS``, else ``ConfigError`` naming them."""
    from tryon_lab.errors import ConfigError

    if class_words not in CLASS_WORDS:
        raise ConfigError(f"class_words {class_words!r} is not one of {', '.join(CLASS_WORDS)}")
    return class_words


def class_word(item, class_words: str) -> str | None:
    """What follows the identifier in the instance prompt: the category ("a sks tee": None, the
    dataset's default) or, with ``class_words`` "caption", the item's whole caption phrase ("a sks red
    striped tee": the identifier then carries only what words cannot say)."""
    return item.caption_phrase if checked_class_words(class_words) == "caption" else None


def arm_settings(profile, overrides: dict | None = None) -> tuple:
    """The full and the LoRA arm's ``DreamBoothSettings``: the profile's ``[dreambooth]`` with
    ``overrides``, the LoRA arm at the profile's ``lora_rank_demo``. A ``lora_rank`` override is the
    LoRA arm's rank; the full arm stays full."""
    from tryon_lab.training.dreambooth import DreamBoothSettings

    overrides = dict(overrides or {})
    lora_rank = overrides.pop("lora_rank", None) or profile["dreambooth"]["lora_rank_demo"]
    full = replace(DreamBoothSettings.from_profile(profile), **overrides)
    return full, replace(full, lora_rank=lora_rank)


def run(profile_name: str = "quick", split: str = "test", overrides: dict | None = None,
        base_dir: str | Path | None = None, class_words: str | None = None) -> list[tuple[str, object, str]]:
    """Fine-tune each garment of ``split`` (full and LoRA, the profile's recipe, with ``overrides`` of its
    DreamBoothSettings fields: how a recipe is tried on val), judge it with the base model on people of
    ``split``, time adapter switching; return the rows. ``base_dir``: the base pipeline folder (default:
    the shipped one; another is how a candidate base is tried on val before it ships). ``class_words``:
    the profile's ``class_words`` unless given (``class_word``)."""
    import numpy as np

    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.metrics.stats import bootstrap, paired_difference, verdict
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.adapters import GarmentAdapters
    from tryon_lab.training.dreambooth import save_dreambooth, train_dreambooth, world_instances
    from tryon_lab.training.dreambooth.evaluate import (
        before_after,
        diversity_ratio,
        footprint,
        garment_scores,
        heldout_cases,
        prior_diversity,
    )

    profile = load_profile(profile_name)
    db = profile["dreambooth"]
    settings, lora_settings = arm_settings(profile, overrides)
    lora_name = f"LoRA r{lora_settings.lora_rank}"
    class_words = checked_class_words(class_words or db["class_words"])
    base_dir = Path(base_dir) if base_dir is not None else shipped_model(SHIPPED_INPAINT)
    judge = WorldJudge.load(shipped_model("world-encoder"))
    base = load_inpaint_pipeline(base_dir, device="cpu")
    base.set_progress_bar_config(disable=True)
    world = World(0, base.resolution)
    scoring = {"judge": judge, "steps": STEPS, "guidance_scale": GUIDANCE, "world": world}
    per_case: dict[str, list[dict[str, np.ndarray]]] = {}
    costs, diversity, ceilings = {}, {}, {}

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for index, item in enumerate(garments(world, split)):
            instances = world_instances(world, item, settings.n_people, token=f"sks{index or ''}",
                                        class_word=class_word(item, class_words),
                                        mask_kinds=settings.mask_kinds, n_scenes=settings.num_class_images)
            cases = heldout_cases(world, item, EVAL_PEOPLE, split=split)
            ceilings[item.item_id] = identity_ceilings(base.vae, judge, world, item, split)
            full = train_dreambooth(base_dir, instances, scratch / f"full-{index}", settings,
                                    class_dir=scratch / f"class-{index}")
            lora = train_dreambooth(base_dir, instances, scratch / f"lora-{index}", lora_settings,
                                    class_dir=scratch / f"class-{index}")
            scored = before_after(base, full.pipe, cases, instances.instance_prompt, instances.class_prompt,
                                  **scoring, tuned_name="full fine-tune")
            scored[lora_name] = garment_scores(lora.pipe, cases, instances.instance_prompt, **scoring)
            for name, tuned in (("full fine-tune", full.pipe), (lora_name, lora.pipe)):
                scored[f"{name}, class prompt"] = garment_scores(tuned, cases, instances.class_prompt, **scoring)
            for name, result in scored.items():
                per_case.setdefault(name, []).append(result.per_sample)
            saved = save_dreambooth(lora, scratch / "out" / "lora" / lora.adapter_name)
            if index == 0:
                costs = {"full fine-tune": footprint(full, save_dreambooth(full, scratch / "out" / "full")),
                         "LoRA": footprint(lora, saved)}
                diversity = {name: prior_diversity(pipe, world, item, instances.class_prompt, judge,
                                                   n=DIVERSITY_IMAGES, steps=STEPS, guidance_scale=GUIDANCE, split=split)
                             for name, pipe in (("base", base), ("full fine-tune", full.pipe), ("LoRA", lora.pipe))}
        shop = load_inpaint_pipeline(base_dir, device="cpu")
        adapters = GarmentAdapters(shop)
        loaded = adapters.load_all(scratch / "out" / "lora")
        switch = adapters.switch_times(repeats=SWITCH_REPEATS)

    values = {name: {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
              for name, parts in per_case.items()}
    garment_of_case = np.concatenate([np.full(len(part["identity_acc"]), index)
                                      for index, part in enumerate(per_case["full fine-tune"])])
    cases_note = (f"{len(garment_of_case)} {split} cases: {GARMENTS_PER_CATEGORY} each of {', '.join(CATEGORIES)} "
                  f"({split} items) x {EVAL_PEOPLE} {split} people x shape/box/brush masks; interval over "
                  "garments, then cases")
    rows: list[tuple[str, object, str]] = [
        ("base model", SHIPPED_INPAINT if base_dir == shipped_model(SHIPPED_INPAINT) else str(base_dir), f"{base.resolution}px; {STEPS} DDIM steps, guidance {GUIDANCE}"),
        ("garments", ", ".join(item.item_id for item in garments(world, split)),
         f"{settings.n_people} train people x {'/'.join(settings.mask_kinds)} masks each, {_steps(settings, lora_settings)}, "
         f"{settings.num_class_images} class images, prior weight {settings.prior_weight}; instance prompts "
         f"such as '{instances.instance_prompt}' (class words: {class_words})"),
    ]
    for name, per_sample in values.items():
        for key, label in (("identity_acc", "identity accuracy (caption twins, chance 0.25)"),
                           ("attr_acc_all", "all-attribute accuracy"), ("ref_similarity", "reference similarity")):
            rows.append((f"{name}: {label}", str(bootstrap(np.mean, per_sample[key], groups=garment_of_case)),
                         cases_note))
    reference = values["base, full caption"]["identity_acc"]
    for name in ("full fine-tune", lora_name):
        difference = paired_difference(values[name]["identity_acc"], reference, groups=garment_of_case)
        rows.append((f"{name} minus base (full caption): identity accuracy", str(difference),
                     f"{verdict(difference, lower_is_better=False, names=(name, 'base, full caption'))}; paired over "
                     f"the same cases, garments then cases; bar >= +{BAR_POINTS:.0f} points: {bar_verdict(difference)}"))
    for index, (item_id, ceiling) in enumerate(ceilings.items()):
        arms = ("full fine-tune", lora_name, "base, full caption")
        rows.append((f"{item_id}: identity accuracy of {' / '.join(arms)}",
                     " / ".join(f"{per_case[name][index]['identity_acc'].mean():.2f}" for name in arms),
                     f"its {len(per_case[arms[0]][index]['identity_acc'])} cases; the judge on their ground truth "
                     f"{ceiling['ground truth']:.2f}, on their round trip through the base's VAE {ceiling['round trip']:.2f} "
                     "(what an encoded photo keeps of the motif: a guide, not a bound, since a try-on's latent is "
                     "sampled, not encoded)"))
    class_reference = values["base, class prompt"]["identity_acc"]
    for name in ("full fine-tune", lora_name):
        drift = paired_difference(values[f"{name}, class prompt"]["identity_acc"], class_reference,
                                  groups=garment_of_case)
        rows.append((f"{name} minus base, both given the class prompt: identity accuracy", str(drift),
                     "prior drift (DreamBooth's PRES): how much more often the class prompt alone paints this "
                     f"garment after fine-tuning (0: the class kept); {drift_verdict(drift)}; paired, garments "
                     "then cases"))
    for name in ("full fine-tune", "LoRA"):
        ratio = diversity_ratio(diversity["base"], diversity[name])
        rows.append((f"{name}: prior diversity ratio (pairwise distance)", round(ratio["mean_pairwise_distance"], 3),
                     f"colour entropy ratio {_ratio(ratio['colour_entropy_bits'])}, pattern entropy ratio "
                     f"{_ratio(ratio['pattern_entropy_bits'])}; {DIVERSITY_IMAGES} class-prompt images ({split} people); "
                     "bar >= 0.80"))
    for name, cost in costs.items():
        rows.append((f"{name}: trainable parameters", cost["trainable_parameters"],
                     f"{100 * cost['trainable_fraction']:.2f}% of U-Net + text encoder"))
        rows.append((f"{name}: steps/s", cost["steps_per_second"], f"batch {settings.batch_size} + "
                     f"{settings.batch_size} class; CPU, {_threads()} threads"))
        rows.append((f"{name}: size on disk (MB)", cost["size_on_disk_mb"],
                     "pipeline folder, fp16" if name == "full fine-tune" else "adapter + identifier embedding, fp32"))
    rows.append(("adapter switch, mean (ms)", round(1000 * switch["mean_s"], 2),
                 f"max {1000 * switch['max_s']:.1f} ms over {switch['switches']:.0f} switches, "
                 f"{len(loaded)} LoRA garments on one base; bar <= 200 ms"))
    return rows


def identity_ceilings(vae, judge, world, item, split: str) -> dict[str, float]:
    """Identity accuracy (mean over ``item`` worn by the ``EVAL_PEOPLE`` held-out people of ``split``, the
    cases' people) of the renderings themselves ("ground truth") and of their round trip through ``vae``
    ("round trip"): what the judge and the latent space leave of this garment's motif."""
    from tryon_lab.metrics.baselines import vae_round_trip

    samples = world.instance_samples(item, EVAL_PEOPLE, split)
    drawn, crops, items = [s.target for s in samples], [s.item_mask for s in samples], [s.item for s in samples]
    return {name: float(judge.identity_hits(images, crops, items, world).mean())
            for name, images in (("ground truth", drawn), ("round trip", vae_round_trip(vae, drawn)))}


def _steps(full, lora) -> str:
    """"N steps" of the full arm, with the LoRA arm's count when it trains another number of them."""
    return f"{full.steps} steps" + ("" if lora.train_steps == full.steps else f" (LoRA {lora.train_steps})")


def _ratio(value: float) -> str:
    import math

    return "n/a (the base's images all share it)" if math.isnan(value) else f"{value:.2f}"


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    began = time.perf_counter()
    for row in run():
        print(row)
    print(f"{time.perf_counter() - began:.0f} s")
