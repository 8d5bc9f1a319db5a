"""Which Diffuse-to-Choose model a notebook shows: shipped, trained in the session, fresh or a folder;
the no-hint baseline beside it; the judge; and sentences saying what their pictures mean."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tryon_lab.errors import ConfigError
from tryon_lab.metrics.judge import WorldJudge
from tryon_lab.paths import REPO_ROOT, data_dir
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.loading import SHIPPED_DTC, load_dtc_pipeline
from tryon_lab.pipelines.samplers import make_scheduler
from tryon_lab.quiet import library_bars_off


def load_dtc(spec: str, base, *, trained=None, fusion: str | None = "film"):
    """Return the DTCPipeline named by ``spec``, with its progress bar off.

    ``spec``: ``"shipped"`` (``data/models/dtc``), ``"trained"`` (the ``trained`` pipeline, e.g.
    the notebook's own run), ``"fresh"`` (``DTCPipeline.from_base(base, fusion)``: untrained hint
    path, FiLM the identity; ``fusion`` None is the no-hint baseline) or a DTC folder (parts or a
    full pipeline; relative paths are taken from the repository root). The model lands on
    ``base``'s device. Raises ``ConfigError`` when the model is not there.
    """
    device = str(base.device)
    if spec == "trained":
        if trained is None:
            raise ConfigError("no DTC was trained in this session: run the training section first")
        pipe = trained
    elif spec == "fresh":
        pipe = DTCPipeline.from_base(base, fusion, scheduler=make_scheduler("ddim", base.scheduler.config))
    else:
        folder = None if spec == "shipped" else _repo_path(spec)
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"no DTC model at {folder}; `tryon-lab train-dtc` writes one")
        with library_bars_off():
            pipe = load_dtc_pipeline(folder, device=device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def course_dtc(settings: Mapping[str, Any], base, trained=None) -> tuple[str, Any]:
    """The profile's DTC: ``settings["model"]``, or ``settings["fallback"]`` when that model is
    absent (e.g. ``"shipped"`` before ``data/models/dtc`` is trained). Returns (spec used, pipeline)."""
    try:
        return settings["model"], load_dtc(settings["model"], base, trained=trained)
    except ConfigError:
        return settings["fallback"], load_dtc(settings["fallback"], base, trained=trained)


def optional_baseline(spec: str, base) -> tuple[Any, str]:
    """The no-hint baseline named by ``spec`` (as ``load_dtc``; ``""`` for none), or None when it
    is absent. Returns (pipeline or None, a sentence saying which)."""
    if not spec:
        return None, "No baseline is configured for this profile."
    try:
        pipe = load_dtc(spec, base, fusion=None)
    except ConfigError as error:
        return None, f"No no-hint baseline here ({error})."
    if pipe.hint_encoder is not None:
        raise ConfigError(f"{spec!r} has a hint encoder; a baseline is a DTC model without one")
    what = "an untrained no-hint model (smoke run)" if spec == "fresh" else f"the recipe's no-hint baseline `{spec}`"
    return pipe, f"Beside it: {what}."


def dtc_note(spec: str, pipe) -> str:
    """A Markdown sentence saying which DTC the notebook shows and what its pictures mean."""
    shape = f"{pipe.resolution}x{pipe.resolution} images, fusion {_fusion(pipe)}"
    if spec == "shipped":
        return f"This run shows the shipped DTC (`data/models/dtc`): {shape}."
    if spec == "trained":
        return (f"**This run shows the model trained above** ({shape}): a few steps only, so expect results "
                "close to an untrained model's. The `quick` profile shows the shipped DTC once "
                "`tryon-lab train-dtc` has made it.")
    if spec == "fresh":
        return f"**This run shows an untrained DTC** ({shape}): FiLM is still the identity."
    return f"This run shows the DTC in `{spec}`: {shape}."


def dtc_record_folder(spec: str) -> Path | None:
    """The folder ``spec`` was loaded from when it holds a training record, else None."""
    if spec in ("trained", "fresh"):
        return None
    folder = data_dir() / "models" / SHIPPED_DTC if spec == "shipped" else _repo_path(spec)
    return folder if (folder / "training.json").is_file() else None


def course_judge():
    """The world encoder as judge (``data/models/world-encoder``), or None when it is absent."""
    folder = data_dir() / "models" / "world-encoder"
    return WorldJudge.load(folder) if (folder / "config.json").is_file() else None


def _repo_path(spec: str) -> Path:
    path = Path(spec)
    return path if path.is_absolute() else REPO_ROOT / path


def _fusion(pipe) -> str:
    hint = pipe.hint_encoder
    if hint is None:
        return "none (no hint)"
    return hint.config.fusion + (f" ({hint.config.film_mode})" if hint.config.fusion == "film" else "")
