"""The bundle manifest (``manifest.json``): its schema as frozen dataclasses, parsed and validated once.

``tryon-lab export`` builds a ``Manifest`` and writes ``Manifest.to_json()``; ``verify``, the app,
the grader and the grading corpus read one with ``read_manifest`` (or ``Manifest.from_json``) and
never look into the JSON themselves. Parsing checks every field's type and range, that every path
stays inside the bundle and names files the manifest hashes, and the format version; what is wrong
is one ``ManifestError`` (a ``BundleError``) naming the field, e.g. ``components.Unet.coreml.bits``,
with every problem found (one per section) in ``problems``. A manifest arrives from students and
strangers, so nothing in it is trusted: numbers are bounded, names are plain identifiers, and the
scheduler can only be one of the known samplers.

manifest.json fields::

    format: "tryon-lab-bundle"; format_version: 2; created_by; created_at (UTC ISO 8601); source_model
    runtime: resolution, latent_size, vae_scale_factor, vae_scaling_factor, unet_batch, unet_channels,
             latent_mask, image_range, conditioning ("text" or "reference"), then for text: token_length;
             for reference (DTC): reference_tokens, reference, hint (how to make them), empty_hint
    scheduler: the diffusers scheduler config (``_class_name`` names it)
    tokenizer: {vocab, merges, max_length} (paths of the BPE files), or null without Core ML or a text model
    targets: the targets written, of ["coreml", "executorch"]
    components.<Name>: inputs, outputs ([{name, shape, dtype}]), golden (path),
      coreml: {precision, deployment_target, conversion_psnr, psnr, compression, bits, size_bytes,
               packages: [{name, path, inputs, outputs, bits, size_bytes}], chunking, attention}
        attention: "original" or "split_einsum" (``ane_attention``); a manifest without it reads as "original"
        compression: {mode: "none"} or {mode: "kmeans", bits: 8|6|4|"mixed", granularity, group_size,
                      weight_threshold[, target_psnr, target_bits, allocation]}
        bits: {average, histogram: {"<bits>": elements}, weight_elements, weight_bytes}
        chunking: null or {chunks, balance, max_abs_difference_vs_unchunked}
      executorch: {path, quantization, size_bytes}
    golden: {tryon, prompt (null for a DTC model), steps, guidance_scale, seed}
    files: {"<relative path>": {sha256, bytes}} for every file but manifest.json
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from tryon_lab.export.ane_attention import ATTENTIONS
from tryon_lab.export.conditioning import CONDITIONINGS, Conditioning
from tryon_lab.export.contract import ComponentSpec, TensorSpec
from tryon_lab.export.errors import BundleError

MANIFEST = "manifest.json"
FORMAT = "tryon-lab-bundle"
FORMAT_VERSION = 2
# Why an older bundle cannot be read: its programs expect other inputs than this version feeds them.
RETIRED_FORMATS = {1: "version 1 fed the U-Net [noisy latent, masked-image latent, mask]; "
                      "version 2 uses diffusers' order [noisy latent, mask, masked-image latent]"}
TARGETS = ("coreml", "executorch")
SCHEDULERS = ("DDIMScheduler", "DDPMScheduler", "DPMSolverMultistepScheduler", "EulerDiscreteScheduler")
MAX_STEPS = 1000  # a manifest cannot make verification run for ever
PRECISIONS = ("float16", "float32")
QUANTIZATIONS = ("none", "int8")
GRANULARITIES = ("per_tensor", "per_grouped_channel")
MAX_INT = 2**53  # any count or size a real bundle holds; larger is hostile
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # component and package names: they become file names
SHA256 = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class ManifestError(BundleError):
    """A manifest that does not parse: ``problems`` lists ``(field, what is wrong)``, the first one
    is ``field`` and leads the message."""

    def __init__(self, where: str, problems: list[tuple[str, str]]) -> None:
        self.field, first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{where}: field {self.field}: {first}{more}")
        self.problems = problems

    def details(self) -> list[str]:
        """Every problem as ``"field: what is wrong"``."""
        return [f"{name}: {problem}" for name, problem in self.problems]


class _Invalid(Exception):
    """One field is wrong (caught per section while parsing)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)
        self.name, self.problem = name, problem


# ---- typed readers: each returns the value or raises _Invalid naming the field ------------------

def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(name, f"must be a JSON object, got {_show(value)}")
    return value


def _key(value: dict[str, Any], key: str, name: str) -> Any:
    if key not in value:
        raise _Invalid(f"{name}.{key}" if name else key, "is missing")
    return value[key]


def _int(value: Any, name: str, low: int = 0, high: int = MAX_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Invalid(name, f"must be an integer in [{low}, {high}], got {_show(value)}")
    return value


def _float(value: Any, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _Invalid(name, f"must be a finite number, got {_show(value)}")
    return float(value)


def _text(value: Any, name: str, choices: tuple[str, ...] | None = None, pattern: re.Pattern | None = None) -> str:
    if not isinstance(value, str) or (choices is not None and value not in choices) \
            or (pattern is not None and not pattern.fullmatch(value)):
        wanted = f"one of {', '.join(choices)}" if choices else "a string" + (
            f" matching {pattern.pattern}" if pattern else "")
        raise _Invalid(name, f"must be {wanted}, got {_show(value)}")
    return value


def _optional(read: Callable[[Any, str], T]) -> Callable[[Any, str], T | None]:
    return lambda value, name: None if value is None else read(value, name)


def _path(value: Any, name: str) -> str:
    """A relative POSIX path that stays inside the bundle."""
    if not isinstance(value, str) or not value:
        raise _Invalid(name, f"must be a non-empty path, got {_show(value)}")
    pure = PurePosixPath(value)
    if pure.is_absolute() or ".." in pure.parts or "\\" in value or "\x00" in value:
        raise _Invalid(name, f"path {_show(value)} leaves the bundle")
    return value


def _list(value: Any, name: str, read: Callable[[Any, str], T], min_items: int = 0) -> tuple[T, ...]:
    if not isinstance(value, list) or len(value) < min_items:
        raise _Invalid(name, f"must be a list of at least {min_items} entries, got {_show(value)}")
    return tuple(read(item, f"{name}[{i}]") for i, item in enumerate(value))


def _tensor(value: Any, name: str) -> TensorSpec:
    try:
        return TensorSpec.from_json(value)
    except BundleError as err:
        raise _Invalid(name, str(err)) from None


def _show(value: Any) -> str:
    return f"{value!r:.60}"


# ---- the schema ------------------------------------------------------------------------------

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
        value = _object(value, name)
        return cls(_text(_key(value, "sha256", name), f"{name}.sha256", pattern=SHA256),
                   _int(_key(value, "bytes", name), f"{name}.bytes"))


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
        value = _object(value, name)
        histogram = _object(_key(value, "histogram", name), f"{name}.histogram")
        bad = [k for k in histogram if not k.isdigit() or not 1 <= int(k) <= 32]
        if bad:
            raise _Invalid(f"{name}.histogram", f"keys must be bit widths 1..32, got {_show(bad[0])}")
        return cls(_float(_key(value, "average", name), f"{name}.average"),
                   {int(k): _int(v, f"{name}.histogram.{k}") for k, v in histogram.items()},
                   _int(_key(value, "weight_elements", name), f"{name}.weight_elements"),
                   _int(_key(value, "weight_bytes", name), f"{name}.weight_bytes"))


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
        value = _object(value, name)
        mode = _text(_key(value, "mode", name), f"{name}.mode", ("none", "kmeans"))
        if mode == "none":
            return cls(mode)
        bits = _key(value, "bits", name)
        if bits != "mixed":
            bits = _int(bits, f"{name}.bits", 1, 16)
        settings = dict(bits=bits, granularity=_text(_key(value, "granularity", name), f"{name}.granularity",
                                                     GRANULARITIES),
                        group_size=_int(_key(value, "group_size", name), f"{name}.group_size"),
                        weight_threshold=_int(_key(value, "weight_threshold", name), f"{name}.weight_threshold"))
        if bits != "mixed":
            return cls(mode, **settings)
        allocation = _object(_key(value, "allocation", name), f"{name}.allocation")
        return cls(mode, **settings,
                   target_psnr=_optional(_float)(_key(value, "target_psnr", name), f"{name}.target_psnr"),
                   target_bits=_optional(_float)(_key(value, "target_bits", name), f"{name}.target_bits"),
                   allocation={k: _int(v, f"{name}.allocation.{k}", 1, 16) for k, v in allocation.items()})


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
        value = _object(value, name)
        return cls(_text(_key(value, "name", name), f"{name}.name", pattern=NAME),
                   _path(_key(value, "path", name), f"{name}.path"),
                   _list(_key(value, "inputs", name), f"{name}.inputs", _tensor),
                   _list(_key(value, "outputs", name), f"{name}.outputs", _tensor),
                   Bits.from_json(_key(value, "bits", name), f"{name}.bits"),
                   _int(_key(value, "size_bytes", name), f"{name}.size_bytes"))


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
        value = _object(value, name)
        return cls(_int(_key(value, "chunks", name), f"{name}.chunks", 1),
                   _float(_key(value, "balance", name), f"{name}.balance"),
                   _optional(_float)(_key(value, "max_abs_difference_vs_unchunked", name),
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
        value = _object(value, name)
        return cls(_text(_key(value, "precision", name), f"{name}.precision", PRECISIONS),
                   _text(_key(value, "deployment_target", name), f"{name}.deployment_target", pattern=NAME),
                   _optional(_float)(_key(value, "conversion_psnr", name), f"{name}.conversion_psnr"),
                   _optional(_float)(_key(value, "psnr", name), f"{name}.psnr"),
                   Compression.from_json(_key(value, "compression", name), f"{name}.compression"),
                   Bits.from_json(_key(value, "bits", name), f"{name}.bits"),
                   _int(_key(value, "size_bytes", name), f"{name}.size_bytes"),
                   _list(_key(value, "packages", name), f"{name}.packages", Package.from_json, 1),
                   _optional(Chunking.from_json)(_key(value, "chunking", name), f"{name}.chunking"),
                   _text(value.get("attention", "original"), f"{name}.attention", ATTENTIONS))


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
        value = _object(value, name)
        return cls(_path(_key(value, "path", name), f"{name}.path"),
                   _text(_key(value, "quantization", name), f"{name}.quantization", QUANTIZATIONS),
                   _int(_key(value, "size_bytes", name), f"{name}.size_bytes"))


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
        value = _object(value, name)
        inputs = _list(_key(value, "inputs", name), f"{name}.inputs", _tensor)
        outputs = _list(_key(value, "outputs", name), f"{name}.outputs", _tensor)
        return cls(ComponentSpec(component, inputs, outputs), _path(_key(value, "golden", name), f"{name}.golden"),
                   _optional(CoreMLEntry.from_json)(value.get("coreml"), f"{name}.coreml"),
                   _optional(ExecuTorchEntry.from_json)(value.get("executorch"), f"{name}.executorch"))


@dataclass(frozen=True)
class Runtime:
    """What a phone runner needs besides the networks (``contract.runtime_contract``): sizes, scaling,
    the U-Net's channel order and the ``conditioning`` with its entries (``token_length`` for text;
    ``reference_tokens``, ``reference``, ``hint`` and ``empty_hint`` for a reference image)."""

    resolution: int
    latent_size: int
    vae_scale_factor: int
    vae_scaling_factor: float
    unet_batch: int
    unet_channels: tuple[str, ...]
    latent_mask: str
    image_range: tuple[float, float]
    conditioning: str = "text"
    token_length: int | None = None
    reference_tokens: int | None = None
    reference: str | None = None
    hint: str | None = None
    empty_hint: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the ``runtime`` section."""
        entry = {"resolution": self.resolution, "latent_size": self.latent_size,
                 "vae_scale_factor": self.vae_scale_factor, "vae_scaling_factor": self.vae_scaling_factor,
                 "unet_batch": self.unet_batch, "unet_channels": list(self.unet_channels),
                 "latent_mask": self.latent_mask, "image_range": list(self.image_range),
                 "conditioning": self.conditioning}
        if self.conditioning == "text":
            return {**entry, "token_length": self.token_length}
        return {**entry, "reference_tokens": self.reference_tokens, "reference": self.reference, "hint": self.hint,
                "empty_hint": self.empty_hint}

    @classmethod
    def from_json(cls, value: Any, name: str = "runtime") -> Runtime:
        """Parse the ``runtime`` section (one without ``conditioning`` predates DTC export: text)."""
        value = _object(value, name)

        def get(key: str, read: Callable[[Any, str], Any]) -> Any:
            return read(_key(value, key, name), f"{name}.{key}")

        image_range = get("image_range", lambda v, n: _list(v, n, _float, 2))
        if len(image_range) != 2 or not image_range[0] < image_range[1]:
            raise _Invalid(f"{name}.image_range", f"must be [low, high], got {_show(list(image_range))}")
        sizes = dict(resolution=get("resolution", lambda v, n: _int(v, n, 1, 1 << 16)),
                     latent_size=get("latent_size", lambda v, n: _int(v, n, 1, 1 << 16)),
                     vae_scale_factor=get("vae_scale_factor", lambda v, n: _int(v, n, 1, 1 << 10)),
                     vae_scaling_factor=get("vae_scaling_factor", _float),
                     unet_batch=get("unet_batch", lambda v, n: _int(v, n, 1, 1 << 10)),
                     unet_channels=get("unet_channels", lambda v, n: _list(v, n, _text, 1)),
                     latent_mask=get("latent_mask", _text), image_range=image_range)
        conditioning = _text(value.get("conditioning", "text"), f"{name}.conditioning", tuple(CONDITIONINGS))
        if conditioning == "text":
            return cls(**sizes, token_length=get("token_length", lambda v, n: _int(v, n, 1, 1 << 16)))
        return cls(**sizes, conditioning=conditioning,
                   reference_tokens=get("reference_tokens", lambda v, n: _int(v, n, 1, 1 << 16)),
                   reference=get("reference", _text), hint=get("hint", _optional(_text)),
                   empty_hint=get("empty_hint", _float))


@dataclass(frozen=True)
class TokenizerFiles:
    """The BPE files a phone tokenizer reads: ``vocab`` and ``merges`` paths, ``max_length`` tokens."""

    vocab: str
    merges: str
    max_length: int

    def to_json(self) -> dict[str, Any]:
        """Return the ``tokenizer`` section."""
        return {"vocab": self.vocab, "merges": self.merges, "max_length": self.max_length}

    @classmethod
    def from_json(cls, value: Any, name: str = "tokenizer") -> TokenizerFiles:
        """Parse the ``tokenizer`` section."""
        value = _object(value, name)
        return cls(_path(_key(value, "vocab", name), f"{name}.vocab"),
                   _path(_key(value, "merges", name), f"{name}.merges"),
                   _int(_key(value, "max_length", name), f"{name}.max_length", 1, 1 << 16))


@dataclass(frozen=True)
class GoldenTryOn:
    """The golden try-on: its arrays' file ``tryon``, the ``prompt`` (None for a DTC model), and the
    ``steps``, ``guidance_scale`` and ``seed`` it ran with."""

    tryon: str
    prompt: str | None
    steps: int
    guidance_scale: float
    seed: int

    def to_json(self) -> dict[str, Any]:
        """Return the ``golden`` section."""
        return {"tryon": self.tryon, "prompt": self.prompt, "steps": self.steps,
                "guidance_scale": self.guidance_scale, "seed": self.seed}

    @classmethod
    def from_json(cls, value: Any, name: str = "golden") -> GoldenTryOn:
        """Parse the ``golden`` section."""
        value = _object(value, name)
        return cls(_path(_key(value, "tryon", name), f"{name}.tryon"),
                   _optional(_text)(_key(value, "prompt", name), f"{name}.prompt"),
                   _int(_key(value, "steps", name), f"{name}.steps", 1, MAX_STEPS),
                   _float(_key(value, "guidance_scale", name), f"{name}.guidance_scale"),
                   _int(_key(value, "seed", name), f"{name}.seed"))


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest (format ``FORMAT_VERSION``); see the module docstring for the fields."""

    created_by: str
    created_at: str
    source_model: str
    runtime: Runtime
    scheduler: dict[str, Any]
    tokenizer: TokenizerFiles | None
    targets: tuple[str, ...]
    components: dict[str, ComponentEntry]
    golden: GoldenTryOn
    files: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def conditioning(self) -> Conditioning:
        """What the bundle's U-Net is conditioned on."""
        return CONDITIONINGS[self.runtime.conditioning]

    def to_json(self) -> dict[str, Any]:
        """Return manifest.json's content."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "created_by": self.created_by,
                "created_at": self.created_at, "source_model": self.source_model, "runtime": self.runtime.to_json(),
                "scheduler": self.scheduler, "tokenizer": self.tokenizer.to_json() if self.tokenizer else None,
                "targets": list(self.targets), "components": {n: c.to_json() for n, c in self.components.items()},
                "golden": self.golden.to_json(), "files": {p: f.to_json() for p, f in self.files.items()}}

    @classmethod
    def from_json(cls, value: Any, where: str = MANIFEST) -> Manifest:
        """Parse and validate manifest.json's content; ``ManifestError`` (naming the field and
        ``where`` it came from) for any problem, or one for a retired ``format_version``."""
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise BundleError(f"{where} is not a {FORMAT} manifest")
        version = value.get("format_version")
        if version != FORMAT_VERSION:
            why = f" ({RETIRED_FORMATS[version]})" if isinstance(version, int) and version in RETIRED_FORMATS else ""
            raise ManifestError(where, [("format_version", f"bundle format_version {_show(version)} cannot be read "
                                         f"by this tryon-lab, which reads version {FORMAT_VERSION}{why}; export the "
                                         "model again with `tryon-lab export`")])
        problems: list[tuple[str, str]] = []

        def section(read: Callable[[], T]) -> T | None:
            try:
                return read()
            except _Invalid as err:
                problems.append((err.name, err.problem))
                return None

        text = {key: section(lambda key=key: _text(_key(value, key, ""), key))
                for key in ("created_by", "created_at", "source_model")}
        runtime = section(lambda: Runtime.from_json(_key(value, "runtime", "")))
        scheduler = section(lambda: _scheduler(_key(value, "scheduler", "")))
        tokenizer = section(lambda: _optional(TokenizerFiles.from_json)(_key(value, "tokenizer", ""), "tokenizer"))
        targets = section(lambda: _targets(_key(value, "targets", "")))
        entries = section(lambda: _object(_key(value, "components", ""), "components")) or {}
        components = {}
        for name, entry in entries.items():
            components[name] = section(lambda name=name, entry=entry: ComponentEntry.from_json(
                _text(name, "components", pattern=NAME), entry, f"components.{name}"))
        golden = section(lambda: GoldenTryOn.from_json(_key(value, "golden", "")))
        files = section(lambda: _files(_key(value, "files", "")))
        if problems:
            raise ManifestError(where, problems)
        manifest = cls(**text, runtime=runtime, scheduler=scheduler, tokenizer=tokenizer, targets=targets,
                       components=components, golden=golden, files=files)
        unlisted = manifest.unlisted_paths()
        if unlisted:
            raise ManifestError(where, unlisted)
        return manifest

    def paths(self) -> list[tuple[str, str]]:
        """``(field, path)`` of every path the manifest names besides ``files``."""
        found = [("golden.tryon", self.golden.tryon)]
        if self.tokenizer:
            found += [("tokenizer.vocab", self.tokenizer.vocab), ("tokenizer.merges", self.tokenizer.merges)]
        for name, entry in self.components.items():
            found.append((f"components.{name}.golden", entry.golden))
            if entry.coreml:
                found += [(f"components.{name}.coreml.packages[{i}].path", p.path)
                          for i, p in enumerate(entry.coreml.packages)]
            if entry.executorch:
                found.append((f"components.{name}.executorch.path", entry.executorch.path))
        return found

    def unlisted_paths(self) -> list[tuple[str, str]]:
        """``(field, problem)`` for every path that names neither a hashed file nor a folder of them."""
        listed = set(self.files)
        for path in self.files:
            listed.update(p.as_posix() for p in PurePosixPath(path).parents)
        return [(name, f"{_show(path)} names no file listed with a sha256") for name, path in self.paths()
                if path not in listed]


def _scheduler(value: Any) -> dict[str, Any]:
    value = _object(value, "scheduler")
    _text(value.get("_class_name"), "scheduler._class_name", SCHEDULERS)
    return value


def _targets(value: Any) -> tuple[str, ...]:
    targets = _list(value, "targets", lambda v, n: _text(v, n, TARGETS))
    if len(set(targets)) != len(targets):
        raise _Invalid("targets", f"lists a target twice: {_show(list(targets))}")
    return targets


def _files(value: Any) -> dict[str, FileEntry]:
    value = _object(value, "files")
    return {_path(path, f"files[{path!r:.60}]"): FileEntry.from_json(entry, f"files[{path!r:.60}]")
            for path, entry in value.items()}


def parse_manifest(text: str | bytes, where: str = MANIFEST) -> Manifest:
    """Parse manifest.json's text (``BundleError`` if it is not JSON) into a ``Manifest``."""
    try:
        return Manifest.from_json(json.loads(text), where)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BundleError(f"{where} is not valid JSON: {err}") from None


def read_manifest(bundle: str | Path) -> Manifest:
    """Read ``bundle/manifest.json``; ``BundleError`` if it is missing, not JSON, not a bundle manifest,
    of another ``format_version`` (naming it and why it cannot be read), or malformed (``ManifestError``)."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{bundle} is not a bundle: it has no {MANIFEST}")
    return parse_manifest(path.read_bytes(), str(path))


def write_manifest(bundle: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest`` as ``bundle/manifest.json``; return its path. ``ManifestError`` if the reader
    would refuse it (an export never writes a bundle that cannot be read back)."""
    path = Path(bundle) / MANIFEST
    content = manifest.to_json()
    Manifest.from_json(json.loads(json.dumps(content)), str(path))
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path
