"""``python -m benchmarks.dreambooth_val --base``: a candidate base is checked before any fine-tuning."""

from benchmarks.dreambooth_val import main


def test_a_folder_that_is_not_a_pipeline_is_refused_before_work(tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["--base", str(tmp_path), "--out", str(out)]) == 2
    assert "not a pipeline folder" in capsys.readouterr().err
    assert not out.exists()
