"""Golden data: fixed inputs and the PyTorch outputs every export must reproduce.

One try-on on a fixed world sample (photo, garment mask, the caption or, for a DTC model, the
item's reference image and hint, seeded noise) runs through the PyTorch components with the
phone's loop (``runner.run_tryon``); each component's first call is recorded as its golden input
and output, so the component checks use realistic tensors (the U-Net's are those of the first
denoising step). Components the try-on does not call get seeded
random inputs of their contract shapes. Stored as safetensors: arrays only, no pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tryon_lab.export.conditioning import TEXT, of_pipeline
from tryon_lab.export.contract import Component, ComponentSpec, guidance_rows
from tryon_lab.export.errors import BundleError
from tryon_lab.export.runner import RecordingRunner, TorchRunner, TryOnInputs, run_tryon
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Golden:
    """The try-on ``inputs``, its PyTorch ``result`` ({image, latents}), the ``prompt`` (None for a
    model conditioned on a reference image), and ``components``: {name: (inputs, outputs)} of each
    component's golden call."""

    inputs: TryOnInputs
    result: Arrays
    prompt: str | None
    components: dict[str, tuple[Arrays, Arrays]]


def tryon_inputs(pipe: Any, steps: int = 4, guidance_scale: float = TEXT_GUIDANCE,
                 seed: int = 0, split: str = "train") -> tuple[TryOnInputs, str | None]:
    """Return fixed try-on inputs for ``pipe``'s resolution and conditioning (world sample ``seed`` of
    ``split``) and their prompt (None unless ``pipe`` is text-conditioned)."""
    from tryon_lab.data.world import World
    from tryon_lab.pipelines.latents import pil_to_tensor

    sample = World(seed=seed, resolution=pipe.resolution).sample(seed, split=split, kind="garment")
    conditioning = of_pipeline(pipe)
    side = pipe.unet.config.sample_size
    noise = torch.randn((1, pipe.unet.config.out_channels, side, side), generator=torch.Generator().manual_seed(seed))
    inputs = TryOnInputs.from_arrays(
        {"image": pil_to_tensor(sample.scene)[None].numpy(),
         "mask": np.asarray(sample.shape_mask, dtype=np.float32)[None, None],
         "noise": noise.numpy(),
         **conditioning.golden_inputs(pipe, sample)},
        steps, guidance_scale)
    return inputs, sample.caption if conditioning is TEXT else None


def random_inputs(spec: ComponentSpec, seed: int = 0) -> Arrays:
    """Seeded inputs of ``spec``'s shapes: standard normal floats, token ids in [0, 100)."""
    rng = np.random.default_rng(seed)
    return {t.name: (rng.integers(0, 100, t.shape).astype(np.int32) if t.dtype == "int32"
                     else rng.standard_normal(t.shape).astype(np.float32)) for t in spec.inputs}


def make_golden(pipe: Any, components: Mapping[str, Component], steps: int = 4, guidance_scale: float = TEXT_GUIDANCE,
                seed: int = 0, split: str = "train") -> Golden:
    """Run the fixed try-on (``tryon_inputs``) through the PyTorch ``components`` with the pipeline's
    own sampler and record the golden data."""
    inputs, prompt = tryon_inputs(pipe, steps, guidance_scale, seed, split)
    recorders = {name: RecordingRunner(TorchRunner(c)) for name, c in components.items()}
    result = run_tryon(recorders, inputs, type(pipe.scheduler).from_config(pipe.scheduler.config),
                       rows=guidance_rows(pipe))
    recorded = {}
    for name, component in components.items():
        if recorders[name].first is not None:
            recorded[name] = recorders[name].first
        else:
            extra = random_inputs(component.spec, seed)
            recorded[name] = (extra, TorchRunner(component).predict(extra))
    return Golden(inputs, result, prompt, recorded)


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to a safetensors file."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def load_arrays(path: str | Path) -> Arrays:
    """Read a safetensors file written by ``save_arrays``; ``BundleError`` if it is not one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise BundleError(f"{Path(path).name} is not a readable safetensors file: {err}") from None


def component_arrays(inputs: Arrays, outputs: Arrays) -> Arrays:
    """Golden file content of one component: ``input.<name>`` and ``output.<name>``."""
    return {**{f"input.{k}": v for k, v in inputs.items()}, **{f"output.{k}": v for k, v in outputs.items()}}


def split_component_arrays(arrays: Mapping[str, np.ndarray]) -> tuple[Arrays, Arrays]:
    """Inverse of ``component_arrays``: (inputs, outputs)."""
    def pick(prefix: str) -> Arrays:
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    return pick("input."), pick("output.")
