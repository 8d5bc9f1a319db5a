"""benchmarks/export.py runs end to end on the tiny pipeline (slow: it converts and exports everything again).

The benchmark writes and verifies a bundle for both targets, so this is also the suite's check that
every text-bundle component lowers to ExecuTorch and verifies (the DTC bundle test covers the rest).
"""

import pytest


@pytest.mark.slow
def test_the_export_benchmark_reports_every_bar(tiny_pipeline_dir):
    from benchmarks.export import run

    rows = run(tiny_pipeline_dir)
    values = {metric: value for metric, value, _ in rows}
    for expected in ("U-Net 6-bit package / fp16 package", "U-Net fp16 PSNR", "U-Net 6-bit PSNR",
                     "U-Net mixed-bit PSNR", "U-Net mixed-bit average bits", "chunk balance (2 chunks)",
                     "MIL executor / PyTorch time, one U-Net step"):
        assert expected in values
    assert values["bundle verification"] == "passed"
    for name in ("TextEncoder", "Unet", "VAEEncoder", "VAEDecoder"):
        assert values[f"ExecuTorch {name} relative error"] <= 1e-3
    assert {"try-on from the 6-bit bundle (coreml)", "try-on from the 6-bit bundle (executorch)"} <= set(values)


@pytest.mark.slow
def test_the_phone_programs_benchmark_compares_attention_forms_and_int8(tiny_pipeline_dir):
    from benchmarks.phone_programs import run

    rows = run(tiny_pipeline_dir, samples=2, int8_components=("TextEncoder",))  # the int8 U-Net: test_executorch
    values = {metric: value for metric, value, _ in rows}
    notes = {metric: note for metric, _, note in rows}
    for label in ("fp16", "6-bit"):
        for attention in ("original", "split_einsum"):
            assert f"U-Net {label} PSNR, {attention} attention" in values
        difference = f"U-Net {label} PSNR, split_einsum - original"
        assert any(v in notes[difference] for v in ("beats", "not distinguishable"))
    assert values["ExecuTorch TextEncoder int8 / fp32 size"] < 1.0
    assert "try-on with int8 TextEncoder" in values
