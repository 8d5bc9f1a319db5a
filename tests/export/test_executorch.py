"""ExecuTorch: components as XNNPACK .pte programs, run by the ExecuTorch runtime, against PyTorch.

Lowering to XNNPACK takes ~10-60 s per component on 2 cores, so the fast tests export the two
smallest components; whole both-target bundles are verified by the export benchmark's test (text)
and test_dtc_export (DTC).
"""

import pytest

from tryon_lab.export.compare import relative_error, signal_psnr
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.executorch import PteRunner, export_pte

FAST = ("TextEncoder", "VAEDecoder")


@pytest.fixture(scope="session")
def programs(tmp_path_factory, components, golden):
    """{name: .pte path} for the fast components, fp32."""
    folder = tmp_path_factory.mktemp("pte")
    return {name: export_pte(components[name], golden.components[name][0], folder / f"{name}.pte") for name in FAST}


@pytest.mark.parametrize("name", FAST)
def test_fp32_programs_are_within_1e_3_relative_error_of_pytorch(name, programs, components, golden):
    inputs, reference = golden.components[name]
    outputs = PteRunner(programs[name], components[name].spec).predict(inputs)
    for key, value in reference.items():
        assert outputs[key].shape == value.shape
        assert relative_error(outputs[key], value) <= 1e-3


def test_int8_weights_shrink_the_program_and_stay_close(tmp_path, programs, components, golden):
    inputs, reference = golden.components["TextEncoder"]
    path = export_pte(components["TextEncoder"], inputs, tmp_path / "int8.pte", quantization="int8")
    assert path.stat().st_size < programs["TextEncoder"].stat().st_size
    output = PteRunner(path, components["TextEncoder"].spec).predict(inputs)["last_hidden_state"]
    assert signal_psnr(output, reference["last_hidden_state"]) >= 25.0


def test_an_unknown_quantization_is_refused(tmp_path, components, golden):
    with pytest.raises(ExportInputError, match="quantization"):
        export_pte(components["TextEncoder"], golden.components["TextEncoder"][0], tmp_path / "x.pte", "int3")


@pytest.mark.slow
def test_an_int8_bundle_ships_every_component_int8_and_verifies(tiny_pipeline_dir, components, tmp_path):
    """The U-Net too: its int8 program lowers, shrinks and stays within verify's 30 dB of PyTorch."""
    from tryon_lab.export.bundle import ExportOptions, export_bundle
    from tryon_lab.export.verify import read_manifest, verify_bundle

    out = export_bundle(tiny_pipeline_dir, tmp_path / "bundle", ExportOptions(targets=("executorch",), quantization="int8"),
                        log=lambda _: None)
    manifest = read_manifest(out)
    assert {name: entry.executorch.quantization for name, entry in manifest.components.items()} == \
        {name: "int8" for name in manifest.components}
    fp32_bytes = 4 * sum(p.numel() for p in components["Unet"].module.parameters())
    # smaller than its fp32 weights alone, which no fp32 program can be; not the shipped model's 0.30 bar:
    # each lowered operator carries its own delegate header, a large share of a program whose weights are
    # this small (the phone-programs benchmark measures the shipped one)
    assert manifest.components["Unet"].executorch.size_bytes < fp32_bytes
    report = verify_bundle(out)
    assert report.passed, report.table()
    assert any(row.what == "Unet" and row.target == "executorch" and row.note == "int8" for row in report.rows)
