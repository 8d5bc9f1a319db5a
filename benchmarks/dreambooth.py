"""Issue-4 bars (DreamBooth) on the shipped mini model, with the quick profile's recipe:
base vs full fine-tune vs LoRA on held-out people and masks, prior preservation, cost, and
switching LoRA garments on one base model.

Bars: full fine-tune all-attribute accuracy >= 0.90 on held-out people, or >= 30 points above the
base model (given the class prompt: before fine-tuning it has no word for the garment); LoRA within
5 points of full; prior-preservation diversity (class prompt, held-out people) within 20% of the base
model's, i.e. a ratio >= 0.80; adapter switch <= 0.2 s.

The evaluation is larger than the notebook's (``EVAL_PEOPLE`` held-out people x shape, box and
brush masks; ``DIVERSITY_IMAGES`` class-prompt images), because with 18 cases one case moves the
accuracy by 5.6 points, as much as the LoRA bar allows.

Recipe notes (how the quick profile's values were chosen; red striped tee, 150 steps, judged on
10 held-out people x 3 masks and 16 class-prompt images; ratio = fine-tuned / base):

| run (changes from the previous recipe: full lr 1e-4, LoRA r8 on attention, lr 3e-3, token lr 2e-3, 5 people, 16 class images, prior weight 1) | full acc. | LoRA acc. | full diversity (colour, pattern) | LoRA diversity (colour, pattern) |
|---|---|---|---|---|
| previous recipe | 0.70 | 0.77 | 0.68 (0.52, 0.70) | 0.73 (0.26, 0.59) |
| LoRA on every layer (`lora_targets = "all"`, 560k parameters) | - | 0.77 | - | 0.84 (0.74, 0.64) |
| 48 class images | 0.73 | - | 0.68 (0.26, 0.51) | - |
| token lr 1e-2 (LoRA: all layers) | 0.77 | 0.80 | 0.77 (0.67, 0.91) | 0.86 (0.76, 0.64) |
| 8 people | 0.70 | - | 0.78 (1.00, 0.91) | - |
| 8 people + token lr 1e-2 | 0.80 | 0.73 | 0.77 (0.82, 0.91) | 0.87 (0.76, 0.88) |
| ... + 250 steps | 0.70 | 0.87 | 0.90 (0.74, 0.88) | 0.75 (0.67, 0.93) |
| ... + LoRA rank 16 (150 steps) | - | 0.73 | - | 0.92 (0.92, 0.74) |
| ... + prior weight 2 | 0.60 | 0.73 | 0.95 (0.74, 0.88) | 0.89 (0.96, 0.88) |
| ... + full lr 5e-5 (prior weight 1): **the quick profile now** | 0.70 | 0.73 | 0.96 (1.22, 1.00) | 0.87 (0.76, 0.88) |

One case is 3.3 points of accuracy here, so differences under about 10 points are within the
noise of a 30-case evaluation (the previously reported 94% / 67% were 18-case numbers); this is
why the benchmark below evaluates more cases. "Diversity" is the ratio of mean pairwise
world-encoder distances; the entropies of 16 predicted colours / patterns move in steps of a
single image.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

MODELS = ("mini-sd-inpaint", "world-encoder")

GARMENT = "garment-tee-red-stripes"
MORE_GARMENTS = ("garment-tee-blue-dots", "garment-tee-yellow-checks")  # for the switch timing
EVAL_PEOPLE = 16
DIVERSITY_IMAGES = 24
STEPS, GUIDANCE = 15, 4.0  # sampling, as the quick profile evaluates
SWITCH_REPEATS = 10


def _accuracy_note(scores: dict[str, dict[str, float]]) -> str:
    kinds = [k for k in scores if k != "all"]
    return " / ".join(f"{k} {scores[k]['attr_acc_all']:.2f}" for k in kinds)


def run(profile_name: str = "quick") -> list[tuple[str, object, str]]:
    """Train full and LoRA fine-tunes of ``GARMENT`` with the profile's recipe, evaluate them with
    the base model on held-out people and masks, time adapter switching; return the rows."""
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_inpaint_pipeline
    from tryon_lab.profiles import load_profile
    from tryon_lab.training.adapters import GarmentAdapters
    from tryon_lab.training.dreambooth import (
        DreamBoothSettings, item_from_id, save_dreambooth, train_dreambooth, world_instances,
    )
    from tryon_lab.training.dreambooth.evaluate import (
        before_after, diversity_ratio, footprint, garment_scores, heldout_cases, prior_diversity,
    )

    profile = load_profile(profile_name)
    db = profile["dreambooth"]
    settings = DreamBoothSettings.from_profile(profile)
    lora_settings = replace(settings, lora_rank=db["lora_rank_demo"])
    base_dir = shipped_model(SHIPPED_INPAINT)
    judge = WorldJudge.load(shipped_model("world-encoder"))
    base = load_inpaint_pipeline(base_dir, device="cpu")
    base.set_progress_bar_config(disable=True)
    world = World(0, base.resolution)
    item = item_from_id(GARMENT)
    instances = world_instances(world, item, settings.n_people, mask_kinds=settings.mask_kinds,
                                n_scenes=settings.num_class_images)
    cases = heldout_cases(world, item, EVAL_PEOPLE)
    scoring = {"judge": judge, "steps": STEPS, "guidance_scale": GUIDANCE}

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        class_dir = scratch / "class-images"
        full = train_dreambooth(base_dir, instances, scratch / "full", settings, class_dir=class_dir)
        lora = train_dreambooth(base_dir, instances, scratch / "lora", lora_settings, class_dir=class_dir)
        scored = before_after(base, full.pipe, cases, instances.instance_prompt, instances.class_prompt, **scoring,
                              tuned_name="full fine-tune")
        scored[f"LoRA r{lora_settings.lora_rank}"] = garment_scores(lora.pipe, cases, instances.instance_prompt, **scoring)
        diversity = {name: prior_diversity(pipe, world, item, instances.class_prompt, judge, n=DIVERSITY_IMAGES,
                                           steps=STEPS, guidance_scale=GUIDANCE)
                     for name, pipe in (("base", base), ("full fine-tune", full.pipe), ("LoRA", lora.pipe))}
        saved = {"full fine-tune": save_dreambooth(full, scratch / "out" / "full"),
                 "LoRA": save_dreambooth(lora, scratch / "out" / "lora" / lora.adapter_name)}
        costs = {"full fine-tune": footprint(full, saved["full fine-tune"]), "LoRA": footprint(lora, saved["LoRA"])}

        more = replace(lora_settings, steps=db["adapter_steps"], num_class_images=db["adapter_class_images"])
        for i, item_id in enumerate(MORE_GARMENTS):
            other = world_instances(world, item_from_id(item_id), settings.n_people, token=f"{instances.token}{i + 2}",
                                    mask_kinds=settings.mask_kinds, n_scenes=settings.num_class_images)
            result = train_dreambooth(base_dir, other, scratch / f"more-{i}", more)
            save_dreambooth(result, scratch / "out" / "lora" / result.adapter_name)
        shop = load_inpaint_pipeline(base_dir, device="cpu")
        adapters = GarmentAdapters(shop)
        loaded = adapters.load_all(scratch / "out" / "lora")
        switch = adapters.switch_times(repeats=SWITCH_REPEATS)

    cases_note = f"{len(cases)} cases: {EVAL_PEOPLE} held-out people x shape/box/brush masks"
    rows: list[tuple[str, object, str]] = [
        ("base model", SHIPPED_INPAINT, f"{base.resolution}px; {STEPS} DDIM steps, guidance {GUIDANCE}"),
        ("garment", GARMENT, f"{settings.n_people} people x {'/'.join(settings.mask_kinds)} masks, "
                             f"{settings.steps} steps, {settings.num_class_images} class images, "
                             f"prior weight {settings.prior_weight}"),
    ]
    for name, result in scored.items():
        values = result.scores["all"]
        rows.append((f"{name}: all-attribute accuracy", round(values["attr_acc_all"], 3),
                     f"{_accuracy_note(result.scores)}; {cases_note}"
                     + ("; bar >= 0.90 or base + 30 points" if name == "full fine-tune" else "")))
        rows.append((f"{name}: reference similarity", round(values["ref_similarity"], 3), "world-encoder cosine"))
        rows.append((f"{name}: masked PSNR (dB)", round(values["masked_psnr_db"], 2), "vs the ground-truth photo"))
    full_acc = scored["full fine-tune"].scores["all"]["attr_acc_all"]
    base_acc = scored["base, class prompt"].scores["all"]["attr_acc_all"]
    rows.append(("full fine-tune minus base (class prompt), all-attribute accuracy (points)",
                 round(100 * (full_acc - base_acc), 1), "bar >= 30 (the alternative to >= 0.90); the base given "
                 "the full caption is the harder reference, reported above"))
    lora_acc = scored[f"LoRA r{lora_settings.lora_rank}"].scores["all"]["attr_acc_all"]
    rows.append(("LoRA minus full, all-attribute accuracy (points)", round(100 * (lora_acc - full_acc), 1),
                 f"LoRA rank {lora_settings.lora_rank} on {lora_settings.lora_targets!r} layers; bar >= -5"))
    for name in ("full fine-tune", "LoRA"):
        ratio = diversity_ratio(diversity["base"], diversity[name])
        rows.append((f"{name}: prior diversity ratio (pairwise distance)", round(ratio["mean_pairwise_distance"], 3),
                     f"colour entropy ratio {ratio['colour_entropy_bits']:.2f}, pattern entropy ratio "
                     f"{ratio['pattern_entropy_bits']:.2f}; {DIVERSITY_IMAGES} class-prompt images; bar >= 0.80"))
    base_div = diversity["base"].scores["all"]
    rows.append(("base: class-prompt diversity", round(base_div["mean_pairwise_distance"], 3),
                 f"pairwise distance; colour entropy {base_div['colour_entropy_bits']:.2f} bits, "
                 f"pattern entropy {base_div['pattern_entropy_bits']:.2f} bits"))
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


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    began = time.perf_counter()
    for row in run():
        print(row)
    print(f"{time.perf_counter() - began:.0f} s")
