"""The named checks of a submitted bundle, in the order they run: ``CHECKS``.

Each check is a ``Check`` (``base.check`` makes one of a function ``(Context) -> Outcome``);
``needs`` names the checks that must have passed first (otherwise it is *blocked*). Nothing from a
submission is imported, unpickled or executed: files are read as data (JSON, safetensors, protobuf
and weight blobs through ``grading.packages``), and programs run only in the MIL executor, on tensors.
Numerical agreement and the try-on reuse ``tryon_lab.export.verify``'s runners and comparisons, fed
with the reference bundle's golden data.
"""

from tryon_lab.grading.checks.base import Blocked, Check, Context, Outcome
from tryon_lab.grading.checks.bits import check_bits, graded_average_bits
from tryon_lab.grading.checks.chunks import check_chunks
from tryon_lab.grading.checks.contract import check_contract
from tryon_lab.grading.checks.files import check_file_types, check_structure, check_unpack
from tryon_lab.grading.checks.integrity import check_manifest
from tryon_lab.grading.checks.numerics import check_numerics
from tryon_lab.grading.checks.programs import check_programs
from tryon_lab.grading.checks.tryon import check_tryon

CHECKS: tuple[Check, ...] = (check_unpack, check_file_types, check_structure, check_manifest, check_programs,
                             check_contract, check_bits, check_chunks, check_numerics, check_tryon)

__all__ = ["CHECKS", "Blocked", "Check", "Context", "Outcome", "graded_average_bits"]
