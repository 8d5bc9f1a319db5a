"""Corpus cases of damaged programs: garbage protobuf, NaN weights, an escaping package manifest
(``programs``), and weights that compute the wrong numbers (``numerics``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tryon_lab.grading.corpus.case import Case
from tryon_lab.grading.corpus.edits import changed
from tryon_lab.grading.corpus.weights import edit_fp16, weight_file


def _corrupt_protobuf(bundle, target, rubric, forbidden):
    model = Path("coreml/TextEncoder.mlpackage/Data/com.apple.CoreML/model.mlmodel")
    garbage = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))
    changed(bundle, target, lambda folder: (folder / model).write_bytes(garbage))


def _nan_weights(bundle, target, rubric, forbidden):
    def nan(data, offset, size):
        data[offset: offset + size] = b"\x00\x7e" * (size // 2)  # fp16 NaN, little endian
    changed(bundle, target, lambda folder: edit_fp16(weight_file(folder, "TextEncoder"), nan, first_only=True))


def _package_escape(bundle, target, rubric, forbidden):
    def escape(folder):
        path = folder / "coreml" / "VAEDecoder.mlpackage" / "Manifest.json"
        listing = json.loads(path.read_text())
        for entry in listing["itemInfoEntries"].values():
            if entry["name"] == "weights":
                entry["path"] = "../../../../../../../../etc"
        path.write_text(json.dumps(listing, indent=4))
    changed(bundle, target, escape)


def _wrong_weights(bundle, target, rubric, forbidden):
    def negate(data, offset, size):
        for i in range(offset + 1, offset + size, 2):
            data[i] ^= 0x80  # the sign bit of every fp16 value
    changed(bundle, target, lambda folder: edit_fp16(weight_file(folder, "VAEDecoder"), negate))


CASES: tuple[Case, ...] = (
    Case("corrupt-protobuf", "programs", "TextEncoder's model.mlmodel is garbage", False, _corrupt_protobuf),
    Case("nan-weights", "programs", "NaN weights in the TextEncoder", False, _nan_weights),
    Case("package-escape", "programs", "a package manifest pointing its weights at /etc", False, _package_escape),
    Case("wrong-weights", "numerics", "the VAEDecoder's weights negated", False, _wrong_weights),
)
