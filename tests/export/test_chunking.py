"""Chunking a palettized U-Net: balance, Apple's chaining rule, and equality with the whole program."""

import pytest

from tryon_lab.export.chunking import check_chunks, chunk_balance, chunk_program
from tryon_lab.export.errors import ExportInputError
from tryon_lab.export.palettize import weight_report


@pytest.mark.parametrize("n_chunks", [2, 3])
def test_chained_chunks_reproduce_the_unchunked_program(unet6, golden, n_chunks):
    chunks = chunk_program(unet6, n_chunks)
    assert len(chunks) == n_chunks
    assert check_chunks(unet6, chunks, golden.components["Unet"][0]) == 0.0
    assert chunks[-1].outputs == ("noise_pred",)
    for chunk in chunks:  # palettize first, chunk after: every chunk keeps its 6-bit weights
        assert 6 in weight_report(chunk.model).histogram


def test_later_chunks_see_only_the_previous_outputs_and_the_model_inputs(unet6):
    chunks = chunk_program(unet6, 3)
    model_inputs = {"sample", "timestep", "encoder_hidden_states"}
    for before, chunk in zip(chunks, chunks[1:]):
        assert set(chunk.inputs) <= set(before.outputs) | model_inputs
        assert all(name.endswith(("__b1", "__b2")) for name in before.outputs)


def test_chunks_are_balanced_by_weight_bytes(unet6):
    chunks = chunk_program(unet6, 2)
    total = weight_report(unet6).bytes
    assert sum(c.weight_bytes for c in chunks) == pytest.approx(total, rel=0.05)
    assert chunk_balance(chunks) <= 0.2  # tiny layers are coarse; the mini model's bar is 0.1


def test_bad_chunk_counts_are_refused(unet6):
    with pytest.raises(ExportInputError):
        chunk_program(unet6, 0)
    with pytest.raises(ExportInputError, match="too few"):
        chunk_program(unet6, 10_000)


@pytest.mark.parametrize("palettized", [False, True])
def test_two_chunks_agree_with_coremltools_bisect_model(conversions, unet6, tmp_path, palettized):
    """Where two chunks serve, coremltools' own ``bisect_model`` splits the weights exactly as we
    do; our cut, among the equally balanced ones, passes no more tensors across."""
    import coremltools as ct
    from coremltools.models.utils import bisect_model

    model = unet6 if palettized else conversions["Unet"].model
    ours = chunk_program(model, 2)
    bisect_model(model, str(tmp_path), check_output_correctness=False)  # prediction does not run on Linux
    theirs = [ct.models.MLModel(str(path), skip_model_load=True) for path in sorted(tmp_path.glob("chunk*.mlpackage"))]
    assert len(theirs) == 2
    assert [c.weight_bytes for c in ours] == [weight_report(m).bytes for m in theirs]
    their_crossing = list(theirs[1].get_spec().description.input)
    assert len(ours[1].inputs) <= len(their_crossing)
