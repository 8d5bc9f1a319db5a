"""The course layer: what the notebooks use and nothing else does.

- ``runner``: runs the notebooks in order (``tryon-lab course``) and keeps each ``.ipynb`` in sync
  with its jupytext script.
- ``exercises``: the notebooks' exercises, one module per chapter.
- ``inpainting`` and ``dtc``: the computations and figures behind notebooks 01 and 03; ``fp16``:
  notebook 04's float16 range of a VAE decoder's GroupNorms.

It sits above every other layer (pipelines, training, export, app) and only the CLI imports it,
so nothing the package ships depends on teaching code.
"""
