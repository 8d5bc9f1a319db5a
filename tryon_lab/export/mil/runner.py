"""One ``predict`` API over a ``.mlpackage``: Core ML itself on macOS, the ``MILExecutor`` elsewhere."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tryon_lab.export.mil.executor import MILExecutor


class CoreMLRunner:
    """Core ML itself (macOS only), behind the same ``predict`` API as ``MILExecutor``."""

    def __init__(self, path: str | Path) -> None:
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_AND_NE)
        self.input_names = [i.name for i in self.model.get_spec().description.input]

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return Core ML's outputs for ``inputs``."""
        return {k: np.asarray(v) for k, v in self.model.predict(dict(inputs)).items()}


def load_runner(path: str | Path, backend: str = "auto"):
    """Return a runner for a ``.mlpackage``: Core ML on macOS (``backend="auto"`` or ``"coreml"``),
    else the ``MILExecutor`` (``"mil"``, or ``"auto"`` anywhere but macOS)."""
    if backend == "coreml" or (backend == "auto" and platform.system() == "Darwin"):
        return CoreMLRunner(path)
    return MILExecutor(path)
