"""The manifest's entries of files and programs: a hashed file, and per component its Core ML packages
(bits, compression, chunking) and ExecuTorch program, each a frozen dataclass with ``to_json`` and
``from_json``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tryon_lab.export.ane_attention import ATTENTIONS
from tryon_lab.export.contract import ComponentSpec, TensorSpec
from tryon_lab.export.manifest_fields import (
    NAME,
    SHA256,
    Invalid,
    optional,
    read_float,
    read_int,
    read_key,
    read_list,
    read_object,
    read_path,
    read_tensor,
    read_text,
    show,
)

TARGETS = ("coreml", "executorch")
# Core ML compute precisions, in the order the converter tries them: fp16, fp16 with the variance of
# GroupNorm / LayerNorm kept in fp32 (where fp16 overflows), fp32
PRECISIONS = ("float16", "float16+fp32-variance", "float32")
QUANTIZATIONS = ("none", "int8")
GRANULARITIES = ("per_tensor", "per_grouped_channel")


@dataclass(frozen=True)
class FileEntry:
    """A hashed file: its ``sha256`` (hex) and size in ``bytes``."""

    sha256: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        """Return ``{"sha256", "bytes"}``."""
        return {"sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_json(cls, value: Any, name: str) -> FileEntry:
        """Parse a ``files`` entry (``name`` is its field, for errors)."""
        value = read_object(value, name)
        return cls(read_text(read_key(value, "sha256", name), f"{name}.sha256", pattern=SHA256),
                   read_int(read_key(value, "bytes", name), f"{name}.bytes"))


@dataclass(frozen=True)
class Bits:
    """Weights by bit width, read from programs: ``average`` bits, ``histogram`` {bits: elements},
    ``weight_elements`` and stored ``weight_bytes``."""

    average: float
    histogram: dict[int, int]
    weight_elements: int
    weight_bytes: int

    @classmethod
    def of(cls, report: Any) -> Bits:
        """The bits of a ``palettize.WeightReport``."""
        return cls(round(report.average_bits, 4), report.histogram, report.elements, report.bytes)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"average", "histogram": {"<bits>": elements}, "weight_elements", "weight_bytes"}``."""
        return {"average": self.average, "histogram": {str(k): v for k, v in sorted(self.histogram.items())},
                "weight_elements": self.weight_elements, "weight_bytes": self.weight_bytes}

    @classmethod
    def from_json(cls, value: Any, name: str) -> Bits:
        """Parse a ``bits`` entry."""
        value = read_object(value, name)
        histogram = read_object(read_key(value, "histogram", name), f"{name}.histogram")
        bad = [k for k in histogram if not k.isdigit() or not 1 <= int(k) <= 32]
        if bad:
            raise Invalid(f"{name}.histogram", f"keys must be bit widths 1..32, got {show(bad[0])}")
        return cls(read_float(read_key(value, "average", name), f"{name}.average"),
                   {int(k): read_int(v, f"{name}.histogram.{k}") for k, v in histogram.items()},
                   read_int(read_key(value, "weight_elements", name), f"{name}.weight_elements"),
                   read_int(read_key(value, "weight_bytes", name), f"{name}.weight_bytes"))


@dataclass(frozen=True)
class Compression:
    """How a component's weights were compressed: ``mode`` "none", or "kmeans" palettes of ``bits``
    (an int, or "mixed" with ``target_psnr`` / ``target_bits`` and the per-layer ``allocation``)."""

    mode: str
    bits: int | str | None = None
    granularity: str | None = None
    group_size: int | None = None
    weight_threshold: int | None = None
    target_psnr: float | None = None
    target_bits: float | None = None
    allocation: dict[str, int] | None = None

    @property
    def palettized(self) -> bool:
        """True for k-means palettes."""
        return self.mode == "kmeans"

    def to_json(self) -> dict[str, Any]:
        """Return the manifest's ``compression`` entry."""
        if not self.palettized:
            return {"mode": self.mode}
        entry = {"mode": self.mode, "bits": self.bits, "granularity": self.granularity,
                 "group_size": self.group_size, "weight_threshold": self.weight_threshold}
        if self.bits == "mixed":
            entry.update(target_psnr=self.target_psnr, target_bits=self.target_bits, allocation=self.allocation)
        return entry

    @classmethod
    def from_json(cls, value: Any, name: str) -> Compression:
        """Parse a ``compression`` entry."""
        value = read_object(value, name)
        mode = read_text(read_key(value, "mode", name), f"{name}.mode", ("none", "kmeans"))
        if mode == "none":
            return cls(mode)
        bits = read_key(value, "bits", name)
        if bits != "mixed":
            bits = read_int(bits, f"{name}.bits", 1, 16)
        settings = dict(bits=bits, granularity=read_text(read_key(value, "granularity", name), f"{name}.granularity",
                                                     GRANULARITIES),
                        group_size=read_int(read_key(value, "group_size", name), f"{name}.group_size"),
                        weight_threshold=read_int(read_key(value, "weight_threshold", name), f"{name}.weight_threshold"))
        if bits != "mixed":
            return cls(mode, **settings)
        allocation = read_object(read_key(value, "allocation", name), f"{name}.allocation")
        return cls(mode, **settings,
                   target_psnr=optional(read_float)(read_key(value, "target_psnr", name), f"{name}.target_psnr"),
                   target_bits=optional(read_float)(read_key(value, "target_bits", name), f"{name}.target_bits"),
                   allocation={k: read_int(v, f"{name}.allocation.{k}", 1, 16) for k, v in allocation.items()})


@dataclass(frozen=True)
class Package:
    """One Core ML package of a component (the component itself, or one of its chunks)."""

    name: str
    path: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    bits: Bits
    size_bytes: int

    def io(self) -> dict[str, list[dict[str, Any]]]:
        """``{"inputs", "outputs"}`` as tensor entries (``bundle.package_io``'s form)."""
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}

    def to_json(self) -> dict[str, Any]:
        """Return the package entry."""
        return {"name": self.name, "path": self.path, **self.io(), "bits": self.bits.to_json(),
                "size_bytes": self.size_bytes}

    @classmethod
    def from_json(cls, value: Any, name: str) -> Package:
        """Parse a ``packages`` entry."""
        value = read_object(value, name)
        return cls(read_text(read_key(value, "name", name), f"{name}.name", pattern=NAME),
                   read_path(read_key(value, "path", name), f"{name}.path"),
                   read_list(read_key(value, "inputs", name), f"{name}.inputs", read_tensor),
                   read_list(read_key(value, "outputs", name), f"{name}.outputs", read_tensor),
                   Bits.from_json(read_key(value, "bits", name), f"{name}.bits"),
                   read_int(read_key(value, "size_bytes", name), f"{name}.size_bytes"))


@dataclass(frozen=True)
class Chunking:
    """A chunked component: ``chunks``, their ``balance`` and the chained-vs-whole difference."""

    chunks: int
    balance: float
    max_abs_difference_vs_unchunked: float | None

    def to_json(self) -> dict[str, Any]:
        """Return the ``chunking`` entry."""
        return {"chunks": self.chunks, "balance": self.balance,
                "max_abs_difference_vs_unchunked": self.max_abs_difference_vs_unchunked}

    @classmethod
    def from_json(cls, value: Any, name: str) -> Chunking:
        """Parse a ``chunking`` entry."""
        value = read_object(value, name)
        return cls(read_int(read_key(value, "chunks", name), f"{name}.chunks", 1),
                   read_float(read_key(value, "balance", name), f"{name}.balance"),
                   optional(read_float)(read_key(value, "max_abs_difference_vs_unchunked", name),
                                     f"{name}.max_abs_difference_vs_unchunked"))


@dataclass(frozen=True)
class CoreMLEntry:
    """A component's Core ML programs: the measured ``precision``, PSNRs, ``compression`` claim,
    combined ``bits``, ``size_bytes``, its ``packages`` in calling order, its ``chunking`` and the
    form of its ``attention``."""

    precision: str
    deployment_target: str
    conversion_psnr: float | None
    psnr: float | None
    compression: Compression
    bits: Bits
    size_bytes: int
    packages: tuple[Package, ...]
    chunking: Chunking | None
    attention: str = "original"

    def to_json(self) -> dict[str, Any]:
        """Return the ``coreml`` entry."""
        return {"precision": self.precision, "deployment_target": self.deployment_target,
                "conversion_psnr": self.conversion_psnr, "psnr": self.psnr, "compression": self.compression.to_json(),
                "bits": self.bits.to_json(), "size_bytes": self.size_bytes,
                "packages": [p.to_json() for p in self.packages],
                "chunking": self.chunking.to_json() if self.chunking else None, "attention": self.attention}

    @classmethod
    def from_json(cls, value: Any, name: str) -> CoreMLEntry:
        """Parse a ``coreml`` entry."""
        value = read_object(value, name)
        return cls(read_text(read_key(value, "precision", name), f"{name}.precision", PRECISIONS),
                   read_text(read_key(value, "deployment_target", name), f"{name}.deployment_target", pattern=NAME),
                   optional(read_float)(read_key(value, "conversion_psnr", name), f"{name}.conversion_psnr"),
                   optional(read_float)(read_key(value, "psnr", name), f"{name}.psnr"),
                   Compression.from_json(read_key(value, "compression", name), f"{name}.compression"),
                   Bits.from_json(read_key(value, "bits", name), f"{name}.bits"),
                   read_int(read_key(value, "size_bytes", name), f"{name}.size_bytes"),
                   read_list(read_key(value, "packages", name), f"{name}.packages", Package.from_json, 1),
                   optional(Chunking.from_json)(read_key(value, "chunking", name), f"{name}.chunking"),
                   read_text(value.get("attention", "original"), f"{name}.attention", ATTENTIONS))


@dataclass(frozen=True)
class ExecuTorchEntry:
    """A component's ExecuTorch program: ``path``, weight ``quantization`` and ``size_bytes``."""

    path: str
    quantization: str
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        """Return the ``executorch`` entry."""
        return {"path": self.path, "quantization": self.quantization, "size_bytes": self.size_bytes}

    @classmethod
    def from_json(cls, value: Any, name: str) -> ExecuTorchEntry:
        """Parse an ``executorch`` entry."""
        value = read_object(value, name)
        return cls(read_path(read_key(value, "path", name), f"{name}.path"),
                   read_text(read_key(value, "quantization", name), f"{name}.quantization", QUANTIZATIONS),
                   read_int(read_key(value, "size_bytes", name), f"{name}.size_bytes"))


@dataclass(frozen=True)
class ComponentEntry:
    """One component: its contract ``spec``, ``golden`` file, and its programs per target."""

    spec: ComponentSpec
    golden: str
    coreml: CoreMLEntry | None = None
    executorch: ExecuTorchEntry | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets this component has programs for."""
        return tuple(t for t in TARGETS if getattr(self, t) is not None)

    def to_json(self) -> dict[str, Any]:
        """Return the component entry (its name is the key)."""
        entry = {**self.spec.to_json(), "golden": self.golden}
        entry.update({t: getattr(self, t).to_json() for t in self.targets})
        return entry

    @classmethod
    def from_json(cls, component: str, value: Any, name: str) -> ComponentEntry:
        """Parse component ``component``'s entry."""
        value = read_object(value, name)
        inputs = read_list(read_key(value, "inputs", name), f"{name}.inputs", read_tensor)
        outputs = read_list(read_key(value, "outputs", name), f"{name}.outputs", read_tensor)
        return cls(ComponentSpec(component, inputs, outputs), read_path(read_key(value, "golden", name), f"{name}.golden"),
                   optional(CoreMLEntry.from_json)(value.get("coreml"), f"{name}.coreml"),
                   optional(ExecuTorchEntry.from_json)(value.get("executorch"), f"{name}.executorch"))
