"""``tryon-lab distill-vae``: the recipe behind a pipeline's fast VAE (``<pipeline>/fast_vae``).

The profile's ``[fast_vae]`` section is read and checked before any work. The fast VAE trains
against the pipeline's VAE on the world's train split (resuming from the run folder) and is scored
on val samples: its reconstructions against the base VAE's, both VAEs' encode + decode time, and,
when the pipeline has an LCM LoRA, 4-step LCM try-ons with each VAE (the same samples, seeds and
judge; paired differences with a verdict). It is written with its card into the pipeline folder,
atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tryon_lab.errors import ConfigError
from tryon_lab.paths import display_path
from tryon_lab.pipelines.samplers import FAST_VAE_FOLDER, SAMPLERS
from tryon_lab.profiles import Profile, settings_from_mapping
from tryon_lab.training.common import run_record, write_json
from tryon_lab.training.fast_vae import (
    POLISH_RUN,
    FastVAESettings,
    codec_seconds,
    distil_fast_vae,
    reconstruction_scores,
)
from tryon_lab.training.model_card import write_model_card
from tryon_lab.training.pretrain import TRAINING_RECORD

COMPARED = ("attr_acc_all", "identity_acc")


def fast_vae_settings(profile: Profile) -> tuple[FastVAESettings, int]:
    """The profile's ``[fast_vae]`` settings and its ``eval_samples`` (val samples scored);
    ``ConfigError`` naming a missing section, an unknown key or a count too small for an interval."""
    section = dict(profile["fast_vae"])
    eval_samples = section.pop("eval_samples", 64)
    if eval_samples < 2:
        raise ConfigError(f"[{profile.name}.fast_vae] eval_samples must be >= 2 for an interval, got {eval_samples}")
    return settings_from_mapping(FastVAESettings, section, f"{profile.name}.fast_vae"), eval_samples


def compare_lcm_vaes(pipe, samples, judge, world) -> dict[str, str]:
    """4-step LCM try-ons of ``samples`` decoded by the base VAE and by ``pipe.fast_vae``: each one's
    all-attribute and identity accuracy with intervals, and the paired differences fast - base."""
    from tryon_lab.metrics.inpainting import per_sample_scores, sampler_method
    from tryon_lab.metrics.stats import bootstrap, paired_difference, verdict

    fast, scores = pipe.fast_vae, {}
    for name, vae in (("base_vae", None), ("fast_vae", fast)):
        pipe.fast_vae = vae
        scores[name] = per_sample_scores(samples, sampler_method(pipe, "lcm")(samples), judge, world)
    pipe.fast_vae = fast
    metrics: dict[str, str] = {}
    for metric in COMPARED:
        for name, per_sample in scores.items():
            metrics[f"val_lcm4_{name}_{metric}"] = str(bootstrap(np.mean, per_sample[metric]))
        difference = paired_difference(scores["fast_vae"][metric], scores["base_vae"][metric])
        metrics[f"val_lcm4_fast_minus_base_{metric}"] = (
            f"{difference} ({verdict(difference, False, ('fast VAE', 'base VAE'))})")
    return metrics


def distil_pipeline_vae(profile: Profile, pipeline_dir: str | Path, run_dir: str | Path, judge_dir: str | Path,
                        seed: int = 0) -> Path:
    """Distil the VAE of the pipeline in ``pipeline_dir`` into a fast VAE (profile ``[fast_vae]``;
    resumes from ``run_dir``), score it on val samples (with the judge in ``judge_dir``), and write
    ``pipeline_dir/fast_vae`` (weights, training.json, MODEL_CARD.md, losses). Returns that folder."""
    from tryon_lab.data.world import World
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.metrics.stats import bootstrap
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.pipelines.samplers import load_lcm
    from tryon_lab.training.common import save_atomically
    from tryon_lab.training.pretrain import copy_logs, save_pipeline

    settings, eval_samples = fast_vae_settings(profile)
    if not Path(judge_dir, "config.json").is_file():
        raise ConfigError(f"{judge_dir} is not a world-encoder folder (no config.json); the card needs the judge")
    pipe = load_inpaint_pipeline(pipeline_dir, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    settings.check(pipe.vae)
    fast, wall_seconds = distil_fast_vae(pipe.vae, run_dir, settings, pipe.resolution, seed)

    world = World(seed, pipe.resolution)
    samples = [world.sample(i, split="val") for i in range(eval_samples)]
    metrics: dict[str, object] = {}
    for name, values in reconstruction_scores(fast, pipe.vae, samples).items():
        metrics[f"val_{name}"] = str(bootstrap(np.mean, values))
    seconds = {"base": codec_seconds(pipe.vae, pipe.resolution), "fast": codec_seconds(fast, pipe.resolution)}
    metrics.update({f"{name}_vae_encode_decode_seconds": round(value, 4) for name, value in seconds.items()})
    metrics["fast_to_base_time_ratio"] = round(seconds["fast"] / seconds["base"], 3)
    if load_lcm(pipe, pipeline_dir):
        pipe.fast_vae = fast
        metrics.update(compare_lcm_vaes(pipe, samples, WorldJudge.load(judge_dir), world))

    params = sum(p.numel() for p in fast.parameters())
    record = run_record({"component": "fast-vae", "base": display_path(pipeline_dir), "steps": settings.steps,
                         "polish_steps": settings.polish_steps, "parameters": params,
                         "wall_seconds": round(wall_seconds, 1)})

    def write(tmp: Path) -> None:
        save_pipeline(fast, tmp)
        copy_logs(tmp, fast_vae=run_dir, fast_vae_polish=Path(run_dir) / POLISH_RUN)
        write_json(tmp / TRAINING_RECORD, {**record, "settings": settings.__dict__, "metrics": metrics})
        write_model_card(
            tmp, f"{Path(pipeline_dir).name}/{FAST_VAE_FOLDER}: the fast VAE of the {SAMPLERS['lcm'].label} sampler",
            f"A narrower AutoencoderKL ({params / 1e6:.2f}M parameters; tryon_lab.models.FastAutoencoderKL, whose "
            "encoder has widths of its own: see the settings) in the latent space of this pipeline's VAE: "
            "its encoder is trained to give the base encoder's latents and its decoder to reconstruct world images "
            "from them, on the world's train split. The lcm sampler encodes and decodes with it (at 4 steps the "
            "VAE is most of a try-on's time); the full samplers keep the base VAE. Scored on val samples, 95% "
            "bootstrap intervals; the test-split sampler comparison is in benchmarks/RESULTS.md.",
            record, metrics, {**settings.__dict__, "eval_samples": eval_samples},
            [f"tryon-lab distill-vae --profile {profile.name} --base {display_path(pipeline_dir)} "
             f"--judge {display_path(judge_dir)}"])

    return save_atomically(Path(pipeline_dir) / FAST_VAE_FOLDER, write)
