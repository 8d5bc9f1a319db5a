"""The noise schedule (notebook 01): the forward process of any DDPM-family scheduler, the timesteps a
sampler visits, and what noising does to a picture."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
from tryon_lab.pipelines.latents import tensor_to_pil
from tryon_lab.plotting import NotebookFigure


@dataclass
class NoiseSchedule:
    """A scheduler's forward process per training timestep t: x_t = signal[t] * x_0 + noise[t] * eps.

    ``alphas_cumprod[t]`` = signal[t]**2; ``snr[t]`` = signal**2 / noise**2, the signal-to-noise
    ratio of x_t.
    """

    timesteps: np.ndarray
    alphas_cumprod: np.ndarray

    @property
    def signal(self) -> np.ndarray:
        """sqrt(alphas_cumprod): how much of the clean latent is left at each t."""
        return np.sqrt(self.alphas_cumprod)

    @property
    def noise(self) -> np.ndarray:
        """sqrt(1 - alphas_cumprod): how much noise has been mixed in at each t."""
        return np.sqrt(1.0 - self.alphas_cumprod)

    @property
    def snr(self) -> np.ndarray:
        """Signal-to-noise ratio alphas_cumprod / (1 - alphas_cumprod) at each t."""
        return self.alphas_cumprod / (1.0 - self.alphas_cumprod)

    def at(self, t: float) -> float:
        """alphas_cumprod at timestep ``t`` (linearly interpolated for fractional t)."""
        return float(np.interp(float(t), self.timesteps, self.alphas_cumprod))


def noise_schedule(scheduler) -> NoiseSchedule:
    """Return the forward-process schedule of any diffusers scheduler that has ``alphas_cumprod``
    (DDPM, DDIM, DPM-Solver, Euler, ...), computed from its config (beta_start, beta_end,
    beta_schedule, num_train_timesteps)."""
    if not hasattr(scheduler, "alphas_cumprod"):
        raise ConfigError(f"{type(scheduler).__name__} has no alphas_cumprod; it is not a DDPM-family scheduler")
    acp = scheduler.alphas_cumprod.detach().double().cpu().numpy()
    return NoiseSchedule(np.arange(len(acp)), acp)


def sampling_timesteps(scheduler, steps: int) -> np.ndarray:
    """The training timesteps a sampler visits with ``steps`` inference steps (from a copy, so
    ``scheduler`` itself is left as it was)."""
    copy = type(scheduler).from_config(scheduler.config)
    copy.set_timesteps(steps)
    return copy.timesteps.detach().float().cpu().numpy()


def plot_noise_schedule(schedule: NoiseSchedule, marks: dict[str, Sequence[float]] | None = None) -> NotebookFigure:
    """Figure: signal and noise scales against t (left) and log10 SNR against t (right).

    ``marks`` maps a label (e.g. "DDIM, 10 steps") to the timesteps a sampler visits, drawn as dots.
    """
    fig = NotebookFigure(figsize=(10, 3.4))
    left, right = fig.subplots(1, 2)
    t = schedule.timesteps
    left.plot(t, schedule.signal, label="signal  sqrt(ᾱ_t)")
    left.plot(t, schedule.noise, label="noise  sqrt(1 - ᾱ_t)")
    left.set(xlabel="training timestep t", ylabel="scale", title="x_t = signal · x_0 + noise · ε")
    right.plot(t, np.log10(schedule.snr), color="C2")
    right.axhline(0.0, color="gray", lw=0.8, ls="--")
    right.set(xlabel="training timestep t", ylabel="log10 SNR",
              title="signal-to-noise ratio (SNR = 1 on the dashed line)")
    for index, (label, steps) in enumerate((marks or {}).items()):
        acp = np.array([schedule.at(s) for s in steps])
        right.plot(np.asarray(steps, dtype=float), np.log10(acp / (1 - acp)), "o", ms=4, color=f"C{3 + index}",
                   label=label)
    left.legend(fontsize=8)
    if marks:
        right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def add_noise(latents: torch.Tensor, noise: torch.Tensor, t: float, schedule: NoiseSchedule) -> torch.Tensor:
    """Return x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) eps: the noisy latent the U-Net is trained on."""
    acp = schedule.at(t)
    return (acp**0.5) * latents + ((1.0 - acp) ** 0.5) * noise


def noising_previews(pipe: TryOnInpaintPipeline, latents: torch.Tensor, timesteps: Sequence[int],
                     seed: int = 0) -> list[Image.Image]:
    """Decode ``latents`` (1, C, s, s) noised to each of ``timesteps`` with one fixed noise draw:
    what the forward process does to a picture as t grows."""
    schedule = noise_schedule(pipe.scheduler)
    noise = torch.randn(latents.shape, generator=torch.Generator("cpu").manual_seed(seed)).to(latents)
    noisy = torch.cat([add_noise(latents, noise, t, schedule) for t in timesteps])
    return [tensor_to_pil(x) for x in pipe.decode_latents(noisy.to(pipe.device))]
