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


def test_a_collected_pass_object_leaves_the_kmeans_pool_running():
    """coremltools' pass objects close the shared pool when garbage-collected, possibly during a
    later call (notebook 04's sweep failed with "Pool not running"): the pool outlives that."""
    from coremltools.optimize.coreml._quantization_passes import palettize_weights

    from tryon_lab.export.palettize import _kmeans_pool

    with _kmeans_pool(2):
        palettize_weights._compress_pool.close()  # what a pass object's __del__ does
        assert palettize_weights._compress_pool.starmap(max, [(1, 2), (4, 3)]) == [2, 4]
    assert palettize_weights._compress_pool is None


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


def test_kmeans_1d_converges_to_nearest_centres_and_beats_even_spacing():
    from tryon_lab.export.mixed_bits import kmeans_1d

    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(-0.3, 0.02, 3000), rng.normal(0.1, 0.1, 5000)]).reshape(80, 100)
    for nbits in (2, 3, 4, 8):
        centres, indices = kmeans_1d(values, nbits)
        assert centres.size <= 2**nbits and indices.shape == values.shape
        distance = np.abs(values[..., None] - centres)
        assert np.all(np.take_along_axis(distance, indices[..., None], -1)[..., 0] <= distance.min(-1) + 1e-12)
        error = np.mean((centres[indices] - values) ** 2)
        if nbits <= 4:  # few entries: k-means clearly beats evenly spaced values
            even = np.linspace(values.min(), values.max(), 2**nbits)
            assert error < np.mean((even[np.abs(values[..., None] - even).argmin(-1)] - values) ** 2)
        assert error < values.var() * 4.0 ** -min(nbits, 5)
    centres, indices = kmeans_1d(np.array([1.0, 1.0, 2.0]), 4)  # fewer distinct values than entries
    assert list(centres) == [1.0, 2.0] and list(indices) == [0, 0, 1]


def test_sensitivity_covers_every_mixed_width_and_narrower_is_worse(conversions, golden):
    from tryon_lab.export.mixed_bits import MIXED_BITS, layer_sensitivity, palettizable_weights

    unet = conversions["Unet"].model
    sensitivities = layer_sensitivity(unet, golden.components["Unet"][0], settings=PaletteSettings())
    assert [s.name for s in sensitivities] == list(palettizable_weights(unet))
    for s in sensitivities:
        assert set(s.psnr) == set(MIXED_BITS)
        widths = sorted(s.psnr)
        assert all(s.psnr[a] <= s.psnr[b] + 0.5 for a, b in zip(widths, widths[1:]))


def test_an_allocation_with_two_and_three_bits_is_read_back_from_the_program(conversions, golden):
    from tryon_lab.export.mixed_bits import palettizable_weights, palettize_allocation

    unet = conversions["Unet"].model
    names = list(palettizable_weights(unet))
    widths = (2, 3, 4, 6, 8)
    allocation = {name: widths[i % len(widths)] for i, name in enumerate(names)}
    report = weight_report(palettize_allocation(unet, allocation))
    expected = {}
    for name, bits in allocation.items():
        expected[bits] = expected.get(bits, 0) + next(w.elements for w in weight_report(unet).weights if w.name == name)
    assert {b: n for b, n in report.histogram.items() if b < 16} == expected
    with pytest.raises(ExportInputError):
        palettize_allocation(unet, {names[0]: 5})


@pytest.mark.slow
def test_the_shipped_models_mixed_bits_use_at_least_three_widths_calibrated_apart():
    """Notebook 04's lesson on the shipped model: calibrated on one try-on, reported on another, the
    allocation over {2, 3, 4, 6, 8} mixes at least 3 widths and holds near the target on the other try-on."""
    from tryon_lab.errors import ConfigError
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.coreml import convert_measured
    from tryon_lab.export.golden import make_golden
    from tryon_lab.export.mixed_bits import MIXED_BITS
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    try:
        pipe = load_inpaint_pipeline()
    except ConfigError:
        pytest.skip("the shipped model is not in data/models")
    components = pipeline_components(pipe, only=("Unet", "TextEncoder", "VAEEncoder", "VAEDecoder"))
    golden, calibration = (make_golden(pipe, components, steps=4, seed=seed) for seed in (0, 1))
    unet = convert_measured(components["Unet"], *golden.components["Unet"]).model
    inputs, reference = calibration.components["Unet"]
    mixed = mixed_bit_palettize(unet, inputs, reference["noise_pred"], target_psnr=30.0, bits=MIXED_BITS)
    widths = {b for b in weight_report(mixed.model).histogram if b < 16}
    assert len(widths) >= 3, widths
    assert mixed.psnr >= 30.0
    assert program_psnr(mixed.model, *golden.components["Unet"]) >= 28.0  # other inputs: near the target
