"""Export fixtures: the tiny random pipeline converted once per session (conversion is the slow part)."""

from __future__ import annotations

import pytest

GOLDEN_STEPS = 2


@pytest.fixture(scope="session")
def pipe(tiny_base):
    """The tiny random pipeline on the CPU."""
    return tiny_base


@pytest.fixture(scope="session")
def components(pipe):
    """``{name: Component}`` of the tiny pipeline."""
    from tryon_lab.export.contract import pipeline_components

    return pipeline_components(pipe)


@pytest.fixture(scope="session")
def golden(pipe, components):
    """Golden data of a 2-step try-on."""
    from tryon_lab.export.golden import make_golden

    return make_golden(pipe, components, steps=GOLDEN_STEPS)


@pytest.fixture(scope="session")
def conversions(components, golden):
    """Every component converted once, with its measured precision."""
    from tryon_lab.export.coreml import convert_measured

    return {name: convert_measured(c, *golden.components[name]) for name, c in components.items()}


@pytest.fixture(scope="session")
def unet6(conversions):
    """The tiny U-Net palettized at 6 bits, one palette per tensor."""
    from tryon_lab.export.palettize import PaletteSettings, palettize

    return palettize(conversions["Unet"].model, 6, PaletteSettings("per_tensor"))


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, pipe, components, golden, conversions):
    """A 6-bit, 2-chunk Core ML bundle from the session's conversions (ExecuTorch lowering takes
    minutes on 2 cores; test_executorch and the export benchmark's test cover it)."""
    from tryon_lab.export.bundle import ExportOptions, compress_component, write_bundle

    settings = ExportOptions(bits="6", chunks=2, steps=GOLDEN_STEPS, targets=("coreml",))
    coreml = {name: compress_component(name, conv, golden, settings) for name, conv in conversions.items()}
    return write_bundle(tmp_path_factory.mktemp("bundles") / "tiny-bundle", pipe, components, golden, coreml, settings,
                        source="tiny", log=lambda _: None)
