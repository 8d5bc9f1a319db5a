"""Verify a bundle against its golden PyTorch outputs, on any machine.

Checks, in order: the manifest parses and every file's SHA-256 matches (a tampered, missing or
extra file fails the bundle and nothing in it is run); every component on every target on its
golden input (Core ML packages through ``mil.load_runner``, chunks chained as a phone chains
them; ExecuTorch programs through the ExecuTorch runtime); and a whole try-on per target beside
the PyTorch one (same inputs, seed and scheduler), reported as the PSNR of the generated region.
Bars: 35 dB for unpalettized Core ML components, 30 dB for palettized ones, 1e-3 relative error
for fp32 ExecuTorch programs (30 dB when int8-quantized); the try-on is reported, not barred.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tryon_lab.export.compare import CONVERSION_MIN_PSNR, max_abs_error, relative_error, signal_psnr
from tryon_lab.export.errors import BundleError
from tryon_lab.export.golden import load_arrays, split_component_arrays
from tryon_lab.export.manifest import MANIFEST, SCHEDULERS, ComponentEntry, Manifest, Package, read_manifest
from tryon_lab.paths import sha256_file
from tryon_lab.tables import format_table

PALETTIZED_MIN_PSNR = 30.0
EXECUTORCH_MAX_RELATIVE_ERROR = 1e-3


@dataclass(frozen=True)
class CheckRow:
    """One line of the report: ``what`` was run on ``target``, its numbers, and the bar it must meet
    (``passed`` is None for reported-only rows)."""

    what: str
    target: str
    psnr: float | None
    max_abs_error: float | None
    relative_error: float | None
    bar: str
    passed: bool | None
    note: str = ""


@dataclass(frozen=True)
class Report:
    """The result of ``verify_bundle``: ``problems`` with the files, and one ``CheckRow`` per check."""

    bundle: Path
    problems: tuple[str, ...]
    rows: tuple[CheckRow, ...]

    @property
    def passed(self) -> bool:
        """True when the files are intact and every barred check passed."""
        return not self.problems and all(row.passed is not False for row in self.rows)

    def table(self) -> str:
        """The per-check table as text (PSNR in dB)."""
        def show(value: float | None, digits: str) -> str:
            return "-" if value is None else format(value, digits)

        rows = [[r.what, r.target, show(r.psnr, ".1f"), show(r.max_abs_error, ".3g"), show(r.relative_error, ".2g"),
                 r.bar, {True: "ok", False: "FAIL", None: "-"}[r.passed], r.note] for r in self.rows]
        lines = [f"bundle {self.bundle}"]
        lines += [f"  file problem: {p}" for p in self.problems] or ["  files: every sha256 matches the manifest"]
        if rows:
            lines.append(format_table(rows, ["check", "target", "psnr", "max abs err", "rel err", "bar", "result", "note"]))
        lines.append("PASSED" if self.passed else "FAILED")
        return "\n".join(lines)


def check_files(bundle: Path, manifest: Manifest) -> list[str]:
    """Compare every file under ``bundle`` with the manifest's list; return the problems found."""
    problems = []
    for relative, entry in manifest.files.items():
        path = bundle / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{relative}: sha256 differs from the manifest (modified after export)")
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {MANIFEST}
    problems += [f"{extra}: not listed in the manifest" for extra in sorted(present - set(manifest.files))]
    return problems


def verify_bundle(bundle: str | Path, backend: str = "auto") -> Report:
    """Check ``bundle``'s files, components and a whole try-on; return the ``Report``.

    ``backend`` picks how Core ML packages run: ``auto`` (Core ML on macOS, else the MIL
    executor), ``mil`` or ``coreml``.
    """
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    problems = check_files(bundle, manifest)
    if problems:
        return Report(bundle, tuple(problems), ())
    runners: dict[str, dict[str, Any]] = {"coreml": {}, "executorch": {}}
    rows = []
    for entry in manifest.components.values():
        rows += _check_component(bundle, entry, backend, runners)
    needed = {"Unet", "VAEEncoder", "VAEDecoder", *manifest.conditioning.components}
    rows += [tryon_row(bundle, manifest, target, found) for target, found in runners.items()
             if found and set(found) >= needed]
    return Report(bundle, (), tuple(rows))


def _check_component(bundle: Path, entry: ComponentEntry, backend: str,
                     runners: dict[str, dict[str, Any]]) -> list[CheckRow]:
    """Run one component on every target it has on its golden input; register its runners."""
    name = entry.spec.name
    inputs, outputs = split_component_arrays(load_arrays(bundle / entry.golden))
    missing = [t.name for t in entry.spec.inputs if t.name not in inputs]
    if missing or not outputs:
        raise BundleError(f"{entry.golden} lacks the inputs {missing} or any output of {name}")
    rows = []
    for target, runner in component_runners(bundle, entry, backend).items():
        runners[target][name] = runner
        if target == "coreml":
            coreml = entry.coreml
            bar = PALETTIZED_MIN_PSNR if coreml.compression.palettized else CONVERSION_MIN_PSNR
            chunks = len(coreml.packages)
            note = f"{chunks} chained chunks" if chunks > 1 else coreml.precision
            rows.append(_psnr_row(name, "coreml", runner, inputs, outputs, bar, note))
        elif entry.executorch.quantization == "none":
            rows.append(_relative_row(name, runner, inputs, outputs))
        else:
            rows.append(_psnr_row(name, "executorch", runner, inputs, outputs, PALETTIZED_MIN_PSNR,
                                  entry.executorch.quantization))
    return rows


def component_runners(bundle: Path, entry: ComponentEntry, backend: str = "auto") -> dict[str, Any]:
    """{target: runner} for every target (coreml, executorch) the component ``entry`` has."""
    runners: dict[str, Any] = {}
    if entry.coreml:
        runners["coreml"] = coreml_runner(bundle, entry.coreml.packages, backend)
    if entry.executorch:
        from tryon_lab.export.executorch import PteRunner

        runners["executorch"] = PteRunner(bundle / entry.executorch.path, entry.spec)
    return runners


def coreml_runner(bundle: Path, packages: tuple[Package, ...], backend: str):
    """A runner of a component's Core ML packages (one, or chained chunks) with ``backend`` (auto, mil, coreml)."""
    from tryon_lab.export.mil import load_runner
    from tryon_lab.export.runner import ChainedRunner

    runners = [load_runner(bundle / p.path, backend) for p in packages]
    if len(runners) == 1:
        return runners[0]
    return ChainedRunner(runners, [[t.name for t in p.inputs] for p in packages])


def compare_outputs(runner, inputs, outputs) -> tuple[float, float, float]:
    """(PSNR, max |error|, relative error) of ``runner`` on ``inputs`` against ``outputs``, worst output;
    ``BundleError`` if it does not produce them all."""
    produced = runner.predict(inputs)
    missing = set(outputs) - set(produced)
    if missing:
        raise BundleError(f"a program does not produce {sorted(missing)}")
    psnr = min(signal_psnr(produced[k], v) for k, v in outputs.items())
    return (psnr, max(max_abs_error(produced[k], v) for k, v in outputs.items()),
            max(relative_error(produced[k], v) for k, v in outputs.items()))


def _psnr_row(name, target, runner, inputs, outputs, bar: float, note: str) -> CheckRow:
    psnr, error, relative = compare_outputs(runner, inputs, outputs)
    return CheckRow(name, target, psnr, error, relative, f">= {bar:g} dB", psnr >= bar, note)


def _relative_row(name, runner, inputs, outputs) -> CheckRow:
    psnr, error, relative = compare_outputs(runner, inputs, outputs)
    bar = EXECUTORCH_MAX_RELATIVE_ERROR
    return CheckRow(name, "executorch", psnr, error, relative, f"rel <= {bar:g}", relative <= bar, "fp32")


def manifest_scheduler(config: dict[str, Any]):
    """A diffusers scheduler from a manifest's config; only the known sampling schedulers are accepted."""
    import diffusers

    name = config.get("_class_name")
    if name not in SCHEDULERS:
        raise BundleError(f"scheduler {name!r:.60} is not one of {SCHEDULERS}")
    return getattr(diffusers, name).from_config(config)


def golden_tryon(bundle: Path, manifest: Manifest) -> tuple[Any, dict[str, np.ndarray]]:
    """The bundle's golden try-on: its ``TryOnInputs`` and all its arrays (inputs and ``result.*``)."""
    from tryon_lab.export.runner import TryOnInputs

    arrays = load_arrays(bundle / manifest.golden.tryon)
    missing = [name for name in ("image", "mask", "noise", "result.image") if name not in arrays]
    if missing:
        raise BundleError(f"{manifest.golden.tryon} lacks the arrays {missing}")
    return TryOnInputs.from_arrays(arrays, manifest.golden.steps, manifest.golden.guidance_scale), arrays


def tryon_row(bundle: Path, manifest: Manifest, target: str, runners: dict[str, Any]) -> CheckRow:
    """The try-on row of the report: ``runners`` (one ``target``'s) replay the golden try-on; the PSNR of
    the generated region against PyTorch's is reported, not barred."""
    from tryon_lab.export.runner import run_tryon
    from tryon_lab.metrics.image import masked_psnr

    inputs, arrays = golden_tryon(bundle, manifest)
    result = run_tryon(runners, inputs, manifest_scheduler(manifest.scheduler), rows=manifest.runtime.unet_batch)
    mask = arrays["mask"][0, 0] > 0.5
    region = masked_psnr(to_image(result["image"]), to_image(arrays["result.image"]), mask)
    error = max_abs_error(result["image"], arrays["result.image"])
    return CheckRow("try-on", target, region, error, None, "reported", None,
                    f"8-bit PSNR of the generated region, {inputs.steps} steps")


def to_image(image: np.ndarray):
    """(1, 3, H, W) in [-1, 1] -> the PIL image the pipeline would show."""
    import torch

    from tryon_lab.pipelines.latents import tensor_to_pil

    return tensor_to_pil(torch.from_numpy(image[0]))
