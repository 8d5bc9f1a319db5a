"""Corpus cases of a bundle whose parts or manifest are wrong: missing parts (``structure``), a manifest
that lies about files (``manifest``), tensors (``contract``), bits (``bits``) or chunks (``chunks``)."""

from __future__ import annotations

import shutil
from dataclasses import replace

from tryon_lab.export.bundle import folder_bytes
from tryon_lab.export.manifest import MANIFEST, Compression
from tryon_lab.grading.corpus.case import Case
from tryon_lab.grading.corpus.edits import (
    changed,
    component_changed,
    copy_bundle,
    edit_manifest,
    lying,
    refresh_manifest,
    tensor_changed,
)
from tryon_lab.grading.corpus.weights import weight_file
from tryon_lab.grading.errors import GradingInputError

MAX_PADDING = 64 << 20


def _missing_component(bundle, target, rubric, forbidden):
    copy_bundle(bundle, target)
    shutil.rmtree(target / "coreml" / "VAEDecoder.mlpackage")
    refresh_manifest(target, lambda m: replace(m, components={k: v for k, v in m.components.items()
                                                              if k != "VAEDecoder"}))


def _missing_weights(bundle, target, rubric, forbidden):
    changed(bundle, target, lambda folder: weight_file(folder, "VAEEncoder").unlink())


def _tampered(bundle, target, rubric, forbidden):
    def edit(folder):
        with open(folder / "coreml" / "merges.txt", "a") as handle:
            handle.write("t ampered\n")
    changed(bundle, target, edit, honest=False)


def _size_lie(bundle, target, rubric, forbidden):
    def lie(manifest):
        vocab = manifest.files["coreml/vocab.json"]
        return replace(manifest, files={**manifest.files, "coreml/vocab.json": replace(vocab, bytes=vocab.bytes + 1)})
    copy_bundle(bundle, target)
    edit_manifest(target, lie)


def _manifest_not_json(bundle, target, rubric, forbidden):
    changed(bundle, target, lambda folder: (folder / MANIFEST).write_text("{not json"), honest=False)


def _shape_lie(bundle, target, rubric, forbidden):
    def lie(manifest):
        spec = manifest.components["VAEDecoder"].spec
        _, channels, height, width = spec.outputs[0].shape
        return component_changed(manifest, "VAEDecoder",
                          spec=tensor_changed(spec, "outputs", 0, shape=(1, channels, height * 2, width * 2)))
    lying(bundle, target, lie)


def _renamed_input(bundle, target, rubric, forbidden):
    def rename(manifest):
        spec = manifest.components["Unet"].spec
        return component_changed(manifest, "Unet", spec=tensor_changed(spec, "inputs", 0, name="latent_sample"))
    lying(bundle, target, rename)


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

        return component_changed(manifest, "Unet", coreml=replace(
            coreml, compression=replace(coreml.compression, bits=claimed), bits=relabel(coreml.bits),
            packages=tuple(replace(p, bits=relabel(p.bits)) for p in coreml.packages)))
    lying(bundle, target, lie)


def _claims_no_palettes(bundle, target, rubric, forbidden):
    def lie(manifest):
        return component_changed(manifest, "Unet", coreml=replace(manifest.components["Unet"].coreml,
                                                           compression=Compression("none")))
    lying(bundle, target, lie)


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
    changed(bundle, target, pad)


CASES: tuple[Case, ...] = (
    Case("missing-component", "structure", "no VAEDecoder at all", False, _missing_component),
    Case("missing-weights", "structure", "VAEEncoder without its weight file", False, _missing_weights),
    Case("tampered-file", "manifest", "merges.txt changed after export", False, _tampered),
    Case("size-lie", "manifest", "a file size in the manifest off by one", False, _size_lie),
    Case("manifest-not-json", "manifest", "manifest.json is not JSON", False, _manifest_not_json),
    Case("shape-lie", "contract", "the manifest's VAEDecoder output shape is twice the program's", False, _shape_lie),
    Case("renamed-input", "contract", "the manifest renames the U-Net's sample input", False, _renamed_input),
    Case("bits-lie", "bits", "the manifest claims other palette bits than the programs hold", False, _bits_lie),
    Case("claims-no-palettes", "bits", "the manifest claims an unpalettized U-Net", False, _claims_no_palettes),
    Case("oversized-chunk", "chunks", "a U-Net chunk over chunks.max_chunk_bytes", False, _oversized_chunk),
)
