"""Renderers of the synthetic world, with numpy and PIL only: ``people`` (figures and the
garment regions on them), ``items`` (product shapes, colour-and-pattern fill, painting),
``rooms`` (backgrounds and rooms), on top of the mask primitives in ``draw``.

Nothing here draws random numbers except from a ``numpy.random.Generator`` passed in.
"""
