"""Run exported components the way a phone app does: by contract names, numpy in and out.

Every backend offers ``predict(inputs: dict[str, ndarray]) -> dict[str, ndarray]`` (Core ML's own
signature): ``TorchRunner`` (the PyTorch reference), ``mil.load_runner`` (Core ML packages),
``executorch.PteRunner`` (.pte files). ``ChainedRunner`` runs U-Net chunks with Apple's rule: chunk
k sees only chunk k-1's outputs plus the original inputs. ``run_tryon`` is the phone's try-on loop,
step for step what ``TryOnInpaintPipeline.__call__`` (a prompt) or ``DTCPipeline.__call__`` (a
reference image) does on a model-sized square; ``unet_conditioning`` makes the U-Net inputs of each
kind of conditioning (``conditioning``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from tryon_lab.export.conditioning import REFERENCE, TEXT, Conditioning
from tryon_lab.export.contract import Component
from tryon_lab.models.channels import inpaint_channels, split_inpaint_channels
from tryon_lab.models.dtc import EMPTY_HINT
from tryon_lab.pipelines.latents import latent_mask


class ComponentRunner(Protocol):
    """A phone component as the denoising loop calls it: anything with Core ML's ``predict`` signature
    (``TorchRunner``, ``PteRunner``, ``CoreMLRunner``, ``ChainedRunner``)."""

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class TorchRunner:
    """Run a ``Component``'s PyTorch module (fp32) through the ``predict`` API."""

    def __init__(self, component: Component) -> None:
        self.component = component

    @torch.no_grad()
    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``{output name: array}`` for ``{input name: array}`` in the contract's shapes."""
        spec = self.component.spec
        args = [torch.from_numpy(np.ascontiguousarray(inputs[t.name])) for t in spec.inputs]
        result = self.component.module(*args)
        result = result if isinstance(result, tuple) else (result,)
        return {t.name: r.float().numpy() for t, r in zip(spec.outputs, result)}


class ChainedRunner:
    """Run ``runners`` in order, feeding each only the previous one's outputs plus the original inputs."""

    def __init__(self, runners: Sequence[ComponentRunner], input_names: Sequence[Sequence[str]]) -> None:
        self.runners = list(runners)
        self.input_names = [list(names) for names in input_names]

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the last runner's outputs."""
        previous: dict[str, np.ndarray] = {}
        for runner, names in zip(self.runners, self.input_names):
            available = {**inputs, **previous}
            previous = runner.predict({name: available[name] for name in names})
        return previous


class RecordingRunner:
    """Pass calls to ``runner`` and keep copies of the first call's inputs and outputs."""

    def __init__(self, runner: ComponentRunner) -> None:
        self.runner = runner
        self.first: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``runner.predict(inputs)``, recording the first call."""
        outputs = self.runner.predict(inputs)
        if self.first is None:
            self.first = ({k: v.copy() for k, v in inputs.items()}, {k: v.copy() for k, v in outputs.items()})
        return outputs


ARRAY_FIELDS = ("image", "mask", "input_ids", "negative_input_ids", "noise", "reference", "hint")


@dataclass(frozen=True)
class TryOnInputs:
    """Fixed inputs of one try-on: ``image`` (1, 3, H, W) in [-1, 1], ``mask`` (1, 1, H, W) in {0, 1},
    initial ``noise`` (1, 4, h, w), ``steps``, ``guidance_scale``, and what the model is conditioned on:
    a text model the token ids (1, L) int32 of the prompt and the negative prompt; a DTC model the
    ``reference`` (1, 3, H, W) and its ``hint`` (1, 3, H, W), both in [-1, 1]."""

    image: np.ndarray
    mask: np.ndarray
    input_ids: np.ndarray | None
    negative_input_ids: np.ndarray | None
    noise: np.ndarray
    steps: int
    guidance_scale: float
    reference: np.ndarray | None = None
    hint: np.ndarray | None = None

    @property
    def conditioning(self) -> Conditioning:
        """Reference conditioning when a ``reference`` is given, else text."""
        return REFERENCE if self.reference is not None else TEXT

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields that are set, by name (what the bundle's golden file stores)."""
        return {name: getattr(self, name) for name in ARRAY_FIELDS if getattr(self, name) is not None}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], steps: int, guidance_scale: float) -> TryOnInputs:
        """Inverse of ``arrays`` (other keys are ignored); ``KeyError`` without image, mask or noise."""
        optional = {name: arrays.get(name) for name in ("input_ids", "negative_input_ids", "reference", "hint")}
        return cls(image=arrays["image"], mask=arrays["mask"], noise=arrays["noise"], steps=steps,
                   guidance_scale=guidance_scale, **optional)


def _text_conditioning(runners: Mapping[str, ComponentRunner], inputs: TryOnInputs,
                       condition: np.ndarray) -> dict[str, np.ndarray]:
    """``encoder_hidden_states`` (2, L, D): the negative prompt's, then the prompt's; (1, L, D), the
    prompt's alone, when the U-Net runs one row (``condition`` has the rows)."""
    encode = runners["TextEncoder"].predict
    cond = encode({"input_ids": inputs.input_ids})["last_hidden_state"]
    if len(condition) == 1:
        return {"encoder_hidden_states": cond.astype(np.float32)}
    uncond = encode({"input_ids": inputs.negative_input_ids})["last_hidden_state"]
    return {"encoder_hidden_states": np.concatenate([uncond, cond]).astype(np.float32)}


def _reference_conditioning(runners: Mapping[str, ComponentRunner], inputs: TryOnInputs,
                            condition: np.ndarray) -> dict[str, np.ndarray]:
    """``encoder_hidden_states`` (2, N, D) from the ImageEncoder (null tokens, then the reference's) and,
    with a HintEncoder, its maps: the masked-image latent and latent mask in both rows, an
    all-``EMPTY_HINT`` hint with the null tokens, then the hint with the reference's tokens. With one
    row (``condition`` has the rows; an LCM bundle), the reference's tokens and hint alone."""
    tokens = runners["ImageEncoder"].predict({"reference": inputs.reference})["encoder_hidden_states"]
    if "HintEncoder" not in runners:
        return {"encoder_hidden_states": tokens}
    hints = inputs.hint if len(condition) == 1 else np.concatenate([np.full_like(inputs.hint, EMPTY_HINT), inputs.hint])
    hints = hints.astype(np.float32)
    masked_latent, mask = split_inpaint_channels(condition)
    maps = runners["HintEncoder"].predict({"masked_latent": masked_latent, "latent_mask": mask,
                                          "hint": hints, "encoder_hidden_states": tokens})
    return {"encoder_hidden_states": tokens, **maps}


_CONDITIONING_INPUTS = {TEXT.name: _text_conditioning, REFERENCE.name: _reference_conditioning}


def unet_conditioning(runners: Mapping[str, ComponentRunner], inputs: TryOnInputs,
                      condition: np.ndarray) -> dict[str, np.ndarray]:
    """The U-Net inputs a try-on computes once, in guidance rows (unconditional first), from ``inputs``
    and the (2, 5, h, w) inpainting ``condition``: ``encoder_hidden_states`` and, for a DTC model with
    a hint encoder, the hint maps."""
    return _CONDITIONING_INPUTS[inputs.conditioning.name](runners, inputs, condition)


def run_tryon(runners: Mapping[str, ComponentRunner], inputs: TryOnInputs, scheduler: Any,
              on_step: Callable[[int, np.ndarray], None] | None = None, rows: int = 2) -> dict[str, np.ndarray]:
    """Inpaint ``inputs.image`` inside ``inputs.mask`` with the runners named by the contract
    (VAEEncoder, Unet, VAEDecoder, and TextEncoder or ImageEncoder [+ HintEncoder], as
    ``inputs.conditioning`` needs); return ``{"image", "latents"}``.

    ``scheduler`` is a diffusers scheduler (the manifest's); the loop is the pipeline's, with
    classifier-free guidance in one batch of ``rows`` = 2 (unconditional first), or ``rows`` = 1 and
    no guidance for an LCM bundle, and the U-Net's channels in diffusers' order. A scheduler that
    adds noise between steps (LCM) draws it from a generator of fixed seed, so that a bundle's golden
    try-on can be reproduced. The latent mask and masked-image latent follow the course's rule (max-pool,
    posterior mode): a phone draws no randomness it does not need. ``on_step(step, latents)``,
    if given, is called after every denoising step with the current latents (1, 4, h, w); an
    exception it raises stops the loop (how an app cancels).
    """
    masked = (inputs.image * (1.0 - inputs.mask)).astype(np.float32)
    masked_latent = runners["VAEEncoder"].predict({"image": masked})["latent"]
    lmask = latent_mask(torch.from_numpy(inputs.mask), masked_latent.shape[-1]).numpy()
    condition = np.concatenate([inpaint_channels(lmask, masked_latent)] * rows)
    fixed = unet_conditioning(runners, inputs, condition)  # once per try-on, reused every step

    scheduler.set_timesteps(inputs.steps)
    generator = torch.Generator().manual_seed(0)
    latents = torch.from_numpy(inputs.noise) * scheduler.init_noise_sigma
    for step, t in enumerate(scheduler.timesteps):
        scaled = scheduler.scale_model_input(torch.cat([latents] * rows), t).numpy()
        noise = torch.from_numpy(runners["Unet"].predict({
            "sample": np.concatenate([scaled, condition], axis=1).astype(np.float32),
            "timestep": np.full((rows,), float(t), dtype=np.float32),
            **fixed,
        })["noise_pred"]).float()
        if rows == 2:
            uncond, cond = noise.chunk(2)
            noise = uncond + inputs.guidance_scale * (cond - uncond)
        latents = scheduler.step(noise, t, latents, generator=generator, return_dict=False)[0]
        if on_step is not None:
            on_step(step, latents.float().numpy())
    latents = latents.float().numpy()
    image = runners["VAEDecoder"].predict({"latent": latents})["image"]
    return {"image": image, "latents": latents}
