"""The Fitting Room app: an ipywidgets / ipycanvas try-on widget for JupyterLab and Voila.

``FittingRoom(pipeline, catalog)`` composes three screens: Garments (the gallery, fine-tuned
LoRA garments, your own items), Personalize (your photo and the mask you paint) and Result (the
try-on as it forms, before/after, the restore brush, save). ``MaskCanvas`` is the painting
canvas on its own. Behind the ``TryOnBackend`` interface, ``PyTorchBackend`` runs a diffusers
pipeline and ``ExecuTorchBackend`` an exported phone bundle with the ExecuTorch runtime;
``FineTunedGarments`` switches DreamBooth adapters on the PyTorch model. ``tryon-lab app``
serves the app as a phone-shaped Voila page (``tryon_lab.app.page``).
"""

from tryon_lab.app.backends import GenerationCancelled, PyTorchBackend, TryOnBackend
from tryon_lab.app.canvas import MaskCanvas
from tryon_lab.app.executorch_backend import ExecuTorchBackend
from tryon_lab.app.finetuned import FineTunedGarments
from tryon_lab.app.fitting_room import FittingRoom
from tryon_lab.app.jobs import Job, JobRunner

__all__ = ["ExecuTorchBackend", "FineTunedGarments", "FittingRoom", "GenerationCancelled", "Job", "JobRunner",
           "MaskCanvas", "PyTorchBackend", "TryOnBackend"]
