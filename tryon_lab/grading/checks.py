"""The named checks of a submitted bundle, in the order they run.

Each check is a function ``(Context) -> Outcome`` registered with ``@check(name, title, needs)``;
``needs`` names the checks that must have passed first (otherwise it is *blocked*). A fault of
the submission is a failed ``Outcome`` whose reason says what is wrong; a check raises only
``Blocked`` (it lacks data an earlier check could not produce). Nothing from a submission is
imported, unpickled or executed: files are read as data (JSON, safetensors, protobuf and weight
blobs through ``packages``), and programs run only in the MIL executor, on tensors.

Numerical agreement and the try-on reuse ``tryon_lab.export.verify``'s runners and comparisons,
fed with the reference bundle's golden data. Without a reference bundle, a check that can only
compare the submission with itself (its programs with its own golden files or its own manifest,
which a student can make agree with anything) still fails on a disagreement, but its pass is
``unverified``: it earns no points.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tryon_lab.export.bundle import folder_bytes
from tryon_lab.export.conditioning import TEXT, Conditioning
from tryon_lab.export.contract import ComponentSpec, TensorSpec, pipeline_components
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import (
    MANIFEST,
    TARGETS,
    Bits,
    ComponentEntry,
    Compression,
    CoreMLEntry,
    Manifest,
    ManifestError,
    Package,
    read_manifest,
)
from tryon_lab.export.mixed_bits import MIXED_BITS
from tryon_lab.export.palettize import WEIGHT_THRESHOLD, WeightReport
from tryon_lab.grading.errors import PackageError, SubmissionRejected
from tryon_lab.grading.filetypes import MAX_JSON_BYTES, file_problem
from tryon_lab.grading.packages import MODEL_FILE, WEIGHTS_FILE, LoadedPackage, load_package
from tryon_lab.grading.reference import Reference
from tryon_lab.grading.rubric import Rubric
from tryon_lab.grading.submission import Unpacked, unpack_submission

TOKENIZER_FILES = ("vocab.json", "merges.txt")
CORE_COMPONENTS = ("Unet", "VAEEncoder", "VAEDecoder")  # every bundle; the conditioning adds its own
TOP_LEVEL = {MANIFEST, "golden", *TARGETS}
MAX_LISTED = 25  # problems listed per check; the rest are counted


class Blocked(Exception):
    """A check cannot run: something it needs (the unpacked copy, a readable manifest) is missing."""


@dataclass
class Outcome:
    """What a check found: ``passed``, a one-line ``reason``, ``details`` (problems, or notes when
    passed), measurement ``rows``; ``unverified`` marks a pass that proves nothing, because the
    check could only compare the submission with itself (no reference bundle)."""

    passed: bool
    reason: str
    details: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    unverified: bool = False


@dataclass
class Context:
    """What the checks share: the ``source`` submission, the ``work`` folder its copy goes to, the
    ``rubric`` and ``reference``, and what earlier checks produced."""

    source: Path
    work: Path
    rubric: Rubric
    reference: Reference | None = None
    unpacked: Unpacked | None = None
    unreadable: bool = False
    manifest: Manifest | None = None  # set by the manifest check
    parsed: Manifest | BundleError | None = None  # parse_manifest's result, kept
    packages: dict[str, LoadedPackage] = field(default_factory=dict)  # "coreml/X.mlpackage" -> read back
    runners: dict[str, Any] = field(default_factory=dict)  # Core ML runners the numerics check built

    @property
    def root(self) -> Path:
        """The bundle folder of the unpacked copy."""
        if self.unpacked is None:
            raise Blocked("the submission was not unpacked")
        return self.unpacked.root

    def need_manifest(self) -> Manifest:
        """The parsed manifest, or ``Blocked`` if it could not be read."""
        if self.manifest is None:
            raise Blocked("not run: manifest.json could not be read")
        return self.manifest

    def parse_manifest(self) -> Manifest:
        """The copy's manifest, parsed once (over ``MAX_JSON_BYTES`` it is not read); ``BundleError`` if it cannot be."""
        if self.parsed is None:
            path = self.root / MANIFEST
            try:
                if path.is_file() and path.stat().st_size > MAX_JSON_BYTES:
                    raise BundleError(f"{MANIFEST} is over {MAX_JSON_BYTES} bytes")
                self.parsed = read_manifest(self.root)
            except BundleError as err:
                self.parsed = err
        if isinstance(self.parsed, BundleError):
            raise self.parsed
        return self.parsed

    def relative(self, message: str) -> str:
        """``message`` with the copy's absolute paths made relative to the bundle."""
        return message.replace(f"{self.root}/", "").replace(str(self.root), ".") if self.unpacked else message


@dataclass(frozen=True)
class Check:
    """A registered check: ``name``, ``title`` for reports, the checks it ``needs``, and ``run``."""

    name: str
    title: str
    needs: tuple[str, ...]
    run: Callable[[Context], Outcome]


CHECKS: list[Check] = []


def check(name: str, title: str, needs: tuple[str, ...] = ("unpack",)) -> Callable:
    """Decorator: register ``fn(context) -> Outcome`` as the check ``name`` (runs in registration order)."""

    def register(fn: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        CHECKS.append(Check(name, title, needs, fn))
        return fn

    return register


def verdict(problems: list[str], ok: str, rows: list[dict[str, Any]] | None = None) -> Outcome:
    """Passed with reason ``ok`` if there are no ``problems``, else failed on the first of them."""
    if not problems:
        return Outcome(True, ok, rows=rows or [])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    listed = problems[:MAX_LISTED] + ([f"... {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else [])
    return Outcome(False, problems[0] + more, listed, rows or [])


def component_packages(coreml: Path, name: str) -> list[Path]:
    """The packages of component ``name`` in ``coreml/``: ``<name>.mlpackage`` or ``<name>Chunk1..N``."""
    pattern = re.compile(rf"{re.escape(name)}Chunk(\d+)\.mlpackage")
    chunks = sorted(((int(m.group(1)), p) for p in coreml.glob(f"{name}Chunk*.mlpackage")
                     if (m := pattern.fullmatch(p.name))), key=lambda item: item[0])
    single = coreml / f"{name}.mlpackage"
    return [p for _, p in chunks] or ([single] if single.exists() else [])


def submission_conditioning(context: Context) -> Conditioning:
    """The reference bundle's conditioning, else what the submission's manifest declares (text if it cannot be read)."""
    if context.reference:
        return context.reference.manifest.conditioning
    try:
        return context.parse_manifest().conditioning
    except BundleError:
        return TEXT


def expected_components(context: Context) -> list[str]:
    """The components a submission must have: the reference bundle's, else those of its conditioning."""
    if context.reference:
        return list(context.reference.specs)
    return [*submission_conditioning(context).components, *CORE_COMPONENTS]


# ---- the checks, in order -----------------------------------------------------------------

@check("unpack", "Safe unpacking: no escaping paths, links, special files or bombs; within the limits", needs=())
def check_unpack(context: Context) -> Outcome:
    """Copy or extract the submission into ``context.work`` (setting ``context.unpacked``); fails on the first unsafe entry."""
    try:
        context.unpacked = unpack_submission(context.source, context.work, context.rubric.limits)
    except SubmissionRejected as err:
        context.unreadable = err.unreadable
        return Outcome(False, err.reason)
    unpacked = context.unpacked
    return Outcome(True, f"{unpacked.files} files, {unpacked.bytes} bytes", list(unpacked.notes))


@check("file_types", "Every file is a bundle data format, judged by content (no pickles, executables, scripts)")
def check_file_types(context: Context) -> Outcome:
    """Judge every file by its content against the rubric's allowed formats; fails naming each foreign file."""
    allowed = [s.lower() for s in context.rubric.get("file_types", "allowed_suffixes")]
    files = sorted(p for p in context.root.rglob("*") if p.is_file())
    problems = [p for p in (file_problem(f, f.relative_to(context.root).as_posix(), allowed) for f in files) if p]
    return verdict(problems, f"{len(files)} files, all of them data in the bundle's formats")


@check("structure", "The bundle layout: manifest, Core ML packages, tokenizer, ExecuTorch programs, golden data")
def check_structure(context: Context) -> Outcome:
    """Compare the copy's files and folders with the bundle layout for the expected components and targets."""
    root = context.root
    problems = []
    if not (root / MANIFEST).is_file():
        problems.append(f"{MANIFEST} is missing")
    expected = expected_components(context)
    targets = set(context.rubric.get("structure", "required_targets")) | {t for t in TARGETS if (root / t).is_dir()}
    problems += [f"{entry.name}: not part of a bundle's layout" for entry in sorted(root.iterdir())
                 if entry.name not in TOP_LEVEL]
    if "coreml" in targets:
        tokenizer = submission_conditioning(context) is TEXT
        problems += _coreml_layout(root / "coreml", expected, tokenizer, strict=context.reference is not None)
    if "executorch" in targets:
        problems += [f"executorch/{name}.pte is missing" for name in expected
                     if not (root / "executorch" / f"{name}.pte").is_file()]
    golden = [f"golden/{name}.safetensors" for name in expected] + ["golden/tryon.safetensors"]
    problems += [f"{path} is missing" for path in golden if not (root / path).is_file()]
    return verdict(problems, f"{len(expected)} components laid out for {', '.join(sorted(targets))}")


def _coreml_layout(coreml: Path, expected: list[str], tokenizer: bool, strict: bool) -> list[str]:
    problems = [f"coreml/{name} is missing" for name in TOKENIZER_FILES if tokenizer and not (coreml / name).is_file()]
    claimed = set()
    for name in expected:
        packages = component_packages(coreml, name)
        claimed |= {p.name for p in packages}
        if not packages:
            problems.append(f"coreml/{name}.mlpackage (or {name}Chunk1..N.mlpackage) is missing")
            continue
        if len(packages) > 1 or packages[0].name != f"{name}.mlpackage":
            numbers = [int(re.search(r"Chunk(\d+)", p.name).group(1)) for p in packages]
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"coreml/{name}Chunk*: chunks numbered {numbers}, not 1..{len(numbers)}")
            if (coreml / f"{name}.mlpackage").exists():
                problems.append(f"coreml/{name}.mlpackage and {name}Chunk* both present")
        for package in packages:
            problems += [f"coreml/{package.name}: missing {part}" for part in ("Manifest.json", MODEL_FILE, WEIGHTS_FILE)
                         if not (package / part).is_file()]
    if strict:
        extra = sorted(p.name for p in coreml.glob("*.mlpackage") if p.name not in claimed)
        problems += [f"coreml/{name}: no such component in the reference bundle" for name in extra]
    return problems


@check("manifest", "manifest.json parses; every file's sha256 and size match it; its paths stay inside")
def check_manifest(context: Context) -> Outcome:
    """Parse manifest.json (setting ``context.manifest``); fail on any field, hash, size or path it gets wrong."""
    from tryon_lab.export.verify import check_files

    try:
        manifest = context.parse_manifest()
    except BundleError as err:
        details = err.details() if isinstance(err, ManifestError) else []
        return Outcome(False, context.relative(str(err)), [context.relative(d) for d in details[:MAX_LISTED]])
    context.manifest = manifest
    problems = check_files(context.root, manifest) + _size_problems(context.root, manifest)
    return verdict(problems, f"{len(manifest.files)} files: every sha256 and size matches")


def _size_problems(root: Path, manifest: Manifest) -> list[str]:
    """Sizes the manifest states (files' bytes, packages' and programs' size_bytes) against the disk."""
    problems = []
    for relative, entry in manifest.files.items():
        path = root / relative
        if path.is_file() and entry.bytes != path.stat().st_size:
            problems.append(f"{relative}: the manifest says {entry.bytes} bytes, the file has {path.stat().st_size}")
    for name, entry in manifest.components.items():
        if entry.coreml is not None:
            total = 0
            for package in entry.coreml.packages:
                path = root / package.path
                actual = folder_bytes(path) if path.exists() else 0
                total += actual
                if package.size_bytes != actual:
                    problems.append(f"{package.path}: size_bytes {package.size_bytes} in the manifest, {actual} on disk")
            if entry.coreml.size_bytes != total:
                problems.append(f"component {name}: coreml size_bytes {entry.coreml.size_bytes}, packages total {total}")
        if entry.executorch is not None:
            path = root / entry.executorch.path
            actual = path.stat().st_size if path.is_file() else 0
            if entry.executorch.size_bytes != actual:
                problems.append(f"{entry.executorch.path}: size_bytes {entry.executorch.size_bytes}, {actual} on disk")
    return problems


@check("programs", "Every Core ML package reads back as an ML Program (protobuf and weights), all weights finite")
def check_programs(context: Context) -> Outcome:
    """Read back every Core ML package as data (filling ``context.packages``); fail on unreadable ones and non-finite weights."""
    coreml = context.root / "coreml"
    packages = sorted(coreml.glob("*.mlpackage")) if coreml.is_dir() else []
    if not packages:
        return Outcome(False, "no Core ML packages (coreml/*.mlpackage) to read")
    problems, rows = [], []
    for package in packages:
        relative = package.relative_to(context.root).as_posix()
        if not package.is_dir():
            problems.append(f"{relative}: not a package folder")
            continue
        try:
            loaded = load_package(package)
        except PackageError as err:
            problems.append(f"{relative}: {err}")
            continue
        context.packages[relative] = loaded
        if loaded.non_finite:
            first = next(iter(loaded.non_finite))
            problems.append(f"{relative}: {sum(loaded.non_finite.values())} NaN or infinite weight values in "
                            f"{len(loaded.non_finite)} weights (first: {first})")
        rows.append({"package": relative, "weights": loaded.weights.elements,
                     "average bits": round(loaded.weights.average_bits, 3),
                     "non-finite values": sum(loaded.non_finite.values())})
    return verdict(problems, f"{len(packages)} packages read back, all weights finite", rows)


def contract_specs(manifest: Manifest) -> dict[str, ComponentSpec]:
    """The specs ``tryon_lab.export.contract`` gives a text pipeline of the sizes ``manifest`` declares.

    The contract's builders read sizes from a pipeline; a stand-in carrying the manifest's runtime
    sizes (resolution, latent size, token length, U-Net channels) and the widths it declares lets
    them state exactly what such a bundle must look like. The text width and latent channels are
    taken once (from the TextEncoder and VAEEncoder) and imposed on the U-Net, so the components
    must agree with each other too. A reference-conditioned (DTC) bundle's specs depend on its
    networks (the hint maps are measured), so they are checked against a reference bundle only:
    ``BundleError`` here.
    """
    if manifest.conditioning is not TEXT:
        raise BundleError("a reference-conditioned (DTC) bundle's contract can only be checked against a "
                          "reference bundle (--reference)")
    runtime = manifest.runtime

    def width(component: str, side: str, tensor: str, axis: int) -> int:
        entry = manifest.components.get(component)
        shapes = [t.shape for t in getattr(entry.spec, side) if t.name == tensor] if entry else []
        return shapes[0][axis] if shapes and len(shapes[0]) > axis else 1  # missing or malformed: reported on its own

    hidden = width("TextEncoder", "outputs", "last_hidden_state", 2)
    latent_channels = width("VAEEncoder", "outputs", "latent", 1)
    ns = SimpleNamespace
    pipe = ns(resolution=runtime.resolution, vae_scale_factor=runtime.vae_scale_factor,
              tokenizer=ns(model_max_length=runtime.token_length), text_encoder=ns(config=ns(hidden_size=hidden)),
              unet=ns(config=ns(sample_size=runtime.latent_size, in_channels=len(runtime.unet_channels),
                                out_channels=latent_channels, cross_attention_dim=hidden)),
              vae=ns(config=ns(latent_channels=latent_channels, scaling_factor=1.0)))
    return {name: component.spec for name, component in pipeline_components(pipe).items()}


def spec_differences(got: ComponentSpec, expected: ComponentSpec, against: str) -> list[str]:
    """How ``got`` differs from ``expected`` (names and order, shapes, dtypes), worded against ``against``."""
    problems = []
    for side in ("inputs", "outputs"):
        mine, theirs = getattr(got, side), getattr(expected, side)
        if [t.name for t in mine] != [t.name for t in theirs]:
            problems.append(f"{got.name} {side} are {[t.name for t in mine]}, {against} has {[t.name for t in theirs]}")
        named = {t.name: t for t in mine}
        for tensor in theirs:
            other = named.get(tensor.name)
            if other is not None and (other.shape, other.dtype) != (tensor.shape, tensor.dtype):
                problems.append(f"{got.name}.{tensor.name} is {list(other.shape)} {other.dtype}, {against} has "
                                f"{list(tensor.shape)} {tensor.dtype}")
    return problems


@check("contract", "Component names, input and output names, shapes and dtypes: the contract, the reference, the programs")
def check_contract(context: Context) -> Outcome:
    """Compare the manifest's component specs with the expected ones, and the programs' own inputs and outputs with both."""
    manifest = context.need_manifest()
    components = manifest.components
    expected, against, notes = _expected_specs(context, manifest)
    problems = [f"component {name} is missing from the manifest" for name in expected if name not in components]
    if context.reference:
        theirs = context.reference.manifest
        problems += [f"component {name} is not in the reference bundle" for name in components if name not in expected]
        problems += _section_differences("runtime", manifest.runtime.to_json(), theirs.runtime.to_json(), _prose)
        problems += _section_differences("scheduler", manifest.scheduler, theirs.scheduler,
                                         lambda key, value: key == "_diffusers_version")
    for name, spec in expected.items():
        if name not in components:
            continue
        declared = components[name].spec
        if spec is not None:
            problems += spec_differences(declared, spec, against)
        if components[name].coreml is not None:
            try:
                problems += _program_differences(context, declared, components[name].coreml.packages)
            except BundleError as err:  # a program declaring a tensor no contract allows
                problems.append(f"component {name}: {err}")
    outcome = verdict(problems, f"{len(expected)} components match {against} and their programs")
    outcome.details = outcome.details or notes
    outcome.unverified = any(spec is None for spec in expected.values())
    return outcome


def _expected_specs(context: Context, manifest: Manifest) -> tuple[dict[str, ComponentSpec | None], str, list[str]]:
    """({component: the spec it must have, or None where only its programs can be compared}, what the
    specs come from, notes)."""
    if context.reference:
        return dict(context.reference.specs), "the reference bundle", []
    if manifest.conditioning is TEXT:
        return dict(contract_specs(manifest)), "the contract", []
    return ({name: None for name in expected_components(context)}, "the manifest",
            ["no reference bundle: a DTC bundle's programs are compared with its own manifest only"])


def _prose(key: str, value: Any) -> bool:
    return isinstance(value, str) and key != "conditioning"  # runtime notes for people, e.g. latent_mask


def _section_differences(section: str, mine: dict[str, Any], theirs: dict[str, Any],
                         ignore: Callable[[str, Any], bool]) -> list[str]:
    """Entries of manifest section ``section`` that differ from the reference's (floats to 1e-6; entries
    for which ``ignore(key, value)`` holds are not compared)."""
    problems = []
    for key, value in theirs.items():
        if ignore(key, value):
            continue
        other = mine.get(key)
        if isinstance(value, float) and not isinstance(other, bool) and isinstance(other, (int, float)):
            same = math.isclose(other, value, rel_tol=1e-6)
        else:
            same = other == value
        if not same:
            problems.append(f"{section}.{key} is {other!r:.60}, the reference bundle has {value!r:.60}")
    return problems


def _program_differences(context: Context, spec: ComponentSpec, packages: tuple[Package, ...]) -> list[str]:
    """What the programs themselves declare against the manifest's package entries and ``spec``."""
    problems, produced = [], {}
    inputs = {t.name: t for t in spec.inputs}
    for index, package in enumerate(packages):
        loaded = context.packages.get(package.path)
        if loaded is None:
            problems.append(f"{package.path}: no readable package at that path (see programs)")
            return problems
        for side, listed in package.io().items():
            if listed != loaded.io[side]:
                problems.append(f"{package.path}: the manifest lists {side} {_shapes(listed)}, the program declares "
                                f"{_shapes(loaded.io[side])}")
        for entry in loaded.io["inputs"]:
            tensor = TensorSpec.from_json(entry)
            known = produced.get(tensor.name) or inputs.get(tensor.name)
            if known is None or known.shape != tensor.shape:
                where = "the previous chunk" if index else "the component"
                problems.append(f"{package.path}: input {tensor.name} {list(tensor.shape)} is not an output of {where} "
                                "of that shape")
        produced = {t.name: t for t in map(TensorSpec.from_json, loaded.io["outputs"])}
    for tensor in spec.outputs:
        if tensor.name not in produced or (produced[tensor.name].shape, produced[tensor.name].dtype) != \
                (tensor.shape, tensor.dtype):
            problems.append(f"{spec.name}: its last program does not output {tensor.name} {list(tensor.shape)} {tensor.dtype}")
    return problems


def _shapes(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"{e['name']} {e['shape']} {e['dtype']}" for e in entries)


@check("bits", "Palettization read from the programs: the manifest's claims, and the rubric's widths and average")
def check_bits(context: Context) -> Outcome:
    """Hold the manifest's bits and compression claims, and the rubric's palette widths and average, against the programs."""
    manifest = context.need_manifest()
    settings = context.rubric.settings["bits"]
    problems, rows = [], []
    for name in settings["components"]:
        if name not in manifest.components:
            problems.append(f"component {name} is missing, so it cannot be palettized")
    for name, entry in manifest.components.items():
        if entry.coreml is None:
            continue
        report = _component_bits(context, name, entry.coreml, problems)
        if report is None:
            continue
        widths = sorted(b for b in report.histogram if b < 16)
        graded = graded_average_bits(report)
        rows.append({"component": name, "average bits": round(report.average_bits, 3),
                     f"average bits, tensors over {WEIGHT_THRESHOLD} elements": round(graded, 3),
                     "palette widths": ", ".join(map(str, widths)) or "none",
                     "claimed": _claim(entry.coreml.compression)})
        if name in settings["components"]:
            if not widths:
                problems.append(f"{name} is not palettized (every weight is {max(report.histogram, default=16)}-bit)")
            bad = [b for b in widths if b not in settings["allowed_bits"]]
            if bad:
                problems.append(f"{name} has {bad}-bit palettes; the rubric allows {settings['allowed_bits']}")
            if graded > settings["max_average_bits"]:
                problems.append(f"{name} averages {graded:.2f} bits per weight over its tensors of more than "
                                f"{WEIGHT_THRESHOLD} elements; the rubric allows at most {settings['max_average_bits']:g}")
    return verdict(problems, "bits read from the programs match the manifest and the rubric", rows)


def graded_average_bits(report: WeightReport) -> float:
    """Bits per weight over the tensors a palettizer compresses: the rubric's average.

    Uncompressed tensors of at most ``WEIGHT_THRESHOLD`` elements (norms, biases) are left out:
    coremltools never palettizes them, and they are 0.4% of the course U-Net's weights but a
    quarter of a tiny one's, so counting them would make the bar depend on the model's size.
    """
    return WeightReport(tuple(w for w in report.weights if w.bits < 16 or w.elements > WEIGHT_THRESHOLD)).average_bits


def _component_bits(context: Context, name: str, coreml: CoreMLEntry, problems: list[str]) -> WeightReport | None:
    """The combined weight report of a component's programs, adding to ``problems`` where the manifest's
    per-package and per-component bits or its compression claim do not hold; None if a program is unreadable."""
    reports = []
    for package in coreml.packages:
        loaded = context.packages.get(package.path)
        if loaded is None:
            problems.append(f"{package.path}: no readable program to read bits from (see programs)")
            return None
        reports.append(loaded.weights)
        if not _same_bits(package.bits, loaded.weights):
            problems.append(f"{package.path}: the manifest claims {_describe(package.bits)}, the program holds "
                            f"{_describe(Bits.of(loaded.weights))}")
    combined = WeightReport(tuple(w for r in reports for w in r.weights))
    if not _same_bits(coreml.bits, combined):
        problems.append(f"component {name}: the manifest claims {_describe(coreml.bits)}, its programs hold "
                        f"{_describe(Bits.of(combined))}")
    claim = coreml.compression
    widths = {b for b in combined.histogram if b < 16}
    if not claim.palettized:
        permitted = set()
    else:
        permitted = set(MIXED_BITS) if claim.bits == "mixed" else {claim.bits}
    if not widths <= permitted or (claim.palettized and not widths):
        held = f"{sorted(widths)}-bit palettes" if widths else "no palettes"
        problems.append(f"component {name}: the manifest claims {_claim(claim)}, the programs hold {held}")
    return combined


def _same_bits(claimed: Bits, report: WeightReport) -> bool:
    actual = Bits.of(report)
    return (math.isclose(claimed.average, actual.average, abs_tol=1e-3) and claimed.histogram == actual.histogram
            and claimed.weight_elements == actual.weight_elements)


def _describe(bits: Bits) -> str:
    widths = ", ".join(f"{k}-bit {v}" for k, v in sorted(bits.histogram.items()))
    return f"{bits.average:g} bits on average ({widths})"


def _claim(compression: Compression) -> str:
    return f"kmeans {compression.bits}-bit" if compression.palettized else "no palettization"


@check("chunks", "The chunked component's pieces: how many, and the size of the largest on disk")
def check_chunks(context: Context) -> Outcome:
    """Count and measure the chunked component's packages on disk against the rubric and the manifest's claim."""
    settings = context.rubric.settings["chunks"]
    name = settings["component"]
    packages = component_packages(context.root / "coreml", name)
    if not packages:
        return Outcome(False, f"no {name} package to measure")
    sizes = {p.name: folder_bytes(p) for p in packages}
    problems = []
    if not settings["min_chunks"] <= len(packages) <= settings["max_chunks"]:
        pieces = "unchunked" if len(packages) == 1 else f"in {len(packages)} chunks"
        problems.append(f"{name} is {pieces}; the rubric wants {settings['min_chunks']} to {settings['max_chunks']} chunks")
    biggest = max(sizes, key=sizes.get)
    if sizes[biggest] > settings["max_chunk_bytes"]:
        problems.append(f"coreml/{biggest} is {sizes[biggest]} bytes; the rubric allows {settings['max_chunk_bytes']} "
                        "per chunk")
    entry = context.manifest.components.get(name) if context.manifest is not None else None
    if entry is not None:
        chunking = entry.coreml.chunking if entry.coreml is not None else None
        claimed = chunking.chunks if chunking is not None else 1
        if claimed != len(packages):
            problems.append(f"the manifest says {name} is in {claimed} chunks, the bundle has {len(packages)}")
    rows = [{"package": f"coreml/{n}", "bytes": b} for n, b in sizes.items()]
    return verdict(problems, f"{name}: {len(packages)} chunks, largest {sizes[biggest]} bytes", rows)


@check("numerics", "Every component on the golden inputs against the PyTorch outputs (MIL executor, ExecuTorch)",
       needs=("contract",))
def check_numerics(context: Context) -> Outcome:
    """Run every component on every graded target on the golden inputs; fail where the outputs miss the bars."""
    manifest = context.need_manifest()
    settings = context.rubric.settings["numerics"]
    targets = [t for t in settings["targets"] if t in manifest.targets]
    if not targets:
        return Outcome(False, f"the manifest lists none of the targets {settings['targets']}")
    expected, _, _ = _expected_specs(context, manifest)
    problems, rows = [], []
    for name, spec in expected.items():
        entry = manifest.components[name]  # the contract check passed, so every expected component is there
        try:
            inputs, outputs = context.reference.golden(name) if context.reference else _own_golden(context, entry)
        except Exception as err:  # a damaged golden file: safetensors and numpy raise many types
            problems.append(f"{name}: golden data unreadable ({type(err).__name__}: {context.relative(str(err))[:200]})")
            continue
        for target in targets:
            if target in entry.targets:
                row = _run_component(context, entry, spec or entry.spec, target, inputs, outputs)
                rows.append(row)
                if row["result"] != "ok":
                    problems.append(f"{name} ({target}): {row['result']}")
    if context.reference:
        return verdict(problems, f"{len(rows)} component runs agree with PyTorch on the reference bundle's golden data",
                       rows)
    outcome = verdict(problems, f"{len(rows)} component runs match the submission's own golden outputs (no reference "
                                "bundle to hold them against)", rows)
    outcome.unverified = True
    return outcome


def _own_golden(context: Context, entry: ComponentEntry):
    from tryon_lab.export.golden import load_arrays, split_component_arrays

    return split_component_arrays(load_arrays(context.root / entry.golden))


def _unread(context: Context, packages: tuple[Package, ...]) -> str | None:
    """Why ``packages`` cannot run (one was not read back safely by the programs check), or None."""
    unread = [p.path for p in packages if p.path not in context.packages]
    return f"{unread[0]} was not read back safely (see programs)" if unread else None


def _run_component(context: Context, entry: ComponentEntry, spec: ComponentSpec, target: str,
                   inputs: dict, outputs: dict) -> dict[str, Any]:
    """Run one component on one target; a row with its numbers, bar and ``result`` ("ok" or why not)."""
    from tryon_lab.export.verify import compare_outputs, coreml_runner

    settings = context.rubric.settings["numerics"]
    name = entry.spec.name
    row: dict[str, Any] = {"component": name, "target": target}
    try:
        if target == "coreml":
            packages = entry.coreml.packages
            unread = _unread(context, packages)
            if unread:
                return {**row, "result": f"not run: {unread}"}
            palettized = any(context.packages[p.path].palettized for p in packages)
            runner = coreml_runner(context.root, packages, "mil")
            context.runners[name] = runner
            psnr, error, relative = compare_outputs(runner, inputs, outputs)
            bar = settings["min_psnr_palettized"] if palettized else settings["min_psnr"]
            row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f">= {bar:g} dB")
            passed = psnr >= bar
        else:
            from tryon_lab.export.executorch import PteRunner

            runner = PteRunner(context.root / entry.executorch.path, spec)
            psnr, error, relative = compare_outputs(runner, inputs, outputs)
            if entry.executorch.quantization != "none":
                bar = settings["min_psnr_palettized"]
                row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f">= {bar:g} dB")
                passed = psnr >= bar
            else:
                bar = settings["executorch_max_relative_error"]
                row.update(psnr=psnr, max_abs_error=error, relative_error=relative, bar=f"rel <= {bar:g}")
                passed = relative <= bar
    except Exception as err:  # whatever a hostile program makes a kernel or runtime raise
        return {**row, "result": f"could not run ({type(err).__name__}: {context.relative(str(err))[:200]})"}
    return {**row, "result": "ok" if passed else f"misses the bar {row['bar']} (PSNR {psnr:.1f} dB, "
                                                  f"relative error {relative:.3g})"}


@check("tryon", "A whole try-on on the reference's golden inputs: PSNR of the generated region", needs=("contract",))
def check_tryon(context: Context) -> Outcome:
    """Run a whole try-on with the submission's Core ML components on the reference's golden inputs; fail below the PSNR bar."""
    from tryon_lab.export.verify import coreml_runner, tryon_row

    if context.reference is None:
        return Outcome(True, "not run: no reference bundle (--reference) to compare a try-on with", unverified=True)
    needed = [name for name in context.reference.specs if name in (*submission_conditioning(context).components,
                                                                   *CORE_COMPONENTS, "HintEncoder")]
    manifest = context.need_manifest()
    runners = {}
    for name in needed:
        if name in context.runners:
            runners[name] = context.runners[name]
            continue
        entry = manifest.components.get(name)
        if entry is None or entry.coreml is None:
            return Outcome(False, f"{name}: the manifest lists no Core ML packages for it")
        unread = _unread(context, entry.coreml.packages)
        if unread:
            return Outcome(False, f"{name}: {unread}")
        try:
            runners[name] = coreml_runner(context.root, entry.coreml.packages, "mil")
        except Exception as err:
            return Outcome(False, f"{name}: cannot be loaded ({type(err).__name__}: {context.relative(str(err))[:200]})")
    bar = context.rubric.get("tryon", "min_psnr")
    try:
        row = tryon_row(context.reference.path, context.reference.manifest, "coreml", runners)
    except Exception as err:
        return Outcome(False, f"the try-on could not run ({type(err).__name__}: {context.relative(str(err))[:200]})")
    rows = [{"target": "coreml", "psnr": row.psnr, "max_abs_error": row.max_abs_error, "bar": f">= {bar:g} dB",
             "note": row.note}]
    if not row.psnr >= bar:
        return Outcome(False, f"the try-on's generated region is {row.psnr:.1f} dB from the reference's; the rubric "
                              f"wants >= {bar:g} dB", rows=rows)
    return Outcome(True, f"the try-on's generated region is {row.psnr:.1f} dB from the reference's (bar {bar:g} dB)",
                   rows=rows)
