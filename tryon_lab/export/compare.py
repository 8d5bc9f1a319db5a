"""How close an exported output is to its PyTorch reference: PSNR, max abs and relative error.

PSNR follows Apple's conversion check (ml-stable-diffusion): the peak is the reference's largest
magnitude and the noise is the RMS difference, so it is defined for any tensor, not only images;
35 dB is Apple's bar for an unpalettized conversion.
"""

from __future__ import annotations

import math

import numpy as np

from tryon_lab.export.errors import BundleError

CONVERSION_MIN_PSNR = 35.0


def _pair(output, reference) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(output, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise BundleError(f"cannot compare shapes {a.shape} and {b.shape}")
    return a, b


def signal_psnr(output, reference) -> float:
    """PSNR in dB of ``output`` against ``reference`` (peak = max |reference|); inf if equal, -inf if not finite."""
    a, b = _pair(output, reference)
    if not np.isfinite(a).all():
        return -math.inf
    rms = math.sqrt(float(np.mean((a - b) ** 2)))
    if rms == 0.0:
        return math.inf
    return 20.0 * math.log10((float(np.abs(b).max()) + 1e-5) / (rms + 1e-10))


def max_abs_error(output, reference) -> float:
    """Largest elementwise |output - reference| (inf if ``output`` is not finite)."""
    a, b = _pair(output, reference)
    return float(np.abs(a - b).max()) if np.isfinite(a).all() else math.inf


def relative_error(output, reference) -> float:
    """max |output - reference| / max |reference|: the error relative to the reference's scale."""
    a, b = _pair(output, reference)
    return max_abs_error(a, b) / max(float(np.abs(b).max()), 1e-12)
