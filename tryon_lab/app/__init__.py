"""The Fitting Room app: an ipywidgets / ipycanvas try-on widget for JupyterLab and Voila.

``FittingRoom(pipeline, catalog)`` composes three screens: Garments (the gallery, your own
items), Personalize (your photo and the mask you paint) and Result (the try-on as it forms,
before/after, the restore brush, save). ``MaskCanvas`` is the painting canvas on its own;
``PyTorchBackend`` runs a diffusers pipeline behind the ``TryOnBackend`` interface;
``tryon-lab app`` serves the app as a phone-shaped Voila page (``tryon_lab.app.page``).
"""

from tryon_lab.app.backends import GenerationCancelled, PyTorchBackend, TryOnBackend
from tryon_lab.app.canvas import MaskCanvas
from tryon_lab.app.fitting_room import FittingRoom
from tryon_lab.app.runner import Job, Runner

__all__ = ["FittingRoom", "GenerationCancelled", "Job", "MaskCanvas", "PyTorchBackend", "Runner", "TryOnBackend"]
