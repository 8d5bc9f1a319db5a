"""Split-einsum attention: the rewritten U-Net computes the original's outputs in PyTorch, its Core ML
program meets the bars in the MIL executor (fp16 and 6-bit), and a bundle records which form it holds."""

import pytest
import torch

from tryon_lab.export.ane_attention import SplitEinsumAttnProcessor, split_einsum_unet, with_attention
from tryon_lab.export.errors import ExportInputError


def _inputs(spec, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(t.shape, generator=generator) * (400 if t.name == "timestep" else 1) for t in spec.inputs]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_split_einsum_unet_computes_the_original_outputs(components, golden, seed):
    original = components["Unet"]
    rewritten = with_attention(original, "split_einsum")
    inputs = _inputs(original.spec, seed) if seed else [torch.from_numpy(golden.components["Unet"][0][t.name])
                                                        for t in original.spec.inputs]
    with torch.no_grad():
        expected, actual = original.module(*inputs), rewritten.module(*inputs)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    processors = {type(m.processor) for m in rewritten.module.modules() if hasattr(m, "processor")}
    assert processors == {SplitEinsumAttnProcessor}
    # the pipeline's own U-Net is left as it was
    assert all(not isinstance(m.processor, SplitEinsumAttnProcessor)
               for m in original.module.modules() if hasattr(m, "processor"))


def test_image_shaped_attention_with_a_group_norm_and_a_residual_is_rewritten_exactly(pipe):
    # the VAE's mid-block attention takes (B, C, H, W), normalises and adds its input back
    decoder = pipe.vae.decoder
    latent = torch.randn(1, pipe.vae.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = decoder(latent)
        actual = split_einsum_unet(decoder)(latent)
    assert torch.allclose(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_an_unknown_attention_is_refused_and_other_components_are_untouched(components):
    with pytest.raises(ExportInputError, match="attention"):
        with_attention(components["Unet"], "flash")
    assert with_attention(components["VAEDecoder"], "split_einsum") is components["VAEDecoder"]


@pytest.mark.slow
def test_the_split_einsum_program_meets_the_bars_in_the_mil_executor(components, golden):
    from tryon_lab.export.coreml import convert_measured, program_psnr
    from tryon_lab.export.mil import load_program
    from tryon_lab.export.palettize import PaletteSettings, palettize

    inputs, reference = golden.components["Unet"]
    conversion = convert_measured(with_attention(components["Unet"], "split_einsum"), inputs, reference)
    ops = {op.op_type for f in load_program(conversion.model).functions.values() for op in f.operations}
    assert "einsum" in ops or "matmul" in ops
    assert conversion.precision == "float16" and conversion.psnr >= 35.0
    six_bit = palettize(conversion.model, 6, PaletteSettings("per_tensor"))
    assert program_psnr(six_bit, inputs, reference) >= 30.0


@pytest.mark.slow
def test_a_split_einsum_bundle_records_its_attention_verifies_and_grades(tmp_path, pipe, components, golden,
                                                                         conversions, bundle):
    from tryon_lab.export.bundle import ExportOptions, build_coreml, compress_component, write_bundle
    from tryon_lab.export.manifest import read_manifest
    from tryon_lab.export.verify import verify_bundle
    from tryon_lab.grading.grader import grade_submission
    from tryon_lab.grading.reference import load_reference

    options = ExportOptions(bits="6", chunks=2, steps=2, targets=("coreml",), attention="split_einsum")
    coreml = build_coreml({"Unet": components["Unet"]}, golden, options, log=lambda _: None)
    coreml.update({name: compress_component(name, conversion, golden, options)
                   for name, conversion in conversions.items() if name != "Unet"})
    written = write_bundle(tmp_path / "bundle", pipe, components, golden, coreml, options, log=lambda _: None)
    manifest = read_manifest(written)
    assert manifest.components["Unet"].coreml.attention == "split_einsum"
    assert {manifest.components[n].coreml.attention for n in components if n != "Unet"} == {"original"}
    report = verify_bundle(written, backend="mil")
    assert report.passed, report.table()
    # graded against a bundle of the original attention (the session's 6-bit, 2-chunk one)
    graded = grade_submission(written, tmp_path / "graded", reference=load_reference(bundle))
    assert graded.status == "passed" and graded.score == graded.max_score, graded.table()
