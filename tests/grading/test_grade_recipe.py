"""The default rubric holds the course's recipe, and only a grading against a reference bundle can give full marks."""

import json

import pytest

from tryon_lab.grading.corpus import make_corpus
from tryon_lab.grading.grader import grade_submission
from tryon_lab.grading.reference import load_reference
from tryon_lab.grading.report import NO_REFERENCE, NOT_VERIFIED
from tryon_lab.grading.rubric import load_rubric


@pytest.fixture(scope="module")
def reference(reference_bundle):
    return load_reference(reference_bundle)


def test_a_course_recipe_bundle_gets_full_marks_against_the_reference(reference_bundle, reference, tmp_path):
    report = grade_submission(reference_bundle, tmp_path / "out", reference=reference)
    assert report.status == "passed" and report.score == report.max_score == 100, report.table()
    assert report.warning is None and NO_REFERENCE not in (tmp_path / "out" / "report.html").read_text()
    unet = next(row for row in report.check("bits").rows if row["component"] == "Unet")
    assert unet["average bits, tensors over 2048 elements"] == 6.0 and unet["average bits"] > 8  # fp16 norms, biases


def test_an_8_bit_unchunked_bundle_loses_the_bits_and_chunks_points(eight_bit_bundle, reference, tmp_path):
    rubric = load_rubric()
    report = grade_submission(eight_bit_bundle, tmp_path / "out", rubric, reference)
    assert report.failed_checks() == ["bits", "chunks"], report.table()
    assert report.score == 100 - rubric.points("bits") - rubric.points("chunks") and report.status == "failed"
    bits = "Unet averages 8.00 bits per weight over its tensors of more than 2048 elements; the rubric allows at most 6"
    chunks = "Unet is unchunked; the rubric wants 2 to 4 chunks"
    assert report.check("bits").reason == bits and report.check("chunks").reason == chunks
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {c["name"]: c["reason"] for c in written["checks"] if c["status"] == "failed"} == {"bits": bits,
                                                                                             "chunks": chunks}
    assert bits in report.table() and chunks in (tmp_path / "out" / "report.html").read_text()


def test_a_rubric_file_loosens_the_recipe(eight_bit_bundle, reference, tmp_path):
    loose = tmp_path / "loose.toml"
    loose.write_text("[bits]\nmax_average_bits = 8\n[chunks]\nmin_chunks = 1\n")
    report = grade_submission(eight_bit_bundle, tmp_path / "out", load_rubric(loose), reference)
    assert report.status == "passed" and report.score == 100, report.table()


def test_without_a_reference_self_comparisons_are_not_verified_and_earn_nothing(reference_bundle, tmp_path):
    rubric = load_rubric()
    report = grade_submission(reference_bundle, tmp_path / "out", rubric)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses.pop("numerics") == statuses.pop("tryon") == "unverified", report.table()
    assert set(statuses.values()) == {"passed"} and "the contract" in report.check("contract").reason
    assert report.status == "passed" and report.max_score == 100
    assert report.score == 100 - rubric.points("numerics") - rubric.points("tryon")
    assert "own golden outputs" in report.check("numerics").reason and report.check("numerics").rows
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert f"{NOT_VERIFIED}: numerics, tryon (30 points)" in written["warning"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index(written["warning"]) < page.index("<table>")
    assert report.table().splitlines()[1] == written["warning"]


def test_without_a_reference_a_disagreement_with_its_own_golden_data_still_fails(reference_bundle, tmp_path):
    rubric = load_rubric()
    [sample] = make_corpus(reference_bundle, tmp_path / "class", rubric, only=("wrong-weights",))
    report = grade_submission(sample.path, tmp_path / "out", rubric)
    assert report.check("numerics").status == "failed" and "misses the bar" in report.check("numerics").reason
    assert report.check("tryon").status == "unverified" and report.status == "failed"


@pytest.mark.slow
def test_a_mixed_bit_bundle_with_2_and_3_bit_layers_passes_the_bits_check(mixed_bit_bundle, reference, tmp_path):
    from tryon_lab.export.manifest import read_manifest

    allocation = read_manifest(mixed_bit_bundle).components["Unet"].coreml.compression.allocation
    assert {2, 3} & set(allocation.values()), allocation  # the allocator used the widths the rubric must accept
    report = grade_submission(mixed_bit_bundle, tmp_path / "out", load_rubric(), reference)
    assert report.check("bits").status == "passed", report.check("bits").reason
