"""A class of good and bad submissions made from one bundle, to test and benchmark the grader.

``make_corpus(bundle, out, rubric)`` writes one submission per ``CASES`` entry: good ones (a
folder, a zip, a zip made by macOS) and one per fault, each named with the check that must fail
on it: unsafe archives and folders (``unpack``), pickles and executables (``file_types``), missing
parts (``structure``), a manifest that lies (``manifest``, ``contract``, ``bits``, ``chunks``), broken
programs (``programs``) and wrong numbers (``numerics``). Except where the manifest's own integrity
is the fault, the manifest is re-hashed after the change, so the named check is the one that
catches it. Sizes are made just over ``rubric.limits`` and the chunk budget, so a rubric with small
limits (``CORPUS_RUBRIC``) keeps the corpus small.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from tryon_lab.export.bundle import file_hashes, folder_bytes
from tryon_lab.export.manifest import MANIFEST, Compression, Manifest, read_manifest, write_manifest
from tryon_lab.grading.errors import GradingInputError
from tryon_lab.grading.rubric import Rubric

CORPUS_RUBRIC = """\
# The grader corpus rubric: the course default with limits small enough for tiny bundles.
name = "tryon-lab grader corpus (tiny bundles)"

[limits]
max_file_bytes = 4_194_304        # 4 MiB: a tiny bundle's files are under 200 kB
max_total_bytes = 33_554_432      # 32 MiB
max_compression_ratio = 100.0
timeout_seconds = 300.0

[chunks]
max_chunk_bytes = 1_048_576       # 1 MiB
"""
MAX_PADDING = 64 << 20
FP16 = 1  # the MIL blob storage's data type code for float16
BLOB_SENTINEL = 0xDEADBEEF


@dataclass(frozen=True)
class Sample:
    """One submission of the corpus: its ``name`` and ``path``, the check that must fail on it
    (``fault``, None for a good one), what it is (``what``), the report ``status`` it must get, and
    ``forbidden``: a path the grader must never create (where an escaping entry points)."""

    name: str
    path: Path
    fault: str | None
    what: str
    status: str
    forbidden: Path | None = None


@dataclass(frozen=True)
class Case:
    """How to make one sample: ``make(bundle, target, rubric, forbidden)`` writes it at ``target``
    (``.zip`` when ``zipped``)."""

    name: str
    fault: str | None
    what: str
    zipped: bool
    make: Callable[[Path, Path, Rubric, Path], None]
    status: str = "failed"


# ---- helpers --------------------------------------------------------------------------------

def _copy(bundle: Path, target: Path) -> Path:
    shutil.copytree(bundle, target, symlinks=True)
    return target


Edit = Callable[[Manifest], Manifest]


def edit_manifest(folder: Path, edit: Edit) -> None:
    """Replace ``folder``'s manifest with ``edit`` of it, as it is (a lie stays a lie)."""
    write_manifest(folder, edit(read_manifest(folder)))


def refresh_manifest(folder: Path, edit: Edit | None = None) -> None:
    """``edit`` ``folder``'s manifest (if given), then re-hash its files and re-measure its packages into
    it: an honest manifest of whatever the folder holds."""
    manifest = read_manifest(folder)
    manifest = edit(manifest) if edit else manifest
    components = {}
    for name, entry in manifest.components.items():
        if entry.coreml is not None:
            packages = tuple(replace(p, size_bytes=folder_bytes(folder / p.path) if (folder / p.path).exists() else 0)
                             for p in entry.coreml.packages)
            entry = replace(entry, coreml=replace(entry.coreml, packages=packages,
                                                  size_bytes=sum(p.size_bytes for p in packages)))
        components[name] = entry
    write_manifest(folder, replace(manifest, components=components, files=file_hashes(folder)))


def _zip(folder: Path, target: Path, prefix: str = "bundle/", extra: Callable[[zipfile.ZipFile], None] | None = None) -> None:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
        if extra:
            extra(archive)


def _changed(bundle: Path, target: Path, change: Callable[[Path], None], honest: bool = True) -> None:
    """A folder submission: ``bundle`` copied to ``target``, ``change``d, its manifest refreshed if ``honest``."""
    _copy(bundle, target)
    change(target)
    if honest:
        refresh_manifest(target)


def _lying(bundle: Path, target: Path, edit: Edit) -> None:
    """A folder submission: ``bundle`` copied to ``target`` with its manifest ``edit``ed, then refreshed
    (so only the edit is untrue)."""
    _copy(bundle, target)
    refresh_manifest(target, edit)


def _component(manifest: Manifest, name: str, **changes) -> Manifest:
    """``manifest`` with component ``name``'s entry changed as ``dataclasses.replace`` would."""
    return replace(manifest, components={**manifest.components,
                                         name: replace(manifest.components[name], **changes)})


def _tensor_changed(spec, side: str, index: int, **changes):
    """``spec`` with tensor ``index`` of ``side`` (inputs or outputs) changed."""
    tensors = list(getattr(spec, side))
    tensors[index] = replace(tensors[index], **changes)
    return replace(spec, **{side: tuple(tensors)})


def blob_regions(weights: Path) -> list[tuple[int, int, int]]:
    """(data type, offset, bytes) of every blob in a Core ML weight file (MIL blob storage, version 2)."""
    data = weights.read_bytes()
    count, regions, position = int.from_bytes(data[:4], "little"), [], 64
    for _ in range(count):
        sentinel, dtype, size, offset = struct.unpack_from("<IIQQ", data, position)
        if sentinel != BLOB_SENTINEL:
            raise GradingInputError(f"{weights} is not a MIL blob storage file")
        regions.append((dtype, offset, size))
        position = (offset + size + 63) // 64 * 64
    return regions


def _edit_fp16(weights: Path, edit: Callable[[bytearray, int, int], None], first_only: bool = False) -> None:
    data = bytearray(weights.read_bytes())
    for dtype, offset, size in blob_regions(weights):
        if dtype == FP16:
            edit(data, offset, size)
            if first_only:
                break
    weights.write_bytes(bytes(data))


def _weights(folder: Path, package: str) -> Path:
    return folder / "coreml" / f"{package}.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"


def _patch_declared_size(archive: Path, member: str, size: int) -> None:
    """Make ``member`` of ``archive`` declare ``size`` unpacked bytes (local and central headers)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as opened:
        local = opened.getinfo(member).header_offset
    struct.pack_into("<I", data, local + 22, size)
    name, start = member.encode(), data.find(b"PK\x01\x02")
    while start != -1:
        length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46: start + 46 + length] == name:
            struct.pack_into("<I", data, start + 24, size)
            break
        start = data.find(b"PK\x01\x02", start + 4)
    archive.write_bytes(bytes(data))


# ---- the cases ------------------------------------------------------------------------------

def _good_folder(bundle, target, rubric, forbidden):
    _copy(bundle, target)


def _good_zip(bundle, target, rubric, forbidden):
    _zip(bundle, target)


def _macos_zip(bundle, target, rubric, forbidden):
    def junk(archive):
        archive.writestr("__MACOSX/._manifest.json", b"\x00\x05\x16\x07 AppleDouble")
        archive.writestr(".DS_Store", b"Bud1 finder data")
    _zip(bundle, target, prefix="", extra=junk)


def _zip_traversal(bundle, target, rubric, forbidden):
    _zip(bundle, target, extra=lambda a: a.writestr("../" * 16 + forbidden.relative_to("/").as_posix(), b"escaped"))


def _zip_absolute(bundle, target, rubric, forbidden):
    _zip(bundle, target, extra=lambda a: a.writestr(str(forbidden), b"escaped"))


def _zip_symlink(bundle, target, rubric, forbidden):
    def link(archive):
        info = zipfile.ZipInfo("bundle/golden/link.safetensors")
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    _zip(bundle, target, extra=link)


def _zip_duplicate(bundle, target, rubric, forbidden):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate this case is made of
        _zip(bundle, target, extra=lambda a: a.writestr("bundle/coreml/vocab.json", b"{}"))


def _zip_bomb(bundle, target, rubric, forbidden):
    size = min(rubric.limits.max_file_bytes, 8 << 20)
    if size <= 1 << 20 or rubric.limits.max_compression_ratio >= 500:
        raise GradingInputError("the zip-bomb case needs limits.max_file_bytes > 1 MiB and a ratio limit < 500")
    def bomb(archive):
        archive.writestr(zipfile.ZipInfo("bundle/golden/zeros.safetensors"), bytes(size), zipfile.ZIP_DEFLATED, 9)
    _zip(bundle, target, extra=bomb)


def _zip_lying_size(bundle, target, rubric, forbidden):
    _zip(bundle, target)
    _patch_declared_size(target, "bundle/golden/tryon.safetensors", 100)


def _folder_symlink(bundle, target, rubric, forbidden):
    def link(folder):
        (folder / "coreml" / "vocab.json").unlink()
        os.symlink("/etc/passwd", folder / "coreml" / "vocab.json")
    _changed(bundle, target, link, honest=False)


def _oversized(bundle, target, rubric, forbidden):
    def grow(folder):
        with open(folder / "golden" / "padding.safetensors", "wb") as handle:
            handle.truncate(rubric.limits.max_file_bytes + 1)  # sparse: costs no disk
    _changed(bundle, target, grow, honest=False)


def _fifo(bundle, target, rubric, forbidden):
    _changed(bundle, target, lambda folder: os.mkfifo(folder / "golden" / "pipe.safetensors"), honest=False)


def _not_a_zip(bundle, target, rubric, forbidden):
    target.write_bytes(hashlib.sha256(b"not a zip").digest() * 64)


def _pickle(bundle, target, rubric, forbidden):
    import torch

    _changed(bundle, target, lambda folder: torch.save({"weight": torch.zeros(4)}, folder / "coreml" / "model.pt"))


def _executable(bundle, target, rubric, forbidden):
    elf = b"\x7fELF\x02\x01\x01" + bytes(57)
    _changed(bundle, target, lambda folder: (folder / "coreml" / "convert").write_bytes(elf))


def _disguised_pickle(bundle, target, rubric, forbidden):
    payload = pickle.dumps({"input.input_ids": [1, 2, 3]}, protocol=4)
    _changed(bundle, target, lambda folder: (folder / "golden" / "TextEncoder.safetensors").write_bytes(payload))


def _missing_component(bundle, target, rubric, forbidden):
    _copy(bundle, target)
    shutil.rmtree(target / "coreml" / "VAEDecoder.mlpackage")
    refresh_manifest(target, lambda m: replace(m, components={k: v for k, v in m.components.items()
                                                              if k != "VAEDecoder"}))


def _missing_weights(bundle, target, rubric, forbidden):
    _changed(bundle, target, lambda folder: _weights(folder, "VAEEncoder").unlink())


def _tampered(bundle, target, rubric, forbidden):
    def edit(folder):
        with open(folder / "coreml" / "merges.txt", "a") as handle:
            handle.write("t ampered\n")
    _changed(bundle, target, edit, honest=False)


def _size_lie(bundle, target, rubric, forbidden):
    def lie(manifest):
        vocab = manifest.files["coreml/vocab.json"]
        return replace(manifest, files={**manifest.files, "coreml/vocab.json": replace(vocab, bytes=vocab.bytes + 1)})
    _copy(bundle, target)
    edit_manifest(target, lie)


def _manifest_not_json(bundle, target, rubric, forbidden):
    _changed(bundle, target, lambda folder: (folder / MANIFEST).write_text("{not json"), honest=False)


def _corrupt_protobuf(bundle, target, rubric, forbidden):
    model = Path("coreml/TextEncoder.mlpackage/Data/com.apple.CoreML/model.mlmodel")
    garbage = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))
    _changed(bundle, target, lambda folder: (folder / model).write_bytes(garbage))


def _nan_weights(bundle, target, rubric, forbidden):
    def nan(data, offset, size):
        data[offset: offset + size] = b"\x00\x7e" * (size // 2)  # fp16 NaN, little endian
    _changed(bundle, target, lambda folder: _edit_fp16(_weights(folder, "TextEncoder"), nan, first_only=True))


def _package_escape(bundle, target, rubric, forbidden):
    def escape(folder):
        path = folder / "coreml" / "VAEDecoder.mlpackage" / "Manifest.json"
        listing = json.loads(path.read_text())
        for entry in listing["itemInfoEntries"].values():
            if entry["name"] == "weights":
                entry["path"] = "../../../../../../../../etc"
        path.write_text(json.dumps(listing, indent=4))
    _changed(bundle, target, escape)


def _shape_lie(bundle, target, rubric, forbidden):
    def lie(manifest):
        spec = manifest.components["VAEDecoder"].spec
        _, channels, height, width = spec.outputs[0].shape
        return _component(manifest, "VAEDecoder",
                          spec=_tensor_changed(spec, "outputs", 0, shape=(1, channels, height * 2, width * 2)))
    _lying(bundle, target, lie)


def _renamed_input(bundle, target, rubric, forbidden):
    def rename(manifest):
        spec = manifest.components["Unet"].spec
        return _component(manifest, "Unet", spec=_tensor_changed(spec, "inputs", 0, name="latent_sample"))
    _lying(bundle, target, rename)


def _bits_lie(bundle, target, rubric, forbidden):
    def lie(manifest):
        coreml = manifest.components["Unet"].coreml
        claimed = 4 if coreml.compression.bits != 4 else 8

        def relabel(bits):
            histogram: dict[int, int] = {}
            for width, elements in bits.histogram.items():
                width = claimed if width < 16 else width
                histogram[width] = histogram.get(width, 0) + elements
            return replace(bits, histogram=histogram)

        return _component(manifest, "Unet", coreml=replace(
            coreml, compression=replace(coreml.compression, bits=claimed), bits=relabel(coreml.bits),
            packages=tuple(replace(p, bits=relabel(p.bits)) for p in coreml.packages)))
    _lying(bundle, target, lie)


def _claims_no_palettes(bundle, target, rubric, forbidden):
    def lie(manifest):
        return _component(manifest, "Unet", coreml=replace(manifest.components["Unet"].coreml,
                                                           compression=Compression("none")))
    _lying(bundle, target, lie)


def _oversized_chunk(bundle, target, rubric, forbidden):
    def pad(folder):
        name = rubric.get("chunks", "component")
        package = sorted((folder / "coreml").glob(f"{name}*.mlpackage"))[0]
        padding = rubric.get("chunks", "max_chunk_bytes") - folder_bytes(package) + 1
        if padding > MAX_PADDING:
            raise GradingInputError("the oversized-chunk case needs chunks.max_chunk_bytes within 64 MiB of a chunk's "
                                    "size (use CORPUS_RUBRIC)")
        with open(package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin", "ab") as handle:
            handle.write(bytes(max(padding, 0)))
    _changed(bundle, target, pad)


def _wrong_weights(bundle, target, rubric, forbidden):
    def negate(data, offset, size):
        for i in range(offset + 1, offset + size, 2):
            data[i] ^= 0x80  # the sign bit of every fp16 value
    _changed(bundle, target, lambda folder: _edit_fp16(_weights(folder, "VAEDecoder"), negate))


CASES: tuple[Case, ...] = (
    Case("good-folder", None, "the bundle as a folder", False, _good_folder, "passed"),
    Case("good-zip", None, "the bundle zipped inside a folder", True, _good_zip, "passed"),
    Case("good-macos-zip", None, "zipped at the root, with __MACOSX and .DS_Store entries", True, _macos_zip, "passed"),
    Case("zip-traversal", "unpack", "a zip entry climbing out with ../", True, _zip_traversal),
    Case("zip-absolute", "unpack", "a zip entry with an absolute path", True, _zip_absolute),
    Case("zip-symlink", "unpack", "a zip entry that is a symbolic link to /etc/passwd", True, _zip_symlink),
    Case("zip-duplicate", "unpack", "two zip entries with one name", True, _zip_duplicate),
    Case("zip-bomb", "unpack", "a zip entry of zeros compressed a thousandfold", True, _zip_bomb),
    Case("zip-lying-size", "unpack", "a zip entry declaring fewer bytes than it holds", True, _zip_lying_size),
    Case("folder-symlink", "unpack", "a symbolic link to /etc/passwd in place of vocab.json", False, _folder_symlink),
    Case("oversized-file", "unpack", "a file one byte over limits.max_file_bytes", False, _oversized),
    Case("fifo", "unpack", "a named pipe among the golden files", False, _fifo),
    Case("not-a-zip", "unpack", "random bytes named .zip", True, _not_a_zip, "unreadable"),
    Case("pickle", "file_types", "a PyTorch checkpoint (pickle) in coreml/", False, _pickle),
    Case("executable", "file_types", "an ELF executable in coreml/", False, _executable),
    Case("disguised-pickle", "file_types", "a pickle named TextEncoder.safetensors", False, _disguised_pickle),
    Case("missing-component", "structure", "no VAEDecoder at all", False, _missing_component),
    Case("missing-weights", "structure", "VAEEncoder without its weight file", False, _missing_weights),
    Case("tampered-file", "manifest", "merges.txt changed after export", False, _tampered),
    Case("size-lie", "manifest", "a file size in the manifest off by one", False, _size_lie),
    Case("manifest-not-json", "manifest", "manifest.json is not JSON", False, _manifest_not_json),
    Case("corrupt-protobuf", "programs", "TextEncoder's model.mlmodel is garbage", False, _corrupt_protobuf),
    Case("nan-weights", "programs", "NaN weights in the TextEncoder", False, _nan_weights),
    Case("package-escape", "programs", "a package manifest pointing its weights at /etc", False, _package_escape),
    Case("shape-lie", "contract", "the manifest's VAEDecoder output shape is twice the program's", False, _shape_lie),
    Case("renamed-input", "contract", "the manifest renames the U-Net's sample input", False, _renamed_input),
    Case("bits-lie", "bits", "the manifest claims other palette bits than the programs hold", False, _bits_lie),
    Case("claims-no-palettes", "bits", "the manifest claims an unpalettized U-Net", False, _claims_no_palettes),
    Case("oversized-chunk", "chunks", "a U-Net chunk over chunks.max_chunk_bytes", False, _oversized_chunk),
    Case("wrong-weights", "numerics", "the VAEDecoder's weights negated", False, _wrong_weights),
)


def make_corpus(bundle: str | Path, out: str | Path, rubric: Rubric, only: tuple[str, ...] | None = None) -> list[Sample]:
    """Write every case (or the ``only`` names) made from ``bundle`` into the new folder ``out``; return the samples."""
    bundle, out = Path(bundle), Path(out)
    out.mkdir(parents=True)
    forbidden = Path("/tmp") / f"tryon-lab-grader-escape-{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]}"
    samples = []
    for case in CASES:
        if only is not None and case.name not in only:
            continue
        target = out / (f"{case.name}.zip" if case.zipped else case.name)
        case.make(bundle, target, rubric, forbidden)
        escapes = forbidden if case.name in ("zip-traversal", "zip-absolute") else None
        samples.append(Sample(case.name, target, case.fault, case.what, case.status, escapes))
    return samples
