"""The MIL executor's torch kernels, one module per family; importing this registers them all in ``KERNELS``."""

from tryon_lab.export.mil.kernels import elementwise, linalg, shapes
from tryon_lab.export.mil.kernels.registry import KERNELS, Inputs, Kernel, kernel

__all__ = ["KERNELS", "Inputs", "Kernel", "elementwise", "kernel", "linalg", "shapes"]
