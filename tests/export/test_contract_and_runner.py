"""The I/O contract, the phone try-on loop, and the PSNR helpers (no conversion needed)."""

import math

import numpy as np
import pytest

from tryon_lab.export.compare import relative_error, signal_psnr
from tryon_lab.export.contract import ComponentSpec, TensorSpec, component_names, runtime_contract
from tryon_lab.export.errors import BundleError
from tryon_lab.export.runner import TorchRunner, run_tryon


def test_the_tiny_pipeline_has_the_four_phone_components(components, pipe):
    assert tuple(components) == ("TextEncoder", "Unet", "VAEEncoder", "VAEDecoder") == component_names()[:4]
    unet = components["Unet"].spec
    assert [t.name for t in unet.inputs] == ["sample", "timestep", "encoder_hidden_states"]
    assert unet.inputs[0].shape == (2, 9, 8, 8) and unet.outputs[0].shape == (2, 4, 8, 8)
    assert components["TextEncoder"].spec.inputs[0] == TensorSpec("input_ids", (1, 16), "int32")
    assert components["VAEDecoder"].spec.outputs[0].shape == (1, 3, 64, 64)
    assert runtime_contract(pipe)["latent_size"] == 8


def test_every_component_computes_its_contract_shapes(components, golden):
    for name, component in components.items():
        inputs, outputs = golden.components[name]
        assert {k: v.shape for k, v in inputs.items()} == {t.name: t.shape for t in component.spec.inputs}
        assert {k: v.shape for k, v in outputs.items()} == {t.name: t.shape for t in component.spec.outputs}


def test_a_spec_survives_json_and_malformed_entries_are_refused(components):
    spec = components["Unet"].spec
    assert ComponentSpec.from_json("Unet", spec.to_json()) == spec
    for bad in ({"inputs": [{"name": "x", "shape": [-1], "dtype": "float32"}], "outputs": []},
                {"inputs": [{"name": "x", "shape": [2], "dtype": "complex64"}], "outputs": []},
                {"inputs": "x"}, []):
        with pytest.raises(BundleError):
            ComponentSpec.from_json("Bad", bad)


def test_the_phone_loop_reproduces_the_pipeline(pipe, components, golden):
    """run_tryon with the PyTorch components is the pipeline's own loop on the model square."""
    import torch
    from diffusers import DDIMScheduler

    from tryon_lab.pipelines.latents import tensor_to_pil

    inputs = golden.inputs
    runners = {name: TorchRunner(c) for name, c in components.items()}
    ours = run_tryon(runners, inputs, DDIMScheduler.from_config(pipe.scheduler.config))
    image = tensor_to_pil(torch.from_numpy(inputs.image[0]))
    mask = inputs.mask[0, 0] > 0.5
    theirs = pipe(image, mask, golden.prompt, num_inference_steps=inputs.steps, guidance_scale=inputs.guidance_scale,
                  generator=torch.Generator().manual_seed(0)).raw[0]
    difference = np.abs(np.asarray(tensor_to_pil(torch.from_numpy(ours["image"][0])), dtype=int) - np.asarray(theirs, dtype=int))
    assert difference.max() <= 1


def test_psnr_and_relative_error():
    reference = np.linspace(-1, 1, 100)
    assert signal_psnr(reference, reference) == math.inf
    assert 39 < signal_psnr(reference + 0.01, reference) < 41  # peak 1, rms 0.01 -> 40 dB
    assert signal_psnr(np.full(100, np.nan), reference) == -math.inf
    assert relative_error(reference * 1.001, reference) == pytest.approx(1e-3)
