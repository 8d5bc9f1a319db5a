"""``tryon-lab distill``: the recipe behind a pipeline's LCM LoRA (``<pipeline>/lcm``).

The profile's ``[distill]`` section is read and checked before any work (for a Diffuse to Choose
folder, with its ``[distill.dtc]`` overrides: the teacher guides as the DTC sampler does). The LoRA
trains on the world's train split (resuming from the run folder), is scored on val samples against
the model's own 25-step DDIM (the same samples, seeds and judge: all-attribute and identity accuracy
with 95% intervals, their paired differences, and wall time per try-on), and is written with its
card into the model folder beside the weights it was distilled from, atomically.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tryon_lab.errors import ConfigError
from tryon_lab.paths import display_path
from tryon_lab.pipelines.loading import unet_sha256
from tryon_lab.pipelines.samplers import DTC_GUIDANCE, LCM_FOLDER, SAMPLERS
from tryon_lab.profiles import Profile, settings_from_mapping
from tryon_lab.training.common import run_record, write_json
from tryon_lab.training.distill import DistillSettings, distill_lcm, save_lcm
from tryon_lab.training.model_card import write_model_card
from tryon_lab.training.pretrain import TRAINING_RECORD

COMPARED = ("attr_acc_all", "identity_acc")


def distill_settings(profile: Profile, dtc: bool = False) -> tuple[DistillSettings, int]:
    """The profile's checked ``[distill]`` settings (``dtc``: with its ``[distill.dtc]`` overrides) and
    its ``eval_samples`` (val try-ons per sampler); ``ConfigError`` naming a missing section, an
    unknown key or a value out of range."""
    section = dict(profile["distill"])
    overrides = section.pop("dtc", {})
    if dtc:
        section.update(overrides)
    eval_samples = section.pop("eval_samples", 32)
    settings = settings_from_mapping(DistillSettings, section, f"{profile.name}.distill" + ".dtc" * dtc)
    settings.check()
    if eval_samples < 2:
        raise ConfigError(f"[{profile.name}.distill] eval_samples must be >= 2 for an interval, got {eval_samples}")
    return settings, eval_samples


def compare_samplers(pipe, samples, judge, world) -> dict[str, str | float]:
    """Score 4-step LCM against the model's 25-step DDIM on the same ``samples``: each sampler's
    all-attribute and identity accuracy with intervals, the paired differences LCM - DDIM with a
    verdict, wall seconds per try-on and their ratio."""
    from tryon_lab.metrics.inpainting import per_sample_scores, sampler_method
    from tryon_lab.metrics.stats import bootstrap, paired_difference, verdict
    from tryon_lab.pipelines.samplers import use_sampler

    scores, seconds = {}, {}
    for name in ("ddim", "lcm"):
        start = time.perf_counter()
        if getattr(pipe, "image_encoder", None) is not None:  # DTC: guided as its DDIM sampler is
            from tryon_lab.training.dtc.evaluation import dtc_method

            chosen = use_sampler(pipe, name)
            guidance = chosen.guidance_scale if name == "lcm" else DTC_GUIDANCE
            outputs = dtc_method(pipe, chosen.steps, guidance)(samples)
        else:
            outputs = sampler_method(pipe, name)(samples)
        seconds[name] = (time.perf_counter() - start) / len(samples)
        scores[name] = per_sample_scores(samples, outputs, judge, world)
    use_sampler(pipe, "ddim")
    labels = {name: f"{name}{SAMPLERS[name].steps}" for name in scores}
    metrics: dict[str, str | float] = {}
    for metric in COMPARED:
        for name, per_sample in scores.items():
            metrics[f"val_{labels[name]}_{metric}"] = str(bootstrap(np.mean, per_sample[metric]))
        difference = paired_difference(scores["lcm"][metric], scores["ddim"][metric])
        metrics[f"val_lcm_minus_ddim_{metric}"] = (f"{difference} ("
                                                   f"{verdict(difference, False, (labels['lcm'], labels['ddim']))})")
    for name, value in seconds.items():
        metrics[f"{labels[name]}_seconds_per_tryon"] = round(value, 3)
    metrics["lcm_to_ddim_time_ratio"] = round(seconds["lcm"] / seconds["ddim"], 3)
    return metrics


def distill_pipeline(profile: Profile, pipeline_dir: str | Path, run_dir: str | Path,
                     judge_dir: str | Path, seed: int = 0) -> Path:
    """Distil the model in ``pipeline_dir`` (a text pipeline, or a Diffuse to Choose folder) into an
    LCM LoRA (profile ``[distill]``; resumes from ``run_dir``), score it on val samples against 25-step
    DDIM with the judge in ``judge_dir``, and write ``pipeline_dir/lcm`` (weights, training.json,
    MODEL_CARD.md, losses). Returns that folder."""
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.pipelines.loading import is_dtc_folder, load_pipeline
    from tryon_lab.training.common import module_fingerprint
    from tryon_lab.training.pretrain import copy_logs

    dtc = is_dtc_folder(pipeline_dir)
    settings, eval_samples = distill_settings(profile, dtc)
    if not Path(judge_dir, "config.json").is_file():
        raise ConfigError(f"{judge_dir} is not a world-encoder folder (no config.json); the card needs the judge")
    pipe = load_pipeline(pipeline_dir, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    # the LoRA fits only the U-Net it was distilled from: a text pipeline's file, or DTC's fused U-Net
    fitted = ({"unet_fingerprint": module_fingerprint(pipe.unet)} if dtc
              else {"base_unet_sha256": unet_sha256(pipeline_dir)})
    judge = WorldJudge.load(judge_dir)
    pipe, result = distill_lcm(pipe, run_dir, settings, seed)
    world = World(seed, pipe.resolution)
    metrics = compare_samplers(pipe, [world.sample(i, split="val") for i in range(eval_samples)], judge, world)
    record = run_record({"component": "lcm-lora", "base": display_path(pipeline_dir), **fitted,
                         "steps": settings.steps, "wall_seconds": round(result.wall_seconds, 1)})
    what = ("the Diffuse to Choose U-Net (reference tokens and hint as its condition)" if dtc
            else "the inpainting U-Net")
    guided = DTC_GUIDANCE if dtc else SAMPLERS["ddim"].guidance_scale

    def extra(folder: Path) -> None:
        copy_logs(folder, lcm=run_dir)
        write_json(folder / TRAINING_RECORD, {**record, "settings": settings.__dict__, "metrics": metrics})
        write_model_card(
            folder, f"{Path(pipeline_dir).name}/{LCM_FOLDER}: LCM-LoRA of {what}",
            "A LoRA on the U-Net, distilled from the model itself by latent consistency distillation, so that "
            f"{SAMPLERS['lcm'].steps} LCMScheduler steps without classifier-free guidance replace "
            f"{SAMPLERS['ddim'].steps} DDIM steps guided at {guided}. It fits only the U-Net recorded below "
            f"({'its fingerprint: the fused DTC U-Net' if dtc else 'its sha256'}); with the adapter switched off "
            "the pipeline is the model exactly. Scored on val samples (items, people and rooms of the val split), "
            "95% bootstrap intervals.",
            record, metrics, {**settings.__dict__, "eval_samples": eval_samples},
            [f"tryon-lab distill --profile {profile.name} --base {display_path(pipeline_dir)} --judge {display_path(judge_dir)}"])

    return save_lcm(pipe, pipeline_dir, extra)
