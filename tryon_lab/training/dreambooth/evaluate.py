"""How well a DreamBooth garment works, measured on things training never saw.

- ``heldout_cases``: the item on *held-out people* (the test split's people, whom no training
  saw; the val split's when a recipe is being tuned), with seen mask kinds (shape, box) and an
  unseen one (``brush``: a loose, hand-drawn-looking region) - the *held-out masks*.
- ``garment_scores``: masked PSNR / box SSIM against the ground truth and, with a judge,
  attribute accuracy, reference similarity and (given the world) identity accuracy among the
  item's caption twins (``metrics.inpainting.score_outputs``), per mask kind. Identity is what
  DreamBooth must add beyond words: twins share a caption.
- ``before_after``: the base model with the class prompt (all it can be told without the
  identifier), the base with the full descriptive caption (an upper reference), and the
  fine-tuned model with the identifier prompt.
- ``prior_diversity``: does the class prompt still give varied garments? Mean pairwise distance
  of world-encoder embeddings and the entropy of predicted colours and patterns.
- ``footprint``: full versus LoRA: trainable parameters, steps per second, size on disk.
- ``ShownReference``: a Diffuse-to-Choose pipeline shown the catalog picture, called like a text
  pipeline, so ``garment_scores`` scores DreamBooth and DTC on the same cases (the paper's
  DreamPaint-vs-DTC comparison).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tryon_lab.data.attributes import ItemSpec
from tryon_lab.data.masks import add_stroke, bounding_box, dilate
from tryon_lab.data.world import World, WorldSample
from tryon_lab.errors import ConfigError
from tryon_lab.metrics.inpainting import per_sample_scores, summarize
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

EVAL_MASK_KINDS = ("shape", "box", "brush")


@dataclass
class HeldOutCase:
    """One evaluation input: a held-out sample and the mask the model is given."""

    sample: WorldSample
    mask: np.ndarray
    mask_kind: str


@dataclass
class Scored:
    """Scores per mask kind (plus "all"), with the generated images, in case order."""

    scores: dict[str, dict[str, float]]
    images: list[Image.Image] = field(default_factory=list)
    cases: list[HeldOutCase] = field(default_factory=list)
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)


def brush_mask(sample: WorldSample, rng: np.random.Generator) -> np.ndarray:
    """A loose region like a user's brush work: the item's shape grown by 3-6% of the image side,
    plus one stroke across its box. Always covers the item."""
    size = sample.shape_mask.shape[0]
    mask = dilate(sample.shape_mask, rng.uniform(0.03, 0.06) * size)
    top, left, bottom, right = bounding_box(sample.shape_mask)
    points = [(rng.uniform(left, right), rng.uniform(top, bottom)) for _ in range(2)]
    add_stroke(mask, points, radius=rng.uniform(0.04, 0.07) * size)
    return mask


def heldout_cases(world: World, item: ItemSpec, n_people: int = 6, mask_kinds: Sequence[str] = EVAL_MASK_KINDS,
                  seed: int = 0, split: str = "test") -> list[HeldOutCase]:
    """``item`` on ``n_people`` people of ``split`` (test to report, val to tune a recipe), once per
    mask kind (shape, box, brush)."""
    if split == "train":
        raise ConfigError("held-out cases come from the val or test people, never the train people")
    samples = world.instance_samples(item, n_people, split)
    rng = np.random.default_rng([world.seed, 11, seed])
    cases = []
    for kind in mask_kinds:
        for sample in samples:
            if kind == "shape":
                mask = sample.shape_mask
            elif kind == "box":
                mask = sample.box_mask
            elif kind == "brush":
                mask = brush_mask(sample, rng)
            else:
                raise ConfigError(f"unknown mask kind {kind!r}; choose from {EVAL_MASK_KINDS}")
            cases.append(HeldOutCase(sample, mask, kind))
    return cases


def generate(pipe, cases: Sequence[HeldOutCase], prompt: str | None, steps: int = 25, guidance_scale: float = TEXT_GUIDANCE,
             seed: int = 0, batch_size: int = 8) -> list[Image.Image]:
    """Inpaint every case's mask on its scene with ``prompt`` (None: each sample's own caption)."""
    outputs: list[Image.Image] = []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start:start + batch_size]
        prompts = [prompt if prompt is not None else c.sample.caption for c in chunk]
        outputs += pipe([c.sample.scene for c in chunk], [c.mask for c in chunk], prompts,
                        num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed + start).images
    return outputs


class ShownReference:
    """``dtc_pipe`` called as ``garment_scores`` calls a text pipeline, ``(scenes, masks, prompts, **kw)``:
    every try-on is shown ``reference`` (the item's catalog picture) and the prompts are ignored.
    DTC needs no fine-tuning per item: this is its zero-shot try-on of the garment."""

    def __init__(self, dtc_pipe, reference: Image.Image) -> None:
        self.pipe = dtc_pipe
        self.reference = reference

    def __call__(self, scenes, masks, prompts, **kwargs):
        return self.pipe(scenes, masks, [self.reference] * len(scenes), **kwargs)


def garment_scores(pipe, cases: Sequence[HeldOutCase], prompt: str | None, judge=None, steps: int = 25,
                   guidance_scale: float = TEXT_GUIDANCE, seed: int = 0, world: World | None = None) -> Scored:
    """Generate and score: {mask kind: score_outputs(...)} plus "all" over every case; with a judge
    and the cases' ``world``, identity accuracy too. ``Scored.per_sample`` keeps "all"'s per-case
    values for paired comparisons."""
    images = generate(pipe, cases, prompt, steps, guidance_scale, seed)
    samples = [c.sample for c in cases]
    per_case = per_sample_scores(samples, images, judge, world)
    scores: dict[str, dict[str, float]] = {}
    for kind in dict.fromkeys(c.mask_kind for c in cases):
        picked = np.array([c.mask_kind == kind for c in cases])
        scores[kind] = summarize({name: values[picked] for name, values in per_case.items()})
    scores["all"] = summarize(per_case, intervals=True)
    return Scored(scores, images, list(cases), per_case)


def before_after(base, tuned, cases: Sequence[HeldOutCase], instance_prompt: str, class_prompt: str, judge=None,
                 steps: int = 25, guidance_scale: float = TEXT_GUIDANCE, seed: int = 0,
                 tuned_name: str = "fine-tuned, identifier", world: World | None = None) -> dict[str, Scored]:
    """Score the base model (class prompt; full caption) and the fine-tuned one (identifier prompt,
    listed as ``tuned_name``) on the same cases and noise. ``base`` and ``tuned`` are pipelines
    (they may be one LoRA pipeline only if the caller switches it; use two objects here)."""
    score = dict(judge=judge, steps=steps, guidance_scale=guidance_scale, seed=seed, world=world)
    return {
        "base, class prompt": garment_scores(base, cases, class_prompt, **score),
        "base, full caption": garment_scores(base, cases, None, **score),
        tuned_name: garment_scores(tuned, cases, instance_prompt, **score),
    }


def _entropy_bits(labels: np.ndarray, classes: int) -> float:
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no "-0.0" for a single class


@torch.no_grad()
def prior_diversity(pipe, world: World, item: ItemSpec, class_prompt: str, judge, n: int = 12, steps: int = 25,
                    guidance_scale: float = TEXT_GUIDANCE, seed: int = 0, split: str = "test") -> Scored:
    """Paint the class prompt on ``n`` held-out people of ``split`` (masks of ``item``'s category) and
    measure how varied the results are: mean pairwise cosine distance of world-encoder embeddings of
    the item crops, and the entropy (bits) of the predicted colours and patterns."""
    from tryon_lab.training.dreambooth.instances import category_scenes

    samples = category_scenes(world, item, n, split)
    cases = [HeldOutCase(s, s.shape_mask, "shape") for s in samples]
    images = generate(pipe, cases, class_prompt, steps, guidance_scale, seed)
    crops = judge.crops(images, [s.shape_mask for s in samples])
    embeddings = judge.encoder.embed(crops)
    cosine = embeddings @ embeddings.T
    off = ~torch.eye(len(samples), dtype=torch.bool)
    predicted = judge.encoder.predict(crops)
    heads = judge.encoder.heads
    scores = {
        "mean_pairwise_distance": float((1.0 - cosine[off]).mean()) if len(samples) > 1 else 0.0,
        "colour_entropy_bits": _entropy_bits(predicted["colour"].numpy(), heads["colour"].out_features),
        "pattern_entropy_bits": _entropy_bits(predicted["pattern"].numpy(), heads["pattern"].out_features),
        "images": float(len(samples)),
    }
    return Scored({"all": scores}, images, cases)


def diversity_ratio(before: Scored, after: Scored) -> dict[str, float]:
    """after / before for each diversity measure (1.0 = as varied as the base model); NaN where the
    base's measure is 0 (e.g. one colour in every image: a class prompt that names the colour)."""
    b, a = before.scores["all"], after.scores["all"]
    return {k: (a[k] / b[k] if b[k] else float("nan")) for k in b if k != "images"}


def footprint(result, saved: str | Path | None = None) -> dict[str, float | int | str]:
    """Full versus LoRA: mode, trainable parameters (and fraction of U-Net + text encoder),
    steps per second, and the saved folder's size on disk in MB."""
    from tryon_lab.training.dreambooth.train import folder_size

    row: dict[str, float | int | str] = {
        "mode": result.mode if not result.settings.lora_rank else f"lora r{result.settings.lora_rank}",
        "trainable_parameters": int(result.trainable_parameters),
        "trainable_fraction": result.trainable_parameters / max(1, result.total_parameters),
        "steps_per_second": round(result.steps_per_second, 3),
    }
    if saved is not None:
        row["size_on_disk_mb"] = round(folder_size(saved) / 2**20, 3)
    return row


@torch.no_grad()
def denoising_loss(pipe, dataset, seed: int = 0, repeats: int = 4, outside_weight: float = 0.1) -> float:
    """Mean masked noise-prediction loss of ``pipe`` on ``dataset`` (PairDataset) with fixed noise and
    timesteps: the same draws for every model, so before/after values compare."""
    from diffusers import DDPMScheduler

    from tryon_lab.pipelines.latents import latent_mask
    from tryon_lab.training.dreambooth.objective import DreamBoothObjective

    objective = DreamBoothObjective(pipe.unet, pipe.text_encoder, pipe.tokenizer,
                                    DDPMScheduler.from_config(pipe.scheduler.config), outside_weight=outside_weight)
    items = [dataset[i] for i in range(len(dataset))]
    pixels = torch.stack([x["pixel_values"] for x in items])
    masks = torch.stack([x["mask"] for x in items])
    latents = pipe.encode_images(pixels)
    batch = {"latents": latents, "masked_latents": pipe.encode_images(torch.stack([x["masked_pixel_values"] for x in items])),
             "mask": latent_mask(masks, latents.shape[-1], pipe.inpaint_rule).to(latents), "caption": [x["caption"] for x in items]}
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return float(torch.stack([objective.per_sample_loss(batch).mean() for _ in range(repeats)]).mean())
    finally:
        torch.random.set_rng_state(state)


def garment_gallery(adapters, cases: Sequence[HeldOutCase], steps: int = 25, guidance_scale: float = TEXT_GUIDANCE,
                    seed: int = 0) -> dict[str, list[Image.Image]]:
    """Takes a ``GarmentAdapters`` and cases; returns {garment name: images}: each loaded garment,
    switched on in turn, painted with its identifier prompt on the same cases and noise. The
    adapters' previous state is restored."""
    gallery = {}
    for name in adapters.names:
        with adapters.use(name) as pipe:
            gallery[name] = generate(pipe, cases, adapters.prompt(name), steps, guidance_scale, seed)
    return gallery
