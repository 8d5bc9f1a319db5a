"""Export bars (issue 6): package sizes, U-Net PSNR at fp16 / 6-bit / mixed bits, chunk balance,
the Linux executor's speed, ExecuTorch error, and a whole try-on from the 6-bit bundle.

``run(model)`` exports ``model`` (default: the shipped mini model if present, else a tiny random
one, whose numbers only show that the machinery works) and returns ``(metric, value, note)`` rows.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from tryon_lab.errors import ConfigError

MODELS = ("mini-sd-inpaint",)  # run() without a model exports the shipped one

GROUP_SIZES = (16, 32, 64)  # palette group sizes compared side by side (the export's default is 32)


def _model_path(model: str | Path | None, scratch: Path) -> tuple[Path, str]:
    from tryon_lab.models.tiny import make_random_pipeline
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT

    if model is not None:
        return Path(model), str(model)
    try:
        return shipped_model(SHIPPED_INPAINT), SHIPPED_INPAINT
    except ConfigError:
        make_random_pipeline("tiny", scratch / "tiny")
        return scratch / "tiny", "tiny (random weights: no trained model in data/models)"


def _seconds(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats


def _group_size_rows(model, inputs, reference, fp16_package: Path, scratch: Path) -> list[tuple[str, object, str]]:
    """The size / PSNR trade-off of the palette group size, unchunked, side by side."""
    from tryon_lab.export.bundle import folder_bytes
    from tryon_lab.export.coreml import program_psnr
    from tryon_lab.export.palettize import PaletteSettings, palettize

    rows = []
    for group_size in GROUP_SIZES:
        palettized = palettize(model, 6, PaletteSettings("per_grouped_channel", group_size))
        package = scratch / f"Unet-6bit-g{group_size}.mlpackage"
        palettized.save(str(package))
        rows.append((f"U-Net 6-bit, palettes of {group_size} channels: size ratio / PSNR",
                     f"{folder_bytes(package) / folder_bytes(fp16_package):.3f} / "
                     f"{program_psnr(palettized, inputs, reference):.1f} dB", "unchunked, vs the fp16 package"))
    return rows


def run(model: str | Path | None = None) -> list[tuple[str, object, str]]:
    """Export, measure and verify; return the benchmark rows."""
    from tryon_lab.export.bundle import ExportOptions, compress_component, folder_bytes, write_bundle
    from tryon_lab.export.chunking import chunk_balance
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.coreml import convert_measured
    from tryon_lab.export.golden import make_golden
    from tryon_lab.export.mil import MILExecutor
    from tryon_lab.export.mixed_bits import mixed_bit_palettize
    from tryon_lab.export.palettize import PaletteSettings, weight_report
    from tryon_lab.export.runner import TorchRunner
    from tryon_lab.export.verify import verify_bundle
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        path, label = _model_path(model, scratch)
        pipe = load_inpaint_pipeline(path, device="cpu")
        components = pipeline_components(pipe)
        golden = make_golden(pipe, components, steps=10)
        rows: list[tuple[str, object, str]] = [("model", label, f"{pipe.resolution}px, golden try-on 10 DDIM steps")]

        conversions = {name: convert_measured(c, *golden.components[name]) for name, c in components.items()}
        for name, conversion in conversions.items():
            rows.append((f"{name} conversion", f"{conversion.psnr:.1f} dB", f"{conversion.precision}, "
                         f"{conversion.seconds:.1f} s to convert; bar >= 35 dB"))

        options = ExportOptions(bits="6", chunks=2, steps=10)
        coreml = {name: compress_component(name, conv, golden, options) for name, conv in conversions.items()}
        fp16_package = scratch / "Unet-fp16.mlpackage"
        conversions["Unet"].model.save(str(fp16_package))
        bundle = write_bundle(scratch / "bundle", pipe, components, golden, coreml, options, source=label,
                              log=lambda _: None)
        six_bit = sum(folder_bytes(bundle / "coreml" / f"UnetChunk{i}.mlpackage") for i in (1, 2))
        rows.append(("U-Net 6-bit package / fp16 package", round(six_bit / folder_bytes(fp16_package), 3),
                     f"{six_bit} / {folder_bytes(fp16_package)} bytes, {options.chunks} chunks, palettes of "
                     f"{options.group_size} output channels; bar <= 0.40"))
        rows += _group_size_rows(conversions["Unet"].model, *golden.components["Unet"], fp16_package, scratch)
        rows.append(("U-Net fp16 PSNR", round(conversions["Unet"].psnr, 1), "one step vs fp32 PyTorch; bar >= 35 dB"))
        rows.append(("U-Net 6-bit PSNR", round(coreml["Unet"].psnr, 1), "bar >= 30 dB"))

        inputs, reference = golden.components["Unet"]
        mixed = mixed_bit_palettize(conversions["Unet"].model, inputs, reference["noise_pred"], target_psnr=30.0,
                                    settings=PaletteSettings())
        report = weight_report(mixed.model)
        palettized = {b: n for b, n in report.histogram.items() if b < 16}
        layer_bits = sum(b * n for b, n in palettized.items()) / max(sum(palettized.values()), 1)
        rows.append(("U-Net mixed-bit PSNR", round(mixed.psnr, 1), "target 30 dB; bar >= 30 dB"))
        rows.append(("U-Net mixed-bit average bits", round(report.average_bits, 2),
                     f"all weights ({layer_bits:.2f} over palettized layers; histogram {report.histogram}); bar <= 4.5"))

        chunks = coreml["Unet"].chunks
        rows.append(("chunk balance (2 chunks)", round(chunk_balance(chunks), 3),
                     f"max deviation from equal weight bytes {[c.weight_bytes for c in chunks]}; bar <= 0.10"))
        rows.append(("chained chunks vs unchunked", coreml["Unet"].chunk_difference, "max |difference|; bar 0"))

        executor, torch_runner = MILExecutor(conversions["Unet"].model), TorchRunner(components["Unet"])
        mil_time = _seconds(lambda: executor.predict(inputs))
        torch_time = _seconds(lambda: torch_runner.predict(inputs))
        rows.append(("MIL executor / PyTorch time, one U-Net step", round(mil_time / torch_time, 2),
                     f"{mil_time * 1000:.0f} ms vs {torch_time * 1000:.0f} ms, {torch.get_num_threads()} threads; bar <= 10"))

        verified = verify_bundle(bundle, backend="mil")
        for row in verified.rows:
            if row.target == "executorch" and row.what != "try-on":
                rows.append((f"ExecuTorch {row.what} relative error", float(f"{row.relative_error:.3g}"), "bar <= 1e-3"))
            if row.what == "try-on":
                rows.append((f"try-on from the 6-bit bundle ({row.target})", round(row.psnr, 1),
                             "8-bit PSNR of the generated region vs PyTorch, same seed and scheduler"))
        rows.append(("bundle verification", "passed" if verified.passed else "FAILED", "tryon-lab verify, MIL executor"))
        return rows
