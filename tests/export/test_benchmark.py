"""benchmarks/export.py runs end to end on the tiny pipeline (slow: it converts and exports everything again)."""

import pytest


@pytest.mark.slow
def test_the_export_benchmark_reports_every_bar(tiny_pipeline_dir):
    from benchmarks.export import run

    rows = run(tiny_pipeline_dir)
    metrics = {metric for metric, _, _ in rows}
    for expected in ("U-Net 6-bit package / fp16 package", "U-Net fp16 PSNR", "U-Net 6-bit PSNR",
                     "U-Net mixed-bit PSNR", "U-Net mixed-bit average bits", "chunk balance (2 chunks)",
                     "MIL executor / PyTorch time, one U-Net step", "bundle verification"):
        assert expected in metrics
    assert any(metric.startswith("ExecuTorch") for metric in metrics)
    assert any(metric.startswith("try-on from the 6-bit bundle") for metric in metrics)
