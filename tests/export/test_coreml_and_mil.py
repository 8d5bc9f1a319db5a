"""Core ML conversion of every component, checked by the Linux MIL executor against PyTorch."""

import numpy as np
import pytest

from tryon_lab.export.compare import signal_psnr
from tryon_lab.export.errors import UnsupportedOpError
from tryon_lab.export.mil import KERNELS, MILExecutor

NAMES = ("TextEncoder", "Unet", "VAEEncoder", "VAEDecoder")


@pytest.mark.parametrize("name", NAMES)
def test_every_component_converts_in_fp16_and_the_executor_matches_pytorch(name, conversions, golden):
    conversion = conversions[name]
    assert conversion.precision == "float16"
    inputs, reference = golden.components[name]
    outputs = MILExecutor(conversion.model).predict(inputs)
    assert set(outputs) == set(reference)
    for key, value in reference.items():
        assert outputs[key].shape == value.shape and outputs[key].dtype == np.float32
        assert signal_psnr(outputs[key], value) >= 35.0


def test_a_run_holds_only_the_values_still_to_be_read(conversions, golden):
    """Each intermediate is dropped after its last reader (an SD-1.5-size U-Net's would not fit), and
    the outputs are bit for bit those of a run that keeps everything."""
    inputs, _ = golden.components["Unet"]
    executor = MILExecutor(conversions["Unet"].model)
    dropping, dropping_peak = executor.predict(inputs), executor.peak_bytes
    executor._release = [()] * len(executor.steps)
    keeping, keeping_peak = executor.predict(inputs), executor.peak_bytes
    assert np.array_equal(dropping["noise_pred"], keeping["noise_pred"])
    assert 0 < dropping_peak < keeping_peak / 4


def test_fp16_weights_stay_fp16_and_are_read_exactly(conversions, golden):
    """fp16 weights are held in fp16 (half the memory) and widened as read: the outputs are bit for bit
    those of weights widened up front, and ``weight`` still gives fp32."""
    import torch

    inputs, _ = golden.components["Unet"]
    executor = MILExecutor(conversions["Unet"].model)
    halves = [name for name, value in executor.constants.items()
              if isinstance(value, torch.Tensor) and value.dtype == torch.float16]
    assert len(halves) > 10
    held = executor.predict(inputs)["noise_pred"]
    executor.constants.update({name: executor.constants[name].float() for name in halves})
    assert np.array_equal(held, executor.predict(inputs)["noise_pred"])
    assert {executor.weight(op).dtype for op in executor.weight_vars if executor.weight_vars[op] in halves} == {
        torch.float32}


def test_palettes_are_read_as_coremltools_reads_them_and_their_parts_are_not_held(conversions, unet6):
    """The executor's table lookup (block by block, not coremltools' table repeated to every element)
    gives coremltools' values for per-tensor and grouped palettes; indices and tables are not kept."""
    import torch

    from tryon_lab.export.mil import decompress, load_program
    from tryon_lab.export.palettize import PaletteSettings, palettize

    grouped = palettize(conversions["Unet"].model, 6, PaletteSettings("per_grouped_channel", group_size=8))
    for model in (unet6, grouped):
        ops = [op for op in load_program(model).functions["main"].operations if op.op_type == "constexpr_lut_to_dense"]
        assert len(ops) > 10
        for op in ops:
            assert np.array_equal(decompress(op), op.materialized_val_inference())
        held = MILExecutor(model).constants.values()
        assert not any(isinstance(v, torch.Tensor) and not v.is_floating_point() and v.numel() > 2048 for v in held)


def test_the_program_keeps_the_contract_names_and_uses_fp16(conversions):
    spec = conversions["Unet"].model.get_spec()
    assert [i.name for i in spec.description.input] == ["sample", "timestep", "encoder_hidden_states"]
    assert [o.name for o in spec.description.output] == ["noise_pred"]
    assert "conv" in MILExecutor(conversions["Unet"].model).op_types


def test_fp16_rounding_is_mimicked(conversions, golden):
    """An fp16 program differs from PyTorch by fp16 rounding, not by nothing and not by much."""
    inputs, reference = golden.components["VAEDecoder"]
    out = MILExecutor(conversions["VAEDecoder"].model).predict(inputs)["image"]
    assert 0 < np.abs(out - reference["image"]).max() < 0.05


def test_an_op_without_a_kernel_is_named_in_the_error(conversions, monkeypatch):
    monkeypatch.delitem(KERNELS, "silu")
    with pytest.raises(UnsupportedOpError, match="'silu'"):
        MILExecutor(conversions["VAEDecoder"].model, "VAEDecoder")


def test_missing_inputs_are_reported(conversions):
    with pytest.raises(KeyError, match="latent"):
        MILExecutor(conversions["VAEDecoder"].model).predict({})


def test_a_group_norm_whose_variance_overflows_fp16_keeps_only_the_variance_in_fp32():
    """Activations 400 from their group's mean square past fp16's 65504 (as in the shipped VAE
    decoder): plain fp16 misses the bar, fp16 with the variance in fp32 meets it."""
    import torch
    from coremltools.converters.mil.mil import types

    from tryon_lab.export.contract import Component, ComponentSpec, TensorSpec
    from tryon_lab.export.coreml import VARIANCE_CHAIN, convert_measured
    from tryon_lab.export.mil import load_program

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.GroupNorm(4, 8), torch.nn.SiLU()).eval()
    spec = ComponentSpec("Norm", (TensorSpec("x", (1, 4, 16, 16)),), (TensorSpec("y", (1, 8, 16, 16)),))
    x = np.random.default_rng(0).normal(0, 400, (1, 4, 16, 16)).astype(np.float32)
    with torch.no_grad():
        reference = {"y": module(torch.from_numpy(x)).numpy()}
    conversion = convert_measured(Component(spec, module), {"x": x}, reference)
    assert conversion.tried["float16"] < 35.0
    assert conversion.precision == "float16+fp32-variance" and conversion.psnr >= 35.0
    dtypes = {(op.op_type, types.builtin_to_string(op.outputs[0].dtype))
              for op in load_program(conversion.model).functions["main"].operations if op.op_type != "const"}
    assert {(name, "fp32") for name in VARIANCE_CHAIN} <= dtypes
    assert ("conv", "fp16") in dtypes and ("conv", "fp32") not in dtypes
