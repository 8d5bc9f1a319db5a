"""Phone programs ("Instant try-on"): the Core ML U-Net's attention, original against split_einsum,
at fp16 and 6-bit, and int8 ExecuTorch programs against fp32.

Every PSNR is measured on ``SAMPLES`` held-out inputs: the first denoising step of try-ons on test
world samples 1..SAMPLES with 1..8 DDIM steps (so the timesteps spread over the schedule), never the
golden try-on (train sample 0) that the Core ML conversion traces and measures (the int8 programs
quantize activations on the fly, so nothing calibrates; their scheme was chosen on train samples).
Core ML programs run in the MIL executor against PyTorch fp32; each figure is a mean with its 95%
bootstrap interval, and split_einsum - original is a paired difference with its verdict
(``tryon_lab.metrics.stats``). The int8 try-on row replays the held-out
try-ons with the int8 programs (the VAE in PyTorch) and reports the 8-bit PSNR of the generated
region against the PyTorch try-on.

``run(model)`` measures ``model`` (default: the shipped mini model if present, else a tiny random one,
whose numbers only show that the machinery works) and returns ``(metric, value, note)`` rows.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.export import _model_path

MODELS = ("mini-sd-inpaint",)  # run() without a model measures the shipped one
SAMPLES = 16
INT8_COMPONENTS = ("TextEncoder", "Unet")


def held_out(pipe, components, samples: int = SAMPLES):
    """``Golden`` data of try-ons on test world samples 1..``samples`` (the export's golden one is train
    sample 0)."""
    from tryon_lab.export.golden import make_golden

    return [make_golden(pipe, components, steps=1 + seed % 8, seed=seed, split="test")
            for seed in range(1, samples + 1)]


def _psnrs(runner, goldens, name: str) -> np.ndarray:
    from tryon_lab.export.compare import signal_psnr

    values = []
    for golden in goldens:
        inputs, reference = golden.components[name]
        outputs = runner.predict(inputs)
        values.append(min(signal_psnr(outputs[k], v) for k, v in reference.items()))
    return np.array(values)


def _load(path: Path):
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    pipe = load_inpaint_pipeline(path, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe, pipeline_components(pipe)


def attention_psnrs(path: Path, attention: str, golden, goldens) -> tuple[dict[str, np.ndarray], str]:
    """PSNR per held-out input of the Core ML U-Net of the model at ``path`` with ``attention``, at
    fp16 and 6-bit (palettes of the export's default settings), in the MIL executor; and the precision kept."""
    from tryon_lab.export.ane_attention import with_attention
    from tryon_lab.export.coreml import convert_measured
    from tryon_lab.export.mil import MILExecutor
    from tryon_lab.export.palettize import PaletteSettings, palettize

    _, components = _load(path)
    conversion = convert_measured(with_attention(components["Unet"], attention), *golden.components["Unet"])
    programs = {"fp16": conversion.model, "6-bit": palettize(conversion.model, 6, PaletteSettings())}
    return {label: _psnrs(MILExecutor(model), goldens, "Unet") for label, model in programs.items()}, conversion.precision


def attention_rows(measured: dict[str, tuple[dict[str, np.ndarray], str]]) -> list[tuple[str, object, str]]:
    """Rows of ``{attention: attention_psnrs(...)}``: each form's mean PSNR at fp16 and 6-bit, then
    split_einsum - original paired over the same inputs, with its verdict."""
    from tryon_lab.metrics.stats import bootstrap, paired_difference, verdict

    rows = []
    for attention, (psnrs, precision) in measured.items():
        for label, values in psnrs.items():
            bar = 35 if label == "fp16" else 30
            rows.append((f"U-Net {label} PSNR, {attention} attention", str(bootstrap(np.mean, values)),
                         f"dB, mean [95% CI] over {len(values)} held-out test inputs, MIL executor vs PyTorch fp32 "
                         f"({precision}); bar >= {bar} dB"))
    for label in ("fp16", "6-bit"):
        difference = paired_difference(measured["split_einsum"][0][label], measured["original"][0][label])
        rows.append((f"U-Net {label} PSNR, split_einsum - original", str(difference),
                     f"dB, paired over the same inputs: {verdict(difference, False, ('split_einsum', 'original'))}"))
    return rows


def int8_rows(path: Path, golden, goldens, names: tuple[str, ...] = INT8_COMPONENTS) -> list[tuple[str, object, str]]:
    """Sizes and PSNR of the int8 ExecuTorch programs of the components ``names`` of the model at
    ``path`` against the fp32 ones, and the try-on with those programs."""
    from diffusers import DDIMScheduler

    from tryon_lab.export.executorch import PteRunner, export_pte
    from tryon_lab.export.runner import TorchRunner, run_tryon
    from tryon_lab.export.verify import to_image
    from tryon_lab.metrics.image import masked_psnr
    from tryon_lab.metrics.stats import bootstrap

    pipe, components = _load(path)
    with tempfile.TemporaryDirectory() as tmp:  # the programs stay loaded until the try-ons are done
        rows, int8 = [], {}
        for name in names:
            spec, inputs = components[name].spec, golden.components[name][0]
            fp32 = export_pte(components[name], inputs, Path(tmp) / f"{name}-fp32.pte")
            try:
                quantized = export_pte(components[name], inputs, Path(tmp) / f"{name}-int8.pte", "int8")
            except Exception as err:  # a lowering failure is a result to record, not a reason to lose the others
                rows.append((f"ExecuTorch {name} int8", "lowering fails", f"{type(err).__name__}: {str(err)[:160]}"))
                continue
            int8[name] = PteRunner(quantized, spec)
            ratio = quantized.stat().st_size / fp32.stat().st_size
            rows.append((f"ExecuTorch {name} int8 / fp32 size", round(ratio, 3),
                         f"{quantized.stat().st_size} / {fp32.stat().st_size} bytes"
                         + ("; bar <= 0.30" if name == "Unet" else "")))
            psnr = bootstrap(np.mean, _psnrs(int8[name], goldens, name))
            rows.append((f"ExecuTorch {name} int8 PSNR", str(psnr),
                         f"dB vs PyTorch fp32, mean [95% CI] over {len(goldens)} held-out test inputs"))
        runners = {name: int8.get(name) or TorchRunner(component) for name, component in components.items()}
        tryons = []
        for held in goldens:
            result = run_tryon(runners, held.inputs, DDIMScheduler.from_config(pipe.scheduler.config))
            mask = held.inputs.arrays()["mask"][0, 0] > 0.5
            tryons.append(masked_psnr(to_image(result["image"]), to_image(held.result["image"]), mask))
        rows.append((f"try-on with int8 {' and '.join(int8) or 'nothing'}", str(bootstrap(np.mean, np.array(tryons))),
                     f"dB, 8-bit PSNR of the generated region vs the PyTorch try-on, mean [95% CI] over {len(goldens)} "
                     "held-out test try-ons (1-8 DDIM steps, VAE in PyTorch); bar >= 30 dB"))
    return rows


def run(model: str | Path | None = None, samples: int = SAMPLES,
        int8_components: tuple[str, ...] = INT8_COMPONENTS) -> list[tuple[str, object, str]]:
    """Measure the attention forms and the int8 programs (three processes side by side, each loading
    the model); return the benchmark rows."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tryon_lab.export.ane_attention import ATTENTIONS
    from tryon_lab.export.golden import make_golden

    with tempfile.TemporaryDirectory() as tmp:
        path, label = _model_path(model, Path(tmp))
        pipe, components = _load(path)
        golden = make_golden(pipe, components)
        goldens = held_out(pipe, components, samples)
        with ProcessPoolExecutor(len(ATTENTIONS) + 1, mp_context=multiprocessing.get_context("spawn")) as pool:
            attention = {a: pool.submit(attention_psnrs, path, a, golden, goldens) for a in ATTENTIONS}
            int8 = pool.submit(int8_rows, path, golden, goldens, int8_components)
            rows: list[tuple[str, object, str]] = [("model", label, f"{pipe.resolution}px; {samples} held-out test inputs")]
            rows += attention_rows({a: future.result() for a, future in attention.items()})
            rows += int8.result()
        return rows
