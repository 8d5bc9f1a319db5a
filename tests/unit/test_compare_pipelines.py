"""scripts/compare_pipelines.py: pipelines scored on the same samples, each difference paired, and
bad input refused before any sampling."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tryon_lab.paths import shipped_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_pipelines.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_pipelines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_pipeline_against_itself_differs_by_exactly_zero_on_every_metric(script, tiny_pipeline_dir, tmp_path):
    out = tmp_path / "table.md"
    code = script.main([str(tiny_pipeline_dir), str(tiny_pipeline_dir), "--samples", "4", "--steps", "1",
                        "--judge", str(shipped_model("world-encoder")), "--out", str(out)])
    assert code == 0
    lines = out.read_text().splitlines()
    differences = [line for line in lines if " minus " in line]
    assert len(differences) == len(script.METRICS) + 1  # every metric and KID
    assert sum("0 [0, 0]" in line for line in differences) >= len(script.METRICS)  # at most leftover cannot say
    for line in differences:
        value = line.split("|")[2].strip()
        assert (value.startswith("0 [0, 0]") and "not distinguishable" in line) or value.startswith("n/a"), line
    assert sum(line.startswith(f"| {tiny_pipeline_dir} #1: ") for line in lines) == len(script.METRICS) + 1


def test_pipelines_of_different_resolutions_or_a_non_pipeline_are_refused(script, tiny_pipeline_dir, tmp_path, capsys):
    assert script.main([str(tiny_pipeline_dir), str(shipped_model("mini-sd-inpaint")), "--samples", "2"]) == 2
    assert "share one resolution" in capsys.readouterr().err
    assert script.main([str(tiny_pipeline_dir), str(tmp_path)]) == 2
    assert "not a pipeline folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(tiny_pipeline_dir)])
