"""tryon_lab: on-device diffusion virtual try-on, as a course and a toolkit.

Subpackages: ``data`` (the synthetic world and image input), ``models`` (mini-SD components),
``pipelines`` (diffusers pipelines), ``training``, ``metrics``, ``export``, ``app``, ``grading``.
"""

from tryon_lab.errors import (
    ConfigError,
    ImageFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    MaskError,
    TryOnInputError,
)
from tryon_lab.profiles import Profile, current_profile

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ImageFileError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "MaskError",
    "Profile",
    "TryOnInputError",
    "current_profile",
    "__version__",
]
