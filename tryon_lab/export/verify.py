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

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tryon_lab.export.bundle import FORMAT, FORMAT_VERSION, MANIFEST, RETIRED_FORMATS, sha256_file
from tryon_lab.export.compare import CONVERSION_MIN_PSNR, max_abs_error, relative_error, signal_psnr
from tryon_lab.export.conditioning import named
from tryon_lab.export.contract import ComponentSpec, TensorSpec
from tryon_lab.export.errors import BundleError
from tryon_lab.export.golden import load_arrays, split_component_arrays
from tryon_lab.tables import format_table

PALETTIZED_MIN_PSNR = 30.0
EXECUTORCH_MAX_RELATIVE_ERROR = 1e-3
MAX_STEPS = 1000  # a manifest cannot make verification run for ever
SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler")


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


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """Parse ``bundle/manifest.json``; ``BundleError`` if it is missing, not JSON, not a bundle manifest or
    of another ``format_version`` (naming the version and why it cannot be read)."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a bundle: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        why = f" ({RETIRED_FORMATS[version]})" if isinstance(version, int) and version in RETIRED_FORMATS else ""
        raise BundleError(f"{path}: bundle format_version {version!r:.20} cannot be read by this tryon-lab, which reads "
                          f"version {FORMAT_VERSION}{why}; export the model again with `tryon-lab export`")
    for key, kind in (("components", dict), ("files", dict), ("golden", dict), ("scheduler", dict)):
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{path}: {key!r} must be a JSON {kind.__name__}")
    return manifest


def bundle_path(bundle: Path, relative: Any, files: dict[str, Any] | None = None) -> Path:
    """Resolve a manifest path inside ``bundle``; ``BundleError`` for absolute paths, ones leaving it,
    or (given the manifest's ``files``) ones whose content the manifest does not hash."""
    if not isinstance(relative, str) or not relative:
        raise BundleError(f"a manifest path must be a non-empty string, got {relative!r:.80}")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or "\\" in relative:
        raise BundleError(f"manifest path {relative!r:.80} leaves the bundle")
    if files is not None and relative not in files and not any(f.startswith(relative + "/") for f in files):
        raise BundleError(f"manifest path {relative!r:.80} names no file listed with a sha256")
    return bundle / pure


def check_files(bundle: Path, manifest: dict[str, Any]) -> list[str]:
    """Compare every file under ``bundle`` with the manifest's list; return the problems found."""
    problems = []
    listed = manifest["files"]
    for relative, entry in listed.items():
        path = bundle_path(bundle, relative)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            problems.append(f"{relative}: manifest entry has no sha256")
        elif not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{relative}: sha256 differs from the manifest (modified after export)")
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {MANIFEST}
    problems += [f"{extra}: not listed in the manifest" for extra in sorted(present - set(listed))]
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
    try:
        for name, entry in manifest["components"].items():
            rows += _check_component(bundle, manifest["files"], name, entry, backend, runners)
        conditioning = named(manifest["runtime"].get("conditioning", "text"))  # bundles before DTC export: text
        needed = {"Unet", "VAEEncoder", "VAEDecoder", *conditioning.components}
        rows += [_tryon_row(bundle, manifest, target, found) for target, found in runners.items()
                 if found and set(found) >= needed]
    except (KeyError, TypeError, AttributeError) as err:
        raise BundleError(f"malformed manifest or golden data ({type(err).__name__}: {err})") from None
    return Report(bundle, (), tuple(rows))


def _check_component(bundle: Path, files: dict[str, Any], name: str, entry: dict[str, Any], backend: str,
                     runners: dict[str, dict[str, Any]]) -> list[CheckRow]:
    """Run one component on every target it has on its golden input; register its runners."""
    inputs, outputs = split_component_arrays(load_arrays(bundle_path(bundle, entry["golden"], files)))
    rows = []
    for target, runner in component_runners(bundle, files, name, entry, backend).items():
        runners[target][name] = runner
        if target == "coreml":
            coreml = entry["coreml"]
            bar = PALETTIZED_MIN_PSNR if coreml["compression"]["mode"] != "none" else CONVERSION_MIN_PSNR
            chunks = len(coreml["packages"])
            note = f"{chunks} chained chunks" if chunks > 1 else coreml["precision"]
            rows.append(_psnr_row(name, "coreml", runner, inputs, outputs, bar, note))
        elif entry["executorch"]["quantization"] == "none":
            rows.append(_relative_row(name, runner, inputs, outputs))
        else:
            rows.append(_psnr_row(name, "executorch", runner, inputs, outputs, PALETTIZED_MIN_PSNR,
                                  entry["executorch"]["quantization"]))
    return rows


def component_runners(bundle: Path, files: dict[str, Any], name: str, entry: dict[str, Any],
                      backend: str = "auto") -> dict[str, Any]:
    """{target: runner} for every target (coreml, executorch) manifest component ``name`` has."""
    runners: dict[str, Any] = {}
    if "coreml" in entry:
        runners["coreml"] = coreml_runner(bundle, files, entry["coreml"]["packages"], backend)
    if "executorch" in entry:
        from tryon_lab.export.executorch import PteRunner

        spec = ComponentSpec.from_json(name, entry)
        runners["executorch"] = PteRunner(bundle_path(bundle, entry["executorch"]["path"], files), spec)
    return runners


def coreml_runner(bundle: Path, files: dict[str, Any], packages: list, backend: str):
    """A runner of a component's Core ML packages (one, or chained chunks) with ``backend`` (auto, mil, coreml)."""
    from tryon_lab.export.mil import load_runner
    from tryon_lab.export.runner import ChainedRunner

    if not isinstance(packages, list) or not packages:
        raise BundleError("a coreml entry must list its packages")
    runners = [load_runner(bundle_path(bundle, p["path"], files), backend) for p in packages]
    if len(runners) == 1:
        return runners[0]
    return ChainedRunner(runners, [[TensorSpec.from_json(t).name for t in p["inputs"]] for p in packages])


def _compare(runner, inputs, outputs) -> tuple[float, float, float]:
    produced = runner.predict(inputs)
    missing = set(outputs) - set(produced)
    if missing:
        raise BundleError(f"a program does not produce {sorted(missing)}")
    psnr = min(signal_psnr(produced[k], v) for k, v in outputs.items())
    return (psnr, max(max_abs_error(produced[k], v) for k, v in outputs.items()),
            max(relative_error(produced[k], v) for k, v in outputs.items()))


def _psnr_row(name, target, runner, inputs, outputs, bar: float, note: str) -> CheckRow:
    psnr, error, relative = _compare(runner, inputs, outputs)
    return CheckRow(name, target, psnr, error, relative, f">= {bar:g} dB", psnr >= bar, note)


def _relative_row(name, runner, inputs, outputs) -> CheckRow:
    psnr, error, relative = _compare(runner, inputs, outputs)
    bar = EXECUTORCH_MAX_RELATIVE_ERROR
    return CheckRow(name, "executorch", psnr, error, relative, f"rel <= {bar:g}", relative <= bar, "fp32")


def make_scheduler(config: dict[str, Any]):
    """A diffusers scheduler from a manifest config; only the known sampling schedulers are accepted."""
    import diffusers

    name = config.get("_class_name")
    if name not in SCHEDULERS:
        raise BundleError(f"scheduler {name!r:.60} is not one of {SCHEDULERS}")
    return getattr(diffusers, name).from_config(config)


def _tryon_row(bundle: Path, manifest: dict[str, Any], target: str, runners: dict[str, Any]) -> CheckRow:
    from tryon_lab.export.runner import TryOnInputs, run_tryon
    from tryon_lab.metrics.image import masked_psnr

    golden = manifest["golden"]
    arrays = load_arrays(bundle_path(bundle, golden.get("tryon"), manifest["files"]))
    steps = golden["steps"]
    if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise BundleError(f"golden steps must be an integer in [1, {MAX_STEPS}], got {steps!r:.40}")
    inputs = TryOnInputs.from_arrays(arrays, steps, float(golden["guidance_scale"]))
    result = run_tryon(runners, inputs, make_scheduler(manifest["scheduler"]))
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
