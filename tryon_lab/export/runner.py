"""Run exported components the way a phone app does: by contract names, numpy in and out.

Every backend offers ``predict(inputs: dict[str, ndarray]) -> dict[str, ndarray]`` (Core ML's own
signature): ``TorchRunner`` (the PyTorch reference), ``mil.load_runner`` (Core ML packages),
``executorch.PteRunner`` (.pte files). ``ChainedRunner`` runs U-Net chunks with Apple's rule: chunk
k sees only chunk k-1's outputs plus the original inputs. ``run_tryon`` is the phone's try-on loop,
step for step what ``TryOnInpaintPipeline.__call__`` does on a model-sized square.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from tryon_lab.export.contract import Component
from tryon_lab.pipelines.latents import latent_mask


class Runner(Protocol):
    """Anything with Core ML's ``predict`` signature."""

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

    def __init__(self, runners: Sequence[Runner], input_names: Sequence[Sequence[str]]) -> None:
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

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.first: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``runner.predict(inputs)``, recording the first call."""
        outputs = self.runner.predict(inputs)
        if self.first is None:
            self.first = ({k: v.copy() for k, v in inputs.items()}, {k: v.copy() for k, v in outputs.items()})
        return outputs


@dataclass(frozen=True)
class TryOnInputs:
    """Fixed inputs of one try-on: ``image`` (1, 3, H, W) in [-1, 1], ``mask`` (1, 1, H, W) in {0, 1},
    token ids (1, L) int32 of the prompt and the negative prompt, initial ``noise`` (1, 4, h, w),
    ``steps`` and ``guidance_scale``."""

    image: np.ndarray
    mask: np.ndarray
    input_ids: np.ndarray
    negative_input_ids: np.ndarray
    noise: np.ndarray
    steps: int
    guidance_scale: float

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields by name (what the bundle's golden file stores)."""
        return {"image": self.image, "mask": self.mask, "input_ids": self.input_ids,
                "negative_input_ids": self.negative_input_ids, "noise": self.noise}


def run_tryon(runners: Mapping[str, Runner], inputs: TryOnInputs, scheduler: Any) -> dict[str, np.ndarray]:
    """Inpaint ``inputs.image`` inside ``inputs.mask`` with the runners named by the contract
    (TextEncoder, VAEEncoder, Unet, VAEDecoder); return ``{"image", "latents"}``.

    ``scheduler`` is a diffusers scheduler (DDIM in the shipped model); the loop is the pipeline's,
    with classifier-free guidance in one batch of 2 (unconditional first).
    """
    encode = runners["TextEncoder"].predict
    cond = encode({"input_ids": inputs.input_ids})["last_hidden_state"]
    embeds = np.concatenate([encode({"input_ids": inputs.negative_input_ids})["last_hidden_state"], cond])
    masked = (inputs.image * (1.0 - inputs.mask)).astype(np.float32)
    masked_latent = runners["VAEEncoder"].predict({"image": masked})["latent"]
    lmask = latent_mask(torch.from_numpy(inputs.mask), masked_latent.shape[-1]).numpy()
    condition = np.concatenate([masked_latent, lmask], axis=1)
    condition = np.concatenate([condition, condition])

    scheduler.set_timesteps(inputs.steps)
    latents = torch.from_numpy(inputs.noise) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        scaled = scheduler.scale_model_input(torch.cat([latents, latents]), t).numpy()
        noise = runners["Unet"].predict({
            "sample": np.concatenate([scaled, condition], axis=1).astype(np.float32),
            "timestep": np.full((2,), float(t), dtype=np.float32),
            "encoder_hidden_states": embeds.astype(np.float32),
        })["noise_pred"]
        uncond, cond = torch.from_numpy(noise).float().chunk(2)
        guided = uncond + inputs.guidance_scale * (cond - uncond)
        latents = scheduler.step(guided, t, latents, return_dict=False)[0]
    latents = latents.float().numpy()
    image = runners["VAEDecoder"].predict({"latent": latents})["image"]
    return {"image": image, "latents": latents}
