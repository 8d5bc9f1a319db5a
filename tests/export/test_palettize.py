"""Palettization: bits read back from the program, sensitivity, mixed-bit allocation, DKM."""

import math

import numpy as np
import pytest

from tryon_lab.export.coreml import program_psnr
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.mixed_bits import (
    Sensitivity,
    allocate_bits,
    average_bits,
    mixed_bit_palettize,
    predicted_psnr,
)
from tryon_lab.export.palettize import PaletteSettings, palettize, weight_report


def test_six_bit_weights_are_read_back_from_the_program(conversions, unet6, golden):
    before, after = weight_report(conversions["Unet"].model), weight_report(unet6)
    assert set(before.histogram) == {16}
    assert set(after.histogram) == {6, 16}  # small tensors (norms, biases) stay fp16
    assert after.histogram[6] > 0.5 * after.elements  # tiny layers: a quarter of the weights are small
    assert after.elements == before.elements
    assert after.bytes < 0.6 * before.bytes  # 0.55 on tiny; the mini model is held to 0.40 in benchmarks
    assert program_psnr(unet6, *golden.components["Unet"]) >= 30.0


def test_grouped_four_bit_palettes_are_per_group(conversions):
    grouped = palettize(conversions["VAEDecoder"].model, 4, PaletteSettings("per_grouped_channel", group_size=8))
    report = weight_report(grouped)
    assert 4 in report.histogram
    assert report.average_bits < 8


def test_a_group_size_that_does_not_divide_a_layer_still_palettizes_it(conversions):
    """coremltools skips such a weight silently; every weight above the threshold must come back 6-bit."""
    model = conversions["Unet"].model
    odd = PaletteSettings("per_grouped_channel", group_size=48)  # the tiny U-Net's channels are 16 and 32
    dividing = PaletteSettings("per_grouped_channel", group_size=16)
    assert weight_report(palettize(model, 6, odd)).histogram == weight_report(palettize(model, 6, dividing)).histogram


def test_worker_processes_give_the_same_palettes(conversions):
    """k-means in worker processes (the SD-1.5-size benchmark) changes the time, not the palettes; the
    pool ends with the call (coremltools would keep a closed one and fail the next call)."""
    import torch
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    from tryon_lab.export.palettize import palettized_weights

    model = conversions["Unet"].model
    alone = palettized_weights(palettize(model, 6))
    pooled = palettized_weights(palettize(model, 6, workers=2))
    assert pooled.keys() == alone.keys() and all(torch.equal(pooled[k], alone[k]) for k in alone)
    assert palettize_weights._compress_pool is None
    with pytest.raises(ExportInputError, match="workers"):
        palettize(model, 6, workers=0)


def test_bad_bits_are_refused(conversions):
    with pytest.raises(ExportInputError, match="bits"):
        palettize(conversions["VAEDecoder"].model, 5)
    with pytest.raises(ExportInputError, match="granularity"):
        PaletteSettings("per_row")


def _layers() -> list[Sensitivity]:
    # three layers: a big robust one, a small sensitive one, a medium one
    return [Sensitivity("big", 1000, {8: 60.0, 6: 50.0, 4: 38.0}),
            Sensitivity("small", 100, {8: 45.0, 6: 35.0, 4: 25.0}),
            Sensitivity("medium", 500, {8: 55.0, 6: 45.0, 4: 33.0})]


def test_allocation_meets_a_psnr_target_with_the_fewest_bits():
    layers = _layers()
    allocation = allocate_bits(layers, target_psnr=32.0)
    assert predicted_psnr(layers, allocation) >= 32.0
    assert allocation["big"] == 4 and allocation["small"] >= 6
    assert average_bits(layers, allocation) < average_bits(layers, allocate_bits(layers, target_psnr=40.0))


def test_allocation_meets_a_size_target():
    layers = _layers()
    allocation = allocate_bits(layers, target_bits=6.0)
    assert average_bits(layers, allocation) <= 6.0
    assert allocation["small"] >= allocation["big"]


def test_noise_powers_add():
    layers = [Sensitivity("a", 10, {8: 40.0}), Sensitivity("b", 10, {8: 40.0})]
    assert predicted_psnr(layers, {"a": 8, "b": 8}) == pytest.approx(40.0 - 10 * math.log10(2))
    assert predicted_psnr(layers, {}) == math.inf
    with pytest.raises(ExportInputError):
        allocate_bits(layers)


def test_mixed_bits_hold_the_target_on_the_real_program(conversions, golden):
    inputs, reference = golden.components["Unet"]
    result = mixed_bit_palettize(conversions["Unet"].model, inputs, reference["noise_pred"], target_psnr=30.0,
                                 settings=PaletteSettings("per_tensor"), bits=(6, 4))
    assert result.psnr >= 30.0
    assert result.sensitivities and all(s.psnr for s in result.sensitivities)
    report = weight_report(result.model)
    palettized = {b: n for b, n in report.histogram.items() if b < 16}
    assert palettized and sum(palettized.values()) > 0.5 * report.elements
    assert program_psnr(result.model, inputs, reference) == pytest.approx(result.psnr)


def test_palettization_aware_finetuning_gives_a_palettized_program(components, golden):
    import torch

    from tryon_lab.export.contract import Component
    from tryon_lab.export.coreml import convert_component
    from tryon_lab.export.palettize import finetune_palettized

    encoder = components["TextEncoder"]
    inputs = golden.components["TextEncoder"][0]
    ids = torch.from_numpy(inputs["input_ids"])
    tuned = finetune_palettized(encoder.module, lambda step: (ids,), nbits=4, steps=2, weight_threshold=1000)
    model = convert_component(Component(encoder.spec, tuned), inputs)
    histogram = weight_report(model).histogram
    assert histogram.get(4, 0) > 0.9 * sum(histogram.values())  # DKM's palettes reach the program as 4-bit LUTs
    assert np.isfinite(program_psnr(model, *golden.components["TextEncoder"]))
