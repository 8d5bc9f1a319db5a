"""Look inside latent inpainting: the VAE's latents, the noise schedule, the U-Net's 9-channel
input, step-by-step previews, samplers side by side, and paste-back.

These are the computations behind notebook 01. Each one runs the real pipeline code
(``TryOnInpaintPipeline`` and its scheduler), so what the notebook shows is what the try-on does.
They work with any pipeline folder: the tiny random one, the shipped mini model, or SD-1.5.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from PIL import Image

from tryon_lab.data.io import fit_image, load_image, load_mask
from tryon_lab.errors import ConfigError, TryOnInputError
from tryon_lab.metrics.image import psnr
from tryon_lab.models.channels import inpaint_channels, split_inpaint_channels
from tryon_lab.pipelines.compositing import seam_alpha, to_model_square
from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline, TryOnPipelineOutput
from tryon_lab.pipelines.latents import pil_to_tensor, tensor_to_pil
from tryon_lab.plotting import NotebookFigure, image_grid
from tryon_lab.quiet import library_bars_off

SAMPLERS = ("DDIM", "DPM-Solver++", "Euler")


# --- which pipeline a notebook uses ------------------------------------------------------------


def course_pipeline(model: str, build: str | Path) -> TryOnInpaintPipeline:
    """Return the pipeline a profile names, with its progress bar off.

    ``model`` is ``"shipped"`` (the trained mini model in ``data/models``; ``ConfigError`` if it
    is missing), ``"random:<config>"`` (random weights of a model config, e.g. ``random:tiny``,
    written to ``build/random-<config>``: seconds to make, results meaningless) or the path of a
    diffusers folder (e.g. a local SD-1.5-inpainting copy).
    """
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    with library_bars_off():
        if model.startswith("random:"):
            from tryon_lab.models.tiny import make_random_pipeline

            config = model.split(":", 1)[1]
            pipe = make_random_pipeline(config, Path(build) / f"random-{config}")
        elif model == "shipped":
            pipe = load_inpaint_pipeline()
        else:
            pipe = load_inpaint_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_note(model: str, pipe: TryOnInpaintPipeline) -> str:
    """Return a Markdown paragraph saying which model the notebook runs and what its pictures mean."""
    size = pipe.unet.config.sample_size
    shape = f"{pipe.resolution}x{pipe.resolution} images, latents {pipe.unet.config.out_channels}x{size}x{size}"
    if model.startswith("random:"):
        return (
            f"**Note: this profile runs a `{model.split(':', 1)[1]}` model with random weights** ({shape}). "
            "It checks that every cell runs in seconds; its pictures are noise and its numbers "
            "mean nothing. Run the `quick` profile to see what a trained model does."
        )
    where = "the shipped mini model (`data/models/mini-sd-inpaint`)" if model == "shipped" else f"`{model}`"
    return f"This run uses {where}: {shape}, trained on the synthetic world."


# --- the VAE's latent space ---------------------------------------------------------------------


@dataclass
class Roundtrip:
    """One image through the VAE: the model-size ``image``, its scaled ``latents`` (C, s, s),
    the decoded ``reconstruction`` and the ``psnr`` (dB) between the two."""

    image: Image.Image
    latents: torch.Tensor
    reconstruction: Image.Image
    psnr: float


def vae_roundtrip(pipe: TryOnInpaintPipeline, image: Any, mode: str = "crop") -> Roundtrip:
    """Fit ``image`` (any size; path, PIL, array, file) to the model's square (``mode`` "crop" or
    "pad", as ``fit_image``), encode it to latents, decode them back, and measure the PSNR."""
    square = fit_image(load_image(image), pipe.resolution, mode=mode)
    latents = pipe.encode_images(pil_to_tensor(square)[None])
    reconstruction = tensor_to_pil(pipe.decode_latents(latents)[0])
    return Roundtrip(square, latents[0].cpu(), reconstruction, psnr(reconstruction, square))


def channel_images(tensor: torch.Tensor) -> list[np.ndarray]:
    """Return each channel of a (C, h, w) or (1, C, h, w) tensor as an h x w float array in
    [0, 1], stretched from that channel's own min to max (a constant channel shows as 0.5)."""
    values = tensor.detach().float().cpu()
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise TryOnInputError(f"channel_images shows one item; got a batch of {values.shape[0]}")
        values = values[0]
    if values.ndim != 3:
        raise TryOnInputError(f"channel_images needs (C, h, w) or (1, C, h, w); got shape {tuple(tensor.shape)}")
    images = []
    for channel in values.numpy():
        low, high = float(channel.min()), float(channel.max())
        images.append(np.full_like(channel, 0.5) if high == low else (channel - low) / (high - low))
    return images


def latent_stats(latents: torch.Tensor) -> list[tuple[int, float, float]]:
    """Return ``(channel, mean, std)`` of scaled latents (C, h, w): the VAE's ``scaling_factor``
    is chosen so that, over training images, they are near 0 and 1."""
    values = latents.detach().float().cpu().reshape(latents.shape[-3], -1)
    return [(i, round(float(c.mean()), 3), round(float(c.std()), 3)) for i, c in enumerate(values)]


# --- the noise schedule -------------------------------------------------------------------------


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


# --- the U-Net's 9-channel input ----------------------------------------------------------------


@dataclass
class UNetInput:
    """What the inpainting U-Net sees at one timestep, in three groups of channels (diffusers'
    order): ``noisy_latents`` (1, 4, s, s), ``mask`` (1, 1, s, s) (1 where a cell is repainted) and
    ``masked_image_latents`` (1, 4, s, s) (the VAE latent of the photo with the masked pixels blanked).
    ``masked_image`` is the blanked photo the second group encodes; ``timestep`` is t."""

    noisy_latents: torch.Tensor
    masked_image_latents: torch.Tensor
    mask: torch.Tensor
    masked_image: Image.Image
    timestep: float

    @property
    def sample(self) -> torch.Tensor:
        """The (1, 9, s, s) tensor fed to the U-Net: the three groups concatenated on channels."""
        return torch.cat([self.noisy_latents, inpaint_channels(self.mask, self.masked_image_latents)], dim=1)

    def titles(self) -> list[str]:
        """A title per channel of ``sample``, e.g. "0: noisy latent ch 0"."""
        groups = [("noisy latent", self.noisy_latents), ("mask", self.mask),
                  ("masked-image latent", self.masked_image_latents)]
        titles = []
        for name, tensor in groups:
            for c in range(tensor.shape[1]):
                titles.append(f"{len(titles)}: {name}" + (f" ch {c}" if tensor.shape[1] > 1 else ""))
        return titles


def unet_input_channels(pipe: TryOnInpaintPipeline, image: Any, mask: Any, t: float,
                        target: Any | None = None, seed: int = 0) -> UNetInput:
    """Build the U-Net's input for ``image`` and ``mask`` at timestep ``t``, as in training.

    The inpainting channels (latent mask, masked-image latent) are made by the pipeline's own
    code, so they are exactly what ``pipe(...)`` feeds the U-Net. The noisy latent is the VAE
    latent of ``target`` (default: ``image``) noised to ``t`` with noise from ``seed``; at
    sampling time it is instead whatever the sampler has reached at step t.
    """
    photo = load_image(image)
    square, square_mask = to_model_square(photo, load_mask(mask, image=photo), pipe.resolution)
    masked_latents, latent_mask = split_inpaint_channels(pipe._inpaint_channels([square], [square_mask], None))
    clean_source = square if target is None else fit_image(load_image(target), pipe.resolution, mode="pad")
    clean = pipe.encode_images(pil_to_tensor(clean_source)[None])
    noise = torch.randn(clean.shape, generator=torch.Generator("cpu").manual_seed(seed)).to(clean)
    noisy = add_noise(clean, noise, t, noise_schedule(pipe.scheduler))
    blanked = tensor_to_pil(pil_to_tensor(square) * torch.from_numpy(~square_mask).float()[None])
    return UNetInput(noisy.cpu(), masked_latents.cpu(), latent_mask.cpu(), blanked, float(t))


# --- the guided sampling loop, from its inputs ------------------------------------------------------


@dataclass
class SamplingInputs:
    """What a guided sampling loop starts from, exactly as ``pipe(...)`` prepares it for one seed:
    ``latents`` (B, 4, s, s) the initial noise, already multiplied by ``scheduler.init_noise_sigma``;
    ``mask`` (B, 1, s, s) the latent mask; ``masked_image_latents`` (B, 4, s, s); ``text_embeddings``
    (2B, L, D), the negative (empty) prompt's rows first, then the prompt's; the ``scheduler`` with its
    timesteps set."""

    latents: torch.Tensor
    mask: torch.Tensor
    masked_image_latents: torch.Tensor
    text_embeddings: torch.Tensor
    scheduler: Any


def sampling_inputs(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str, *, steps: int,
                    seed: int, scheduler: Any | None = None) -> SamplingInputs:
    """Prepare a guided sampling loop's inputs as ``pipe(image, mask, prompt, seed=seed,
    num_inference_steps=steps)`` does (same generator draws, same inpainting channels); a
    ``scheduler`` given replaces the pipeline's for this call and the next ``pipeline_latents``."""
    if scheduler is not None:
        pipe.scheduler = scheduler
    photo = load_image(image)
    square, square_mask = to_model_square(photo, load_mask(mask, image=photo), pipe.resolution)
    generator = pipe._generator(None, seed)
    latents, channels = pipe._prepare([square], [square_mask], steps, generator)
    masked_latents, latent_mask = split_inpaint_channels(channels)
    embeddings = torch.cat([pipe.encode_prompt([""]), pipe.encode_prompt([prompt])])
    return SamplingInputs(latents, latent_mask, masked_latents, embeddings, pipe.scheduler)


def pipeline_latents(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str, *, steps: int, seed: int,
                     guidance_scale: float) -> torch.Tensor:
    """The final latents (B, 4, s, s) of ``pipe(image, mask, prompt, ...)``: what a student's sampling
    loop must reproduce from ``sampling_inputs`` with the same arguments."""
    final: list[torch.Tensor] = []

    def keep(pipeline, step, timestep, state):
        final[:] = [state["latents"].detach().clone()]
        return {}

    pipe(image, mask, prompt, num_inference_steps=steps, seed=seed, guidance_scale=guidance_scale,
         callback_on_step_end=keep)
    return final[0]


# --- sampling step by step ----------------------------------------------------------------------


@dataclass
class DenoisingPreviews:
    """Previews recorded during one ``pipe(...)`` call: at each recorded ``steps[i]`` (timestep
    ``timesteps[i]``), ``latents[i]`` decodes the noisy latent the U-Net saw and ``predicted[i]``
    decodes its estimate of the clean latent x0 at that step. ``output`` is the call's result."""

    steps: list[int] = field(default_factory=list)
    timesteps: list[float] = field(default_factory=list)
    latents: list[Image.Image] = field(default_factory=list)
    predicted: list[Image.Image] = field(default_factory=list)
    output: TryOnPipelineOutput | None = None

    def figure(self, size: float = 1.8) -> NotebookFigure:
        """Two rows: the noisy latents (top) and the predicted x0 (bottom), one column per step."""
        titles = [f"step {s} (t={t:.0f})\nx_t" for s, t in zip(self.steps, self.timesteps)]
        titles += [f"step {s}\npredicted x0" for s in self.steps]
        return image_grid(self.latents + self.predicted, titles, ncols=len(self.steps), size=size)


class _UNetTap:
    """Forward hook that keeps the U-Net's latest input latents, timestep and output."""

    def __init__(self) -> None:
        self.sample: torch.Tensor | None = None
        self.timestep: float = 0.0
        self.output: torch.Tensor | None = None

    def __call__(self, module, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        self.sample = sample.detach()
        self.timestep = float(timestep)
        self.output = (output[0] if isinstance(output, tuple) else output.sample).detach()


def predicted_x0(x_t: torch.Tensor, model_output: torch.Tensor, alpha_cumprod: float,
                 prediction_type: str = "epsilon") -> torch.Tensor:
    """The clean latent a U-Net output implies at a step with ᾱ_t = ``alpha_cumprod``:
    epsilon: (x_t - sqrt(1-ᾱ) eps) / sqrt(ᾱ); v_prediction: sqrt(ᾱ) x_t - sqrt(1-ᾱ) v; sample: as is."""
    a, b = alpha_cumprod**0.5, (1.0 - alpha_cumprod) ** 0.5
    if prediction_type == "epsilon":
        return (x_t - b * model_output) / a
    if prediction_type == "v_prediction":
        return a * x_t - b * model_output
    if prediction_type == "sample":
        return model_output
    raise ConfigError(f"unknown prediction_type {prediction_type!r}")


def denoising_previews(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str = "", *,
                       steps: int = 25, every: int = 5, seed: int = 0, guidance_scale: float = 4.0,
                       **call_kwargs) -> DenoisingPreviews:
    """Run ``pipe(image, mask, prompt, ...)`` once and record previews every ``every`` steps (and
    at the last step) through ``callback_on_step_end``.

    A forward hook on the U-Net keeps the latent it saw (after the scheduler's input scaling,
    so every sampler's x_t is on the same scale) and its noise prediction (combined with
    classifier-free guidance as the pipeline does); the callback decodes x_t and the implied x0.
    Extra ``call_kwargs`` go to the pipeline call.
    """
    if every < 1:
        raise TryOnInputError(f"every must be at least 1, got {every}")
    schedule = noise_schedule(pipe.scheduler)
    prediction_type = pipe.scheduler.config.get("prediction_type", "epsilon")
    channels = pipe.unet.config.out_channels
    tap, previews = _UNetTap(), DenoisingPreviews()

    def record(pipeline, step, timestep, state):
        if step % every and step != steps - 1:
            return {}
        output = tap.output
        if guidance_scale > 1.0:
            uncond, cond = output.chunk(2)
            output = uncond + guidance_scale * (cond - uncond)
        x_t = tap.sample[: output.shape[0], :channels]
        x0 = predicted_x0(x_t, output, schedule.at(tap.timestep), prediction_type)
        decoded = pipeline.decode_latents(torch.cat([x_t[:1], x0[:1]]))
        previews.steps.append(step)
        previews.timesteps.append(tap.timestep)
        previews.latents.append(tensor_to_pil(decoded[0]))
        previews.predicted.append(tensor_to_pil(decoded[1]))
        return {}

    handle = pipe.unet.register_forward_hook(tap, with_kwargs=True)
    try:
        previews.output = pipe(image, mask, prompt, num_inference_steps=steps, guidance_scale=guidance_scale,
                               seed=seed, callback_on_step_end=record, **call_kwargs)
    finally:
        handle.remove()
    return previews


# --- samplers compared --------------------------------------------------------------------------


def make_scheduler(name: str, config) -> Any:
    """Return the sampler ``name`` ("DDIM", "DPM-Solver++" or "Euler") built from a scheduler config."""
    if name == "DDIM":
        return DDIMScheduler.from_config(config)
    if name == "DPM-Solver++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "Euler":
        return EulerDiscreteScheduler.from_config(config)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


@dataclass
class SamplerRun:
    """One sampler's try-on: its ``name``, the model-square ``raw`` output, the pasted-back
    ``image``, wall ``seconds``, and (when a reference was run) ``psnr_to_reference`` in dB."""

    name: str
    steps: int
    raw: Image.Image
    image: Image.Image
    seconds: float
    psnr_to_reference: float | None = None


def compare_schedulers(pipe: TryOnInpaintPipeline, image: Any, mask: Any, prompt: str = "", *,
                       samplers: Sequence[str] = SAMPLERS, steps: int = 20, seed: int = 0,
                       guidance_scale: float = 4.0, reference_steps: int | None = None) -> list[SamplerRun]:
    """Run the same try-on (same seed, same steps) with each sampler; return one ``SamplerRun`` each.

    All samplers solve the same denoising process, so with many steps they agree; with few
    they differ in how well they follow it. With ``reference_steps``, a DDIM run of that many
    steps is added first (named "DDIM (reference)") and every run's PSNR against it is filled in.
    A one-step warm-up run comes before the timings; ``pipe.scheduler`` is restored afterwards.
    """
    original = pipe.scheduler

    def run(name: str, n: int) -> SamplerRun:
        pipe.scheduler = make_scheduler(name, original.config)
        started = time.perf_counter()
        out = pipe(image, mask, prompt, num_inference_steps=n, guidance_scale=guidance_scale, seed=seed)
        return SamplerRun(name, n, out.raw[0], out.images[0], time.perf_counter() - started)

    try:
        run("DDIM", 1)  # warm-up: first calls pay for allocations
        runs = [run(name, steps) for name in samplers]
        if reference_steps:
            reference = run("DDIM", reference_steps)
            reference.name = "DDIM (reference)"
            for r in [reference, *runs]:
                r.psnr_to_reference = psnr(r.raw, reference.raw)
            runs.insert(0, reference)
    finally:
        pipe.scheduler = original
    return runs


def sampler_figure(runs: Sequence[SamplerRun], gain: float = 4.0, size: float = 2.2) -> NotebookFigure:
    """Figure: each run's raw output with its steps and time (top row) and, when the runs were
    measured against a reference (the first run), where they differ from it: the absolute
    difference, times ``gain`` so that small ones show (bottom row)."""
    images = [r.raw for r in runs]
    titles = [f"{r.name}, {r.steps} steps, {r.seconds:.2f} s" for r in runs]
    if runs and runs[0].psnr_to_reference is not None:
        reference = np.asarray(runs[0].raw, dtype=np.float32)
        for r in runs:
            difference = np.abs(np.asarray(r.raw, dtype=np.float32) - reference) * gain
            images.append(Image.fromarray(np.clip(difference, 0, 255).astype(np.uint8)))
            titles.append("(the reference)" if r is runs[0] else f"|difference| x{gain:g}, PSNR {r.psnr_to_reference:.1f} dB")
    return image_grid(images, titles, ncols=len(runs), size=size)


def sampler_table(runs: Sequence[SamplerRun]) -> str:
    """A text table of sampler runs: name, steps, seconds, and PSNR to the reference if known."""
    from tryon_lab.tables import format_table

    def quality(run: SamplerRun):
        if run.psnr_to_reference is None:
            return "-"
        return round(run.psnr_to_reference, 1) if np.isfinite(run.psnr_to_reference) else "identical"

    rows = [[r.name, r.steps, round(r.seconds, 2), quality(r)] for r in runs]
    return format_table(rows, ["sampler", "steps", "seconds", "PSNR to reference (dB)"])


# --- paste-back ---------------------------------------------------------------------------------


@dataclass
class PasteBack:
    """How a try-on result was put together: the user's ``original`` photo, the model's ``raw``
    square, the ``alpha`` seam weights (photo-sized, 0 outside the mask), the pasted-back
    ``result``, ``difference`` = |result - original| (HxW, max over RGB, in 0..255) and
    ``max_outside``, the largest difference at any pixel outside the mask (0 when exact)."""

    original: Image.Image
    raw: Image.Image
    alpha: np.ndarray
    result: Image.Image
    difference: np.ndarray
    max_outside: int

    def figure(self, size: float = 2.4) -> NotebookFigure:
        """One row: original, raw model square, seam alpha, result, and where result differs."""
        images = [self.original, self.raw, self.alpha, self.result, (self.difference > 0).astype(np.float32)]
        titles = ["your photo", "raw model output (its square)", "seam alpha (0 outside the mask)",
                  "pasted back", f"pixels that changed (max change outside the mask: {self.max_outside})"]
        return image_grid(images, titles, ncols=5, size=size)


def outside_mask_difference(original: Any, result: Any, mask: np.ndarray) -> int:
    """The largest per-channel difference (0..255) between two same-size images outside ``mask``."""
    before = np.asarray(load_image(original), dtype=np.int16)
    after = np.asarray(load_image(result), dtype=np.int16)
    if before.shape != after.shape:
        raise TryOnInputError(f"images differ in size: {before.shape[:2]} vs {after.shape[:2]}")
    outside = ~np.asarray(mask, dtype=bool)
    return int(np.abs(after - before)[outside].max(initial=0))


def paste_back_parts(original: Any, output: TryOnPipelineOutput, mask: Any, feather_px: float,
                     index: int = 0) -> PasteBack:
    """Take apart item ``index`` of a pipeline ``output`` made from ``original`` and ``mask`` with
    ``feather_px``: the raw square, the seam alpha, the result, and where it differs from the input."""
    photo = load_image(original)
    pixel_mask = load_mask(mask, image=photo)
    result = output.images[index]
    if not isinstance(result, Image.Image):
        raise TryOnInputError("paste_back_parts needs a pipeline output made with output_type='pil'")
    difference = np.abs(np.asarray(result, dtype=np.int16) - np.asarray(photo, dtype=np.int16)).max(axis=-1)
    return PasteBack(photo, output.raw[index], seam_alpha(pixel_mask, feather_px), result,
                     difference.astype(np.float32), outside_mask_difference(photo, result, pixel_mask))


# --- why a VAE decoder needs fp32 variance (notebook 04) ---------------------------------------------

FP16_MAX = 65504.0  # the largest finite float16


@dataclass(frozen=True)
class GroupNormPeak:
    """One GroupNorm layer's input on a real call: the largest squared distance of an activation from its
    group's mean (what the lowered ``square`` op computes), and the group variance (``reduce_mean``)."""

    name: str
    max_square: float
    max_variance: float

    @property
    def overflows_fp16(self) -> bool:
        """True when the squared distance does not fit in float16 (it becomes inf)."""
        return self.max_square > FP16_MAX


def groupnorm_peaks(module: torch.nn.Module, *args: Any) -> list[GroupNormPeak]:
    """Run ``module(*args)`` with hooks on every ``GroupNorm`` and return, largest first, what each one's
    variance computation meets: a GroupNorm is lowered to square -> reduce_mean -> add -> sqrt, and an
    fp16 program overflows where (x - group mean)^2 passes 65504 (an activation 256 from its mean)."""
    peaks: list[GroupNormPeak] = []

    def hook(name):
        def record(layer, inputs, output):
            x = inputs[0].detach().double()
            groups = x.reshape(x.shape[0], layer.num_groups, -1)
            centred = groups - groups.mean(dim=-1, keepdim=True)
            squares = centred ** 2
            peaks.append(GroupNormPeak(name, float(squares.max()), float(squares.mean(dim=-1).max())))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in module.named_modules() if isinstance(m, torch.nn.GroupNorm)]
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for handle in handles:
            handle.remove()
    return sorted(peaks, key=lambda p: -p.max_square)
