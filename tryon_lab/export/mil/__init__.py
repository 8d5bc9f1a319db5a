"""Execute an ML Program's MIL operations on the CPU, so exports can be checked without a Mac.

Core ML predicts only on Apple platforms. ``MILExecutor`` loads a package's program with
coremltools, materializes every weight once (palettized ``constexpr_*`` weights are decompressed
here and cached; fp16 weights stay fp16 and are widened, exactly, as an operation reads them), then
runs the operations in program order with a torch kernel each. Where the program computes in fp16
every fp16 result is rounded to fp16 (overflow included), so the executor shows what fp16 does to
the numbers; it cannot show Neural Engine accumulation details.
A run holds only the values still to be read: each intermediate is dropped after the last operation
that reads it, so an SD-1.5-size U-Net's activations fit beside its weights.
An operation without a kernel raises ``UnsupportedOpError`` naming it when the program is loaded.
``load_runner`` gives Core ML itself on macOS and this executor elsewhere, behind one API.
"""

from tryon_lab.export.mil.executor import MILExecutor
from tryon_lab.export.mil.kernels import KERNELS, kernel
from tryon_lab.export.mil.program import as_mlmodel, drop_program, load_program
from tryon_lab.export.mil.runner import CoreMLRunner, load_runner
from tryon_lab.export.mil.weights import decompress, lut_to_dense

__all__ = ["KERNELS", "CoreMLRunner", "MILExecutor", "as_mlmodel", "decompress", "drop_program", "kernel",
           "load_program", "load_runner", "lut_to_dense"]
