"""What notebook 06 shows about a bundle: which models it exports, the bundle's tree and contract,
the golden try-on run by every runtime, and a tampered copy for the grader.

Everything here reads a bundle written by ``export_bundle``; the numbers come from the same
runners ``verify_bundle`` uses.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tryon_lab.errors import ConfigError
from tryon_lab.export.manifest import MANIFEST, read_manifest
from tryon_lab.export.verify import component_runners, golden_tryon, manifest_scheduler, to_image
from tryon_lab.tables import format_table

GARMENT, DTC = "garment model", "DTC model"


def _random_dtc(config: str, build: Path) -> Path:
    """A DTCPipeline folder with random weights of model ``config`` (made once under ``build``)."""
    from tryon_lab.models.tiny import make_random_pipeline
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    folder = build / f"random-dtc-{config}"
    if not (folder / "model_index.json").is_file():
        base_dir = build / f"random-{config}"
        if not (base_dir / "model_index.json").is_file():
            make_random_pipeline(config, base_dir)
        DTCPipeline.from_base(load_inpaint_pipeline(base_dir, device="cpu"), "film").save_pretrained(folder)
    return folder


def _model_dir(choice: str, build: Path, dtc: bool) -> tuple[Path, str]:
    from tryon_lab.models.tiny import make_random_pipeline
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_DTC, SHIPPED_INPAINT

    if choice.startswith("random:"):
        config = choice.split(":", 1)[1]
        note = f"Random `{config}` weights: the export machinery runs in seconds; its pictures mean nothing."
        if dtc:
            return _random_dtc(config, build), note
        folder = build / f"random-{config}"
        if not (folder / "model_index.json").is_file():
            make_random_pipeline(config, folder)
        return folder, note
    if choice == "shipped":
        name = SHIPPED_DTC if dtc else SHIPPED_INPAINT
        return shipped_model(name), f"The shipped `data/models/{name}`."
    return Path(choice), "The folder the profile names."


def finale_models(settings: dict[str, Any]) -> dict[str, tuple[Path, str]]:
    """{"garment model": (folder, note), "DTC model": (folder, note)} for a profile's ``finale``
    section: the full fine-tune notebook 02 saved (``build/garments/full``) when it exists, else
    ``garment_fallback``; and ``dtc_model``. ``ConfigError`` names a missing folder."""
    from tryon_lab.paths import build_dir

    build = build_dir()
    mine = build_dir("garments") / "full"
    if (mine / "model_index.json").is_file():
        garment = (mine, "Your full fine-tune from notebook 02.")
    else:
        folder, note = _model_dir(settings["garment_fallback"], build, dtc=False)
        garment = (folder, f"Notebook 02's model was not found at `{mine}`, so this stands in: {note}")
    models = {GARMENT: garment, DTC: _model_dir(settings["dtc_model"], build, dtc=True)}
    for name, (folder, _) in models.items():
        if not folder.is_dir():
            raise ConfigError(f"the {name} folder {folder} does not exist")
    return models


def bundle_tree(bundle: str | Path) -> str:
    """The bundle's files as an indented tree with sizes (a ``.mlpackage`` is one entry), and the total."""
    root = Path(bundle)
    lines, total = [f"{root.name}/"], 0

    def walk(folder: Path, depth: int) -> None:
        nonlocal total
        for path in sorted(folder.iterdir()):
            if path.is_dir() and path.suffix != ".mlpackage":
                lines.append(f"{'  ' * depth}{path.name}/")
                walk(path, depth + 1)
                continue
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
            total += size
            lines.append(f"{'  ' * depth}{path.name:<40s} {size / 1e6:8.2f} MB")

    walk(root, 1)
    lines.append(f"total {total / 1e6:.2f} MB")
    return "\n".join(lines)


def contract_table(bundle: str | Path) -> str:
    """The manifest's components with their inputs, outputs and per-target sizes, as a text table."""
    manifest = read_manifest(bundle)
    rows = []
    for name, entry in manifest.components.items():
        sizes = [f"{target} {getattr(entry, target).size_bytes / 1e6:.2f} MB" for target in entry.targets]
        for direction in ("inputs", "outputs"):
            for tensor in getattr(entry.spec, direction):
                rows.append([name, direction[:-1], tensor.name, "x".join(map(str, tensor.shape)), tensor.dtype,
                             ", ".join(sizes)])
                name, sizes = "", []
    return format_table(rows, ["component", "", "tensor", "shape", "dtype", "size"])


def bundle_runners(bundle: str | Path, backend: str = "auto") -> dict[str, dict[str, Any]]:
    """{target: {component: runner}} for every target (coreml, executorch) the bundle's components have."""
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    runners: dict[str, dict[str, Any]] = {}
    for name, entry in manifest.components.items():
        for target, runner in component_runners(bundle, entry, backend).items():
            runners.setdefault(target, {})[name] = runner
    return runners


def golden_tryons(bundle: str | Path) -> dict[str, tuple[Any, float | None]]:
    """The bundle's golden try-on, re-run by every runtime: {label: (PIL image, PSNR dB of the
    generated region against PyTorch's, None for PyTorch itself)}."""
    from tryon_lab.export.runner import run_tryon
    from tryon_lab.metrics.image import masked_psnr

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    inputs, arrays = golden_tryon(bundle, manifest)
    mask = arrays["mask"][0, 0] > 0.5
    reference = to_image(arrays["result.image"])
    shown: dict[str, tuple[Any, float | None]] = {"PyTorch (golden)": (reference, None)}
    labels = {"coreml": "Core ML (MIL executor)", "executorch": "ExecuTorch"}
    for target, runners in bundle_runners(bundle).items():
        image = to_image(run_tryon(runners, inputs, manifest_scheduler(manifest.scheduler),
                                   rows=manifest.runtime.unet_batch)["image"])
        shown[labels[target]] = (image, masked_psnr(image, reference, mask))
    return shown


def tryon_figure(bundle: str | Path):
    """A figure of ``golden_tryons``: the input, then one try-on per runtime titled with its PSNR."""
    from tryon_lab.plotting import image_grid

    _, arrays = golden_tryon(Path(bundle), read_manifest(bundle))
    shown = golden_tryons(bundle)
    masked = to_image(arrays["image"] * (1.0 - arrays["mask"]))
    titles = ["input, mask blanked"] + [label if psnr is None else f"{label}: {psnr:.1f} dB"
                                        for label, (_, psnr) in shown.items()]
    return image_grid([masked] + [image for image, _ in shown.values()], titles, ncols=len(titles))


def tamper_copy(bundle: str | Path, out: str | Path) -> Path:
    """Copy ``bundle`` to ``out`` (replacing it) and flip one byte in the middle of its largest file,
    keeping its size: the kind of fault only a hash check notices. Returns ``out``."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(bundle, out)
    largest = max((p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST), key=lambda p: p.stat().st_size)
    data = bytearray(largest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    largest.write_bytes(bytes(data))
    return out


__all__ = ["bundle_runners", "bundle_tree", "contract_table", "finale_models", "golden_tryons", "tamper_copy",
           "tryon_figure"]
