"""Typed errors that every public entry point raises for bad input.

All input problems derive from ``TryOnInputError`` so callers (the CLI, the app, the grader)
can catch one family and show its message, which always names the offending input.
"""


class TryOnInputError(ValueError):
    """Base class: an input (file, image, mask, argument) cannot be used as given."""


class ImageFileError(TryOnInputError):
    """The file is missing, empty, truncated, not an image, or otherwise unreadable."""


class ImageTooLargeError(TryOnInputError):
    """The image claims more pixels than the configured limit (decompression-bomb guard)."""


class ImageTooSmallError(TryOnInputError):
    """The image is smaller than the minimum side length a model can use."""


class MaskError(TryOnInputError):
    """A mask is unusable: wrong size, empty, or covering the whole image where that is not allowed."""


class ConfigError(TryOnInputError):
    """A configuration, profile or model folder is unknown or inconsistent."""


class SplitError(ConfigError):
    """Training data was asked for a val or test id (item, person, room, or the split itself):
    only evaluation may read those."""


class WorldError(TryOnInputError):
    """The synthetic world cannot render what was asked: a negative seed, too small a resolution, an
    unknown kind, or an item of the wrong kind for the scene."""
