"""Corpus cases the ``file_types`` check must fail: pickles and executables, named plainly or disguised."""

from __future__ import annotations

import pickle

from tryon_lab.grading.corpus.case import Case
from tryon_lab.grading.corpus.edits import changed


def _pickle(bundle, target, rubric, forbidden):
    import torch

    changed(bundle, target, lambda folder: torch.save({"weight": torch.zeros(4)}, folder / "coreml" / "model.pt"))


def _executable(bundle, target, rubric, forbidden):
    elf = b"\x7fELF\x02\x01\x01" + bytes(57)
    changed(bundle, target, lambda folder: (folder / "coreml" / "convert").write_bytes(elf))


def _disguised_pickle(bundle, target, rubric, forbidden):
    payload = pickle.dumps({"input.input_ids": [1, 2, 3]}, protocol=4)
    changed(bundle, target, lambda folder: (folder / "golden" / "TextEncoder.safetensors").write_bytes(payload))


CASES: tuple[Case, ...] = (
    Case("pickle", "file_types", "a PyTorch checkpoint (pickle) in coreml/", False, _pickle),
    Case("executable", "file_types", "an ELF executable in coreml/", False, _executable),
    Case("disguised-pickle", "file_types", "a pickle named TextEncoder.safetensors", False, _disguised_pickle),
)
