"""Learning curves of a VAE run: each kept checkpoint's round trip, read back by the judge on val.

A latent model paints through its decoder, so the share of val renderings whose motif the judge
still reads after the VAE's round trip (``metrics.baselines.decoder_ceiling``) bounds the identity
accuracy of every model built on it. A VAE run keeps its checkpoints at multiples of
``milestone_every`` (``VAESettings``); this module scores each kept checkpoint, phase 1's in the run
folder or a decoder phase's in its subfolder, and appends it to ``<run_dir>/curve.csv`` (a checkpoint
already there is not scored again, so it can be re-run while training goes on).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tryon_lab.training.checkpoints import checkpoint_dirs
from tryon_lab.training.curve import FIGURE_FILE, curve_figure, extend_curve

COLUMNS = ("step", "round_trip_identity", "round_trip_identity_lo", "round_trip_identity_hi", "samples")
IDENTITY_BAR = 0.60  # the course's identity bar for Diffuse to Choose, which no model can pass if its VAE does not


def checkpoint_vae(checkpoint: str | Path, config):
    """The ``AutoencoderKL`` of ``config``'s size that a VAE run's ``checkpoint`` folder holds (eval mode)."""
    from safetensors.torch import load_file

    from tryon_lab.models.components import build_vae

    vae = build_vae(config)
    saved = load_file(Path(checkpoint) / "model.safetensors")
    vae.load_state_dict({key.removeprefix("vae."): value for key, value in saved.items()})
    return vae.eval()


def vae_learning_curve(run_dir: str | Path, judge_dir: str | Path, config, samples: int = 256,
                       seed: int = 0) -> list[dict[str, float]]:
    """Score every kept checkpoint of the VAE run in ``run_dir`` not yet in its curve: round-trip
    identity accuracy (95% interval) on the first ``samples`` val renderings. Appends to
    ``curve.csv``; returns the whole curve, oldest step first."""
    from tryon_lab.metrics.baselines import decoder_ceiling
    from tryon_lab.metrics.judge import WorldJudge

    judge = WorldJudge.load(judge_dir)

    @torch.no_grad()
    def score(vae) -> dict[str, float]:
        identity = decoder_ceiling(vae, judge, samples, "val", seed, truth=False)["round_trip"]
        return {"round_trip_identity": identity.value, "round_trip_identity_lo": identity.lo,
                "round_trip_identity_hi": identity.hi, "samples": samples}

    return extend_curve(run_dir, lambda checkpoint: checkpoint_vae(checkpoint, config), score, COLUMNS)


def write_vae_learning_curve(run_dir: str | Path, judge_dir: str | Path, config, samples: int = 256) -> list[dict[str, float]]:
    """``vae_learning_curve``, drawn into ``<run_dir>/curve.png`` against the identity bar; returns the
    rows. ``ConfigError`` before any work when ``run_dir`` holds no VAE checkpoints of ``config``'s
    size or ``judge_dir`` is not a saved model folder."""
    from tryon_lab.errors import ConfigError

    run_dir = Path(run_dir)
    found = checkpoint_dirs(run_dir)
    if not found:
        raise ConfigError(f"--run-dir {run_dir} holds no checkpoints (step-* folders)")
    if not Path(judge_dir, "config.json").is_file():
        raise ConfigError(f"--judge must name a saved model folder (with config.json); got {str(judge_dir)!r}")
    try:
        checkpoint_vae(found[-1], config)
    except RuntimeError as error:
        raise ConfigError(f"{found[-1]} is not a VAE checkpoint of this model config (is the run a VAE run, "
                          f"and --model the one it trained?): {str(error).splitlines()[0]}") from error
    rows = vae_learning_curve(run_dir, judge_dir, config, samples=samples)
    figure = curve_figure(rows, f"{run_dir}: {samples} val renderings, 95% intervals",
                          metrics={"round_trip_identity": "identity after the VAE round trip"},
                          bars={"round_trip_identity": IDENTITY_BAR},
                          bar_labels={"round_trip_identity": "the identity bar of the models built on it"})
    figure.savefig(run_dir / FIGURE_FILE, dpi=80)
    return rows

