"""Exporting a Diffuse-to-Choose model: ImageEncoder, HintEncoder and the hint-conditioned U-Net.

A tiny random DTC model (FiLM) whose fusion layers and null tokens are moved away from their
zero init, so the hint maps and the unconditional row are not trivially constant. The bundle test
exports it through `tryon-lab export` to Core ML and ExecuTorch and verifies it as the text
bundle is verified (lowering five components to XNNPACK takes ~10 minutes on 2 busy cores).
"""

import numpy as np
import pytest
import torch

from tryon_lab.cli import main
from tryon_lab.data.world import World
from tryon_lab.export.contract import pipeline_components, runtime_contract
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.runner import TorchRunner, TryOnInputs, run_tryon
from tryon_lab.export.verify import read_manifest, verify_bundle
from tryon_lab.export.wrappers import ImageEncoderWrapper, hint_maps, hint_modulation, resize_matrix
from tryon_lab.models.dtc import HintModulation, resize_images
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.loading import load_pipeline

NEW = ("ImageEncoder", "HintEncoder")
GOLDEN_STEPS = 2


def _make_dtc(base, fusion: str, seed: int = 0) -> DTCPipeline:
    pipe = DTCPipeline.from_base(base, fusion)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [*pipe.hint_encoder.fusion_layers.parameters(), pipe.image_encoder.null_tokens]:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def dtc_dir(tiny_base, tmp_path_factory):
    """A saved DTCPipeline folder (FiLM) on the tiny model."""
    out = tmp_path_factory.mktemp("dtc-model")
    _make_dtc(tiny_base, "film").save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def dtc_pipe(dtc_dir):
    pipe = load_pipeline(dtc_dir, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def dtc_components(dtc_pipe):
    return pipeline_components(dtc_pipe)


@pytest.fixture(scope="module")
def dtc_golden(dtc_pipe, dtc_components):
    from tryon_lab.export.golden import make_golden

    return make_golden(dtc_pipe, dtc_components, steps=GOLDEN_STEPS)


def test_a_dtc_model_has_image_and_hint_encoders_and_no_text_encoder(dtc_pipe, dtc_components):
    assert tuple(dtc_components) == ("Unet", "VAEEncoder", "VAEDecoder", *NEW)
    image = dtc_components["ImageEncoder"].spec
    assert [(t.name, t.shape) for t in image.inputs] == [("reference", (1, 3, 64, 64))]
    assert [(t.name, t.shape) for t in image.outputs] == [("encoder_hidden_states", (2, 65, 32))]
    hint = dtc_components["HintEncoder"].spec
    assert [t.name for t in hint.inputs] == ["masked_latent", "latent_mask", "hint", "encoder_hidden_states"]
    assert [t.name for t in hint.outputs[:4]] == ["scale_0", "shift_0", "scale_1", "shift_1"]
    assert len(hint.outputs) == 2 * 5  # conv_in, 2 resnets, 1 downsampler, mid block of the tiny U-Net
    unet = dtc_components["Unet"].spec  # the hint maps feed the U-Net by name, in the same order and shapes
    assert [t.name for t in unet.inputs[:3]] == ["sample", "timestep", "encoder_hidden_states"]
    assert unet.inputs[2] == image.outputs[0] and unet.inputs[3:] == hint.outputs
    runtime = runtime_contract(dtc_pipe)
    assert runtime["conditioning"] == "reference" and runtime["reference_tokens"] == 65
    assert runtime["empty_hint"] == -1.0 and "token_length" not in runtime


def test_every_dtc_component_computes_its_contract_shapes(dtc_components, dtc_golden):
    assert dtc_golden.prompt is None and set(dtc_golden.inputs.arrays()) == {"image", "mask", "noise", "reference",
                                                                            "hint"}
    for name, component in dtc_components.items():
        inputs, outputs = dtc_golden.components[name]
        assert {k: v.shape for k, v in inputs.items()} == {t.name: t.shape for t in component.spec.inputs}
        assert {k: v.shape for k, v in outputs.items()} == {t.name: t.shape for t in component.spec.outputs}
    maps = dtc_golden.components["HintEncoder"][1]
    assert np.abs(maps["scale_0"] - 1).max() > 1e-3 and np.abs(maps["shift_0"]).max() > 1e-3
    # guidance rows: the empty hint and the null tokens first, then the hint and the reference's tokens
    hints = dtc_golden.components["HintEncoder"][0]["hint"]
    assert (hints[0] == -1).all() and np.array_equal(hints[1], dtc_golden.inputs.hint[0])


def test_the_image_encoder_resizes_and_stacks_tokens_as_the_pipeline_does(dtc_pipe):
    reference = torch.rand(1, 3, 64, 64) * 2 - 1
    matrix = resize_matrix(64, 32)
    assert torch.allclose(matrix @ reference @ matrix.T, resize_images(reference, 32), atol=1e-6)
    with torch.no_grad():
        rows = ImageEncoderWrapper(dtc_pipe.image_encoder, 64)(reference)
        assert torch.allclose(rows[1], dtc_pipe.image_encoder(reference)[0], atol=1e-5)
        assert torch.equal(rows[0], dtc_pipe.image_encoder.null_tokens[0])


def test_hint_maps_round_trip_for_film_and_addition():
    shifts, scales = (torch.zeros(1), torch.ones(1)), (torch.full((1,), 2.0), torch.full((1,), 3.0))
    for modulation, film in ((HintModulation(shifts, scales), True), (HintModulation(shifts), False)):
        again = hint_modulation(hint_maps(modulation), film)
        assert again.shifts == modulation.shifts and again.scales == modulation.scales


@pytest.mark.parametrize("fusion", ["film", "add"])
def test_the_phone_loop_reproduces_the_dtc_pipeline(tiny_pipeline, fusion):
    """run_tryon with the PyTorch components is DTCPipeline's own guided loop (null tokens, empty hint)."""
    from diffusers import DDIMScheduler

    from tryon_lab.export.golden import tryon_inputs
    from tryon_lab.pipelines.latents import tensor_to_pil

    pipe = _make_dtc(tiny_pipeline, fusion, seed=1)
    inputs, _ = tryon_inputs(pipe, steps=2)
    runners = {name: TorchRunner(c) for name, c in pipeline_components(pipe).items()}
    ours = run_tryon(runners, inputs, DDIMScheduler.from_config(pipe.scheduler.config))
    image = tensor_to_pil(torch.from_numpy(inputs.image[0]))
    reference = World(seed=0, resolution=pipe.resolution).sample(0, kind="garment").reference
    theirs = pipe(image, inputs.mask[0, 0] > 0.5, reference, num_inference_steps=2,
                  guidance_scale=inputs.guidance_scale, generator=torch.Generator().manual_seed(0)).raw[0]
    ours_image = np.asarray(tensor_to_pil(torch.from_numpy(ours["image"][0])), dtype=int)
    assert np.abs(ours_image - np.asarray(theirs, dtype=int)).max() <= 1


@pytest.mark.parametrize("fusion", ["film", "add"])
def test_a_one_row_lcm_loop_conditions_the_unet_as_the_guided_loops_conditional_row(tiny_pipeline, fusion):
    """An LCM bundle's U-Net runs one row: its reference tokens and hint maps are the conditional row of
    the guided (DDIM) bundle's, which the test above ties to DTCPipeline."""
    from diffusers import LCMScheduler

    from tryon_lab.export.golden import tryon_inputs
    from tryon_lab.export.runner import unet_conditioning

    pipe = _make_dtc(tiny_pipeline, fusion, seed=1)
    inputs, _ = tryon_inputs(pipe, steps=2)
    guided = {name: TorchRunner(c) for name, c in pipeline_components(pipe).items()}
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    one_row = {name: TorchRunner(c) for name, c in pipeline_components(pipe).items()}
    condition = np.random.default_rng(0).standard_normal((1, 5, 8, 8)).astype(np.float32)
    ours = unet_conditioning(one_row, inputs, condition)
    theirs = unet_conditioning(guided, inputs, np.concatenate([condition, condition]))
    assert set(ours) == set(theirs) and len(ours) > 1
    for name, value in ours.items():
        assert value.shape[0] == 1, name
        np.testing.assert_allclose(value[0], theirs[name][1], rtol=1e-5, atol=1e-5, err_msg=name)
    assert not np.allclose(theirs["encoder_hidden_states"][0], theirs["encoder_hidden_states"][1])


def test_tryon_inputs_round_trip_through_arrays(dtc_golden):
    inputs = dtc_golden.inputs
    again = TryOnInputs.from_arrays({**inputs.arrays(), "result.image": inputs.image}, inputs.steps,
                                    inputs.guidance_scale)
    assert again.conditioning.name == "reference" and again.input_ids is None
    assert set(again.arrays()) == set(inputs.arrays())


def test_the_loader_tells_dtc_parts_and_pipelines_from_text_models(tiny_pipeline, tiny_pipeline_dir, dtc_dir,
                                                                   tmp_path, monkeypatch):
    from tryon_lab.pipelines.inpaint import TryOnInpaintPipeline
    from tryon_lab.training.dtc_recipe import save_dtc_parts

    tiny_pipeline.save_pretrained(tmp_path / "data" / "models" / "tiny-base")
    save_dtc_parts(DTCPipeline.from_base(tiny_pipeline, "film"), tmp_path / "parts", "tiny-base", "film")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    assert isinstance(load_pipeline(tmp_path / "parts", device="cpu"), DTCPipeline)
    assert isinstance(load_pipeline(dtc_dir, device="cpu"), DTCPipeline)
    assert isinstance(load_pipeline(tiny_pipeline_dir, device="cpu"), TryOnInpaintPipeline)


def test_a_timestep_conditioned_hint_encoder_is_refused(tiny_pipeline):
    pipe = DTCPipeline.from_base(tiny_pipeline, "film", timestep_conditioning=True)
    with pytest.raises(ExportInputError, match="once per image"):
        pipeline_components(pipe, only=("HintEncoder",))


@pytest.mark.slow
def test_additive_hint_components_convert_and_match_pytorch(tiny_pipeline):
    """Direct addition (the ablation's fusion): its HintEncoder and U-Net on the MIL executor."""
    from tryon_lab.export.coreml import convert_measured
    from tryon_lab.export.golden import make_golden

    pipe = _make_dtc(tiny_pipeline, "add", seed=2)
    components = pipeline_components(pipe, only=("HintEncoder", "Unet"))
    assert [t.name for t in components["HintEncoder"].spec.outputs][:2] == ["shift_0", "shift_1"]
    golden = make_golden(pipe, pipeline_components(pipe), steps=1)
    for name, component in components.items():
        conversion = convert_measured(component, *golden.components[name])
        assert conversion.precision == "float16" and conversion.psnr >= 35.0, (name, conversion.tried)


@pytest.fixture(scope="module")
def dtc_bundle(dtc_dir, tmp_path_factory):
    """`tryon-lab export` of the DTC folder: 6-bit U-Net in 2 chunks, Core ML and ExecuTorch."""
    out = tmp_path_factory.mktemp("dtc-bundles") / "dtc-bundle"
    assert main(["export", "--model", str(dtc_dir), "--out", str(out), "--bits", "6", "--chunks", "2",
                 "--steps", str(GOLDEN_STEPS)]) == 0
    return out


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_dtc_bundle_lists_its_components_with_shapes(dtc_bundle, dtc_components):
    assert sorted(p.name for p in (dtc_bundle / "coreml").iterdir()) == [  # no tokenizer files
        "HintEncoder.mlpackage", "ImageEncoder.mlpackage", "UnetChunk1.mlpackage", "UnetChunk2.mlpackage",
        "VAEDecoder.mlpackage", "VAEEncoder.mlpackage"]
    assert sorted(p.name for p in (dtc_bundle / "executorch").iterdir()) == [
        "HintEncoder.pte", "ImageEncoder.pte", "Unet.pte", "VAEDecoder.pte", "VAEEncoder.pte"]
    manifest = read_manifest(dtc_bundle)
    assert manifest.tokenizer is None and manifest.golden.prompt is None
    assert manifest.runtime.conditioning == "reference"
    components = manifest.components
    assert list(components) == ["Unet", "VAEEncoder", "VAEDecoder", *NEW]
    for name, component in dtc_components.items():
        assert components[name].spec == component.spec
    for name in NEW:  # shipped at their measured precision, like the VAE
        assert not components[name].coreml.compression.palettized
    unet = components["Unet"].coreml
    assert unet.compression.bits == 6 and unet.chunking.chunks == 2
    assert unet.chunking.max_abs_difference_vs_unchunked == 0.0
    chunk_inputs = {t.name for p in unet.packages for t in p.inputs}
    assert {"scale_0", "shift_0", "scale_4", "shift_4"} <= chunk_inputs  # the maps reach the chunks that use them
    assert manifest.golden.steps == GOLDEN_STEPS


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_verify_checks_every_dtc_component_and_the_try_on_on_both_targets(dtc_bundle, capsys):
    report = verify_bundle(dtc_bundle, backend="mil")
    print(report.table())
    assert report.passed, report.table()
    rows = {(row.what, row.target): row for row in report.rows}
    for name in ("Unet", "VAEEncoder", "VAEDecoder", *NEW):
        assert rows[(name, "coreml")].passed and rows[(name, "executorch")].relative_error <= 1e-3
    for name in NEW:
        assert rows[(name, "coreml")].psnr >= 35.0
    assert rows[("Unet", "coreml")].note == "2 chained chunks"
    assert rows[("try-on", "coreml")].psnr > 20 and rows[("try-on", "executorch")].psnr > 20
    assert main(["verify", str(dtc_bundle), "--backend", "mil"]) == 0
    assert "PASSED" in capsys.readouterr().out
