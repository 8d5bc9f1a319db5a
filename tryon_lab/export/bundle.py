"""Write the phone bundle: Core ML packages, ExecuTorch programs, golden data and a manifest.

Layout::

    <bundle>/manifest.json            the fields of ``tryon_lab.export.manifest``
    <bundle>/coreml/<Name>.mlpackage  TextEncoder, Unet or UnetChunk1..N, VAEEncoder, VAEDecoder;
                                      a DTC model: ImageEncoder, HintEncoder instead of TextEncoder
    <bundle>/coreml/vocab.json, merges.txt   (text models only)
    <bundle>/executorch/<Name>.pte
    <bundle>/golden/tryon.safetensors, golden/<Name>.safetensors

The bundle is written to a temporary folder and renamed into place, so a failed export never
leaves a half-written bundle. Bits and sizes in the manifest are read from the written programs.
The manifest's fields are ``tryon_lab.export.manifest``'s dataclasses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tryon_lab import __version__
from tryon_lab.export.ane_attention import ATTENTIONS, REWRITTEN, with_attention
from tryon_lab.export.chunking import Chunk, check_chunks, chunk_balance, chunk_program
from tryon_lab.export.contract import Component, TensorSpec, pipeline_components, runtime_contract
from tryon_lab.export.coreml import DEPLOYMENT_TARGET, Conversion, convert_measured, program_psnr
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.golden import Golden, component_arrays, make_golden, save_arrays
from tryon_lab.export.manifest import (
    MANIFEST,
    TARGETS,
    Bits,
    Chunking,
    ComponentEntry,
    Compression,
    CoreMLEntry,
    ExecuTorchEntry,
    FileEntry,
    GoldenTryOn,
    Manifest,
    Package,
    Runtime,
    TokenizerFiles,
    write_manifest,
)
from tryon_lab.export.mixed_bits import MixedBitResult, mixed_bit_palettize
from tryon_lab.export.palettize import GROUP_SIZE, PaletteSettings, WeightReport, palettize, weight_report
from tryon_lab.paths import sha256_file, shipped_model
from tryon_lab.pipelines.samplers import LCM_GUIDANCE, SAMPLERS

BITS_CHOICES = ("16", "8", "6", "4", "mixed")
SAMPLER_CHOICES = ("ddim", "lcm")
COMPRESSED_COMPONENTS = ("Unet",)  # palettized and chunked; the others ship at their measured precision


@dataclass(frozen=True)
class ExportOptions:
    """What to export: ``bits`` (16, 8, 6, 4 or mixed) for the U-Net, its ``chunks``, the ``targets``,
    palettization ``granularity`` / ``group_size``, the mixed-bit ``target_psnr`` or ``target_bits``,
    ExecuTorch ``quantization`` (none or int8), the Core ML U-Net's ``attention`` (original or
    split_einsum), the ``sampler`` the phone loop runs (ddim, or lcm: the model's LCM LoRA fused into
    the U-Net, one row per U-Net call, no guidance), and the golden try-on's ``steps``,
    ``guidance_scale`` (default: the sampler's) and ``seed``."""

    bits: str = "6"
    chunks: int = 1
    targets: tuple[str, ...] = TARGETS
    granularity: str = "per_grouped_channel"
    group_size: int = GROUP_SIZE
    target_psnr: float | None = 30.0
    target_bits: float | None = None
    quantization: str = "none"
    attention: str = "original"
    sampler: str = "ddim"
    steps: int = 4
    guidance_scale: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", str(self.bits))  # 6 and "6" mean the same
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.bits not in BITS_CHOICES:
            raise ExportInputError(f"bits must be one of {', '.join(BITS_CHOICES)}, got {self.bits!r}")
        unknown = set(self.targets) - set(TARGETS) if self.targets else {"(none)"}
        if unknown:
            raise ExportInputError(f"targets must be among {', '.join(TARGETS)}, got {sorted(unknown)}")
        if self.chunks < 1 or self.steps < 1 or self.group_size < 1:
            raise ExportInputError(f"chunks, steps and group_size must be >= 1, got {self.chunks}, {self.steps} "
                                   f"and {self.group_size}")
        if self.attention not in ATTENTIONS:
            raise ExportInputError(f"attention must be one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.bits == "mixed" and (self.target_psnr is None) == (self.target_bits is None):
            raise ExportInputError("mixed bits need exactly one of target_psnr and target_bits")
        if self.sampler not in SAMPLER_CHOICES:
            raise ExportInputError(f"sampler must be one of {', '.join(SAMPLER_CHOICES)}, got {self.sampler!r}")
        if self.guidance_scale is None:
            object.__setattr__(self, "guidance_scale", SAMPLERS[self.sampler].guidance_scale)
        elif self.sampler == "lcm" and self.guidance_scale != LCM_GUIDANCE:
            raise ExportInputError("the lcm sampler runs without guidance (the LCM LoRA has it distilled in); "
                                   f"leave guidance_scale unset, got {self.guidance_scale}")

    @property
    def settings(self) -> PaletteSettings:
        """The palettization settings these options ask for."""
        return PaletteSettings(self.granularity, self.group_size)


@dataclass
class CoreMLComponent:
    """One component ready to write: its ``conversion``, the ``compression`` record, the programs
    to ship (``chunks``, one when unchunked), and the chained-vs-unchunked difference."""

    conversion: Conversion
    compression: Compression
    psnr: float
    chunks: list[Chunk]
    chunk_difference: float | None = None
    attention: str = "original"


def mixed_unet_component(conversion: Conversion, mixed: MixedBitResult, chunks: Sequence[Chunk],
                         inputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                         settings: PaletteSettings, target_psnr: float) -> CoreMLComponent:
    """The bundle's component for a U-Net already mixed-bit palettized (``mixed``) and chunked
    (``chunks``), its PSNR measured on ``inputs`` (the golden ones, not the calibration inputs), so a
    notebook writes the bundle from what it has computed instead of palettizing a second time
    (its attention is the original form)."""
    compression = Compression(mode="kmeans", bits="mixed", granularity=settings.granularity,
                              group_size=settings.group_size, weight_threshold=settings.weight_threshold,
                              target_psnr=target_psnr, allocation=dict(sorted(mixed.allocation.items())))
    difference = check_chunks(mixed.model, list(chunks), inputs) if len(chunks) > 1 else None
    return CoreMLComponent(conversion, compression, program_psnr(mixed.model, inputs, reference), list(chunks), difference)


def compress_component(name: str, conversion: Conversion, golden: Golden, options: ExportOptions) -> CoreMLComponent:
    """Palettize (then chunk) ``conversion``'s program as ``options`` say, if ``name`` is compressed;
    measure the result against the golden PyTorch outputs."""
    inputs, reference = golden.components[name]
    if name not in COMPRESSED_COMPONENTS or options.bits == "16":
        model, compression = conversion.model, Compression("none")
    else:
        compression = Compression("kmeans", options.bits if options.bits == "mixed" else int(options.bits),
                                  options.granularity, options.group_size, options.settings.weight_threshold)
        if options.bits == "mixed":
            first = next(iter(reference.values()))
            mixed = mixed_bit_palettize(conversion.model, inputs, first, options.target_psnr, options.target_bits,
                                        options.settings)
            model = mixed.model
            compression = replace(compression, target_psnr=options.target_psnr, target_bits=options.target_bits,
                                  allocation=dict(sorted(mixed.allocation.items())))
        else:
            model = palettize(conversion.model, int(options.bits), options.settings)
    psnr = program_psnr(model, inputs, reference)
    n_chunks = options.chunks if name in COMPRESSED_COMPONENTS else 1
    chunks = chunk_program(model, n_chunks)
    difference = check_chunks(model, chunks, inputs) if n_chunks > 1 else None
    attention = options.attention if name in REWRITTEN else "original"
    return CoreMLComponent(conversion, compression, psnr, chunks, difference, attention)


def build_coreml(components: Mapping[str, Component], golden: Golden, options: ExportOptions,
                 log: Callable[[str], None] = print) -> dict[str, CoreMLComponent]:
    """Convert every component (fp16, or fp32 where measured necessary; the U-Net's attention in the
    form ``options.attention``), then compress and chunk."""
    built = {}
    for name, component in components.items():
        conversion = convert_measured(with_attention(component, options.attention), *golden.components[name])
        log(f"  {name}: converted in {conversion.seconds:.1f} s, {conversion.precision}, {conversion.psnr:.1f} dB")
        built[name] = compress_component(name, conversion, golden, options)
    return built


def prepare_sampler(pipe: Any, folder: Path, sampler: str) -> None:
    """Make ``pipe`` (loaded from ``folder``) sample as the bundle will: with DDIM, or (``lcm``) with
    LCMScheduler and the folder's LCM LoRA fused into the U-Net weights, so the exported U-Net is
    one program (a text or a DTC model: each distils its own). ``ExportInputError`` for a model without
    an LCM LoRA."""
    from tryon_lab.pipelines.samplers import fuse_lcm, load_lcm, use_sampler

    if sampler != "lcm":
        use_sampler(pipe, sampler)
        return
    if not load_lcm(pipe, folder):
        raise ExportInputError(f"{folder} has no LCM LoRA (lcm/); distil one with `tryon-lab distill --base {folder}`")
    fuse_lcm(pipe)


def export_bundle(model_path: str | Path | None, out: str | Path, options: ExportOptions = ExportOptions(),
                  log: Callable[[str], None] = print, overwrite: bool = True) -> Path:
    """Export the pipeline at ``model_path`` (default: the shipped text model; a DTC parts or pipeline
    folder gives a DTC bundle) to a bundle at ``out``; return it. ``overwrite=False`` refuses an ``out``
    that holds files (``ExportInputError``, before any work)."""
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT, load_pipeline

    if not overwrite and Path(out).is_dir() and any(Path(out).iterdir()):
        raise ExportInputError(f"--out {out} is not empty (an earlier bundle?); pass --force to replace it, "
                               "or choose another folder")
    pipe = load_pipeline(model_path, device="cpu")
    prepare_sampler(pipe, Path(model_path) if model_path is not None else shipped_model(SHIPPED_INPAINT),
                    options.sampler)
    components = pipeline_components(pipe)
    golden = make_golden(pipe, components, options.steps, options.guidance_scale, options.seed)
    coreml = build_coreml(components, golden, options, log) if "coreml" in options.targets else {}
    return write_bundle(out, pipe, components, golden, coreml, options, source=str(model_path or "shipped"), log=log)


def write_bundle(out: str | Path, pipe: Any, components: Mapping[str, Component], golden: Golden,
                 coreml: Mapping[str, CoreMLComponent], options: ExportOptions, source: str = "",
                 log: Callable[[str], None] = print) -> Path:
    """Write the bundle folder ``out`` (atomically) from prepared parts; ExecuTorch programs are made here."""
    from tryon_lab.training.common import save_atomically

    def write(root: Path) -> None:
        root.mkdir(parents=True)
        (root / "golden").mkdir()
        entries = {}
        for name, component in components.items():
            golden_path = f"golden/{name}.safetensors"
            save_arrays(root / golden_path, component_arrays(*golden.components[name]))
            executorch = None
            if "executorch" in options.targets:
                executorch = _write_pte(root, component, golden, options)
                log(f"  {name}: ExecuTorch program written ({options.quantization})")
            entries[name] = ComponentEntry(component.spec, golden_path,
                                           _write_coreml(root, name, coreml[name]) if "coreml" in options.targets
                                           else None, executorch)
        save_arrays(root / "golden" / "tryon.safetensors",
                    {**golden.inputs.arrays(), **{f"result.{k}": v for k, v in golden.result.items()}})
        tokenizer = getattr(pipe, "tokenizer", None) if "coreml" in options.targets else None
        if tokenizer is not None:
            _write_tokenizer(pipe, root / "coreml")
        manifest = Manifest(
            created_by=f"tryon_lab {__version__}",
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            source_model=source,
            runtime=Runtime(**runtime_contract(pipe)),
            scheduler=_jsonable(dict(pipe.scheduler.config)),
            tokenizer=TokenizerFiles("coreml/vocab.json", "coreml/merges.txt", int(tokenizer.model_max_length))
            if tokenizer is not None else None,
            targets=tuple(t for t in TARGETS if t in options.targets),
            components=entries,
            golden=GoldenTryOn("golden/tryon.safetensors", golden.prompt, options.steps, options.guidance_scale,
                               options.seed),
            files=file_hashes(root),
        )
        write_manifest(root, manifest)

    return save_atomically(out, write)


def _write_coreml(root: Path, name: str, built: CoreMLComponent) -> CoreMLEntry:
    folder = root / "coreml"
    folder.mkdir(exist_ok=True)
    packages = []
    chunked = len(built.chunks) > 1
    for index, chunk in enumerate(built.chunks, start=1):
        package = f"{name}Chunk{index}" if chunked else name
        path = folder / f"{package}.mlpackage"
        chunk.model.save(str(path))
        io = package_io(chunk.model)
        packages.append(Package(package, path.relative_to(root).as_posix(),
                                tuple(map(TensorSpec.from_json, io["inputs"])),
                                tuple(map(TensorSpec.from_json, io["outputs"])),
                                Bits.of(weight_report(chunk.model)), folder_bytes(path)))
    combined = WeightReport(tuple(w for c in built.chunks for w in weight_report(c.model).weights))
    return CoreMLEntry(
        precision=built.conversion.precision,
        deployment_target=DEPLOYMENT_TARGET,
        conversion_psnr=_number(built.conversion.psnr),
        psnr=_number(built.psnr),
        compression=built.compression,
        bits=Bits.of(combined),
        size_bytes=sum(p.size_bytes for p in packages),
        packages=tuple(packages),
        chunking=Chunking(len(built.chunks), round(chunk_balance(built.chunks), 4), built.chunk_difference)
        if chunked else None,
        attention=built.attention,
    )


def _write_pte(root: Path, component: Component, golden: Golden, options: ExportOptions) -> ExecuTorchEntry:
    from tryon_lab.export.executorch import export_pte

    folder = root / "executorch"
    folder.mkdir(exist_ok=True)
    path = export_pte(component, golden.components[component.name][0], folder / f"{component.name}.pte",
                      options.quantization)
    return ExecuTorchEntry(path.relative_to(root).as_posix(), options.quantization, path.stat().st_size)


def _write_tokenizer(pipe: Any, folder: Path) -> None:
    """Write the CLIP BPE files a phone tokenizer reads (Apple's layout), from the fast tokenizer's model."""
    model = json.loads(pipe.tokenizer.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    folder.mkdir(exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def package_io(model) -> dict[str, list[dict[str, Any]]]:
    """``{"inputs", "outputs"}`` of an ML Program as contract tensor entries, read from its description."""
    from coremltools.proto import FeatureTypes_pb2

    kinds = {FeatureTypes_pb2.ArrayFeatureType.FLOAT32: "float32", FeatureTypes_pb2.ArrayFeatureType.INT32: "int32",
             FeatureTypes_pb2.ArrayFeatureType.FLOAT16: "float16"}

    def entries(features) -> list[dict[str, Any]]:
        return [TensorSpec(f.name, tuple(int(s) for s in f.type.multiArrayType.shape),
                           kinds.get(f.type.multiArrayType.dataType, "unknown")).to_json() for f in features]

    description = model.get_spec().description
    return {"inputs": entries(description.input), "outputs": entries(description.output)}


def folder_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (or of ``path`` itself)."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def file_hashes(root: Path) -> dict[str, FileEntry]:
    """``{relative path: FileEntry}`` of every file under ``root`` except the manifest."""
    return {p.relative_to(root).as_posix(): FileEntry(sha256_file(p), p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).as_posix() != MANIFEST}


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _jsonable(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
