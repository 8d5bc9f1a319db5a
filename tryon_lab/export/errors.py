"""Typed errors of the export package; all are ``TryOnInputError`` so the CLI exits with status 2."""

from tryon_lab.errors import TryOnInputError


class UnsupportedOpError(TryOnInputError):
    """An ML Program uses a MIL operation the Linux executor has no kernel for."""

    def __init__(self, op_type: str, op_name: str, program: str = "") -> None:
        where = f" in {program}" if program else ""
        super().__init__(f"MIL op {op_type!r} (op {op_name!r}){where} is not supported by the Linux executor; "
                         "run it with Core ML on macOS, or add a kernel to tryon_lab.export.mil.KERNELS")
        self.op_type = op_type
        self.op_name = op_name


class BundleError(TryOnInputError):
    """A bundle folder or its manifest is missing, malformed or inconsistent."""


class ExportInputError(TryOnInputError):
    """An export option or model cannot be exported as asked (bits, chunks, targets, inputs)."""
