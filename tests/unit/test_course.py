"""The course runner on small temporary notebooks (each run starts a real kernel)."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tryon_lab.course.runner import (
    CourseError,
    NotebookRun,
    discover_notebooks,
    format_timings,
    run_course,
    sync_pairs,
)
from tryon_lab.errors import ConfigError

REPORT_ENV = "import os\nprint(os.environ['TRYON_LAB_PROFILE'], os.environ['TRYON_LAB_BUILD_DIR'], os.getcwd())"
FAILING = "def explode():\n    return 1 / 0\n\nexplode()"


def write_notebooks(folder: Path, notebooks: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sources in notebooks.items():
        cells = [new_markdown_cell(f"# {name}")] + [new_code_cell(source) for source in sources]
        nbformat.write(new_notebook(cells=cells), folder / name)
    return folder


def outputs_text(cell) -> str:
    return "".join(output.get("text", "") for output in cell.outputs)


def test_discover_orders_by_number_and_ignores_other_files(tmp_path):
    write_notebooks(tmp_path, {"10_last.ipynb": [], "02_second.ipynb": [], "00_first.ipynb": []})
    (tmp_path / "scratch.ipynb").write_text("{}")
    (tmp_path / "03_notes.md").write_text("")
    assert [p.name for p in discover_notebooks(tmp_path)] == [
        "00_first.ipynb",
        "02_second.ipynb",
        "10_last.ipynb",
    ]


def test_passing_notebook_runs_in_its_own_build_dir(tmp_path, capsys):
    folder = write_notebooks(tmp_path / "nb", {"00_hello.ipynb": ["x = 21", REPORT_ENV, "print(x * 2)"]})
    out = tmp_path / "out"
    runs = run_course(profile="smoke", notebooks_dir=folder, out_dir=out)
    assert [run.name for run in runs] == ["00_hello"]
    assert sorted(runs[0].cell_seconds) == [1, 2, 3]
    executed = nbformat.read(out / "00_hello.ipynb", as_version=4)
    workdir = out / "smoke" / "00_hello"  # one folder per profile: checkpoints and caches never mix
    assert outputs_text(executed.cells[2]).split() == ["smoke", str(workdir), str(workdir)]
    assert outputs_text(executed.cells[3]) == "42\n"
    import json

    timings = json.loads((workdir.parent / "timings.json").read_text())  # a full run records its times
    assert timings["profile"] == "smoke" and list(timings["notebooks"]) == ["00_hello"]
    assert timings["notebooks"]["00_hello"]["slowest_cell"]["index"] in (1, 2, 3)
    run_course(profile="quick", notebooks_dir=folder, out_dir=out)
    executed = nbformat.read(out / "00_hello.ipynb", as_version=4)
    assert outputs_text(executed.cells[2]).split()[1] == str(out / "quick" / "00_hello")
    table = capsys.readouterr().out
    assert "00_hello" in table and "total" in table and "seconds" in table


def test_failure_names_cell_and_error_writes_partial_notebook_and_stops(tmp_path):
    folder = write_notebooks(
        tmp_path / "nb",
        {
            "00_fine.ipynb": ["print('ok')"],
            "01_broken.ipynb": ["print('before')", FAILING, "print('never')"],
            "02_after.ipynb": ["print('later')"],
        },
    )
    out = tmp_path / "out"
    with pytest.raises(CourseError) as info:
        run_course(profile="smoke", notebooks_dir=folder, out_dir=out)
    message = str(info.value)
    assert "01_broken.ipynb failed in cell index 2" in message
    assert "ZeroDivisionError: division by zero" in message
    assert "def explode():" in message and "return 1 / 0" in message
    assert "\x1b[" not in message
    assert [run.name for run in info.value.runs] == ["00_fine"]
    partial = nbformat.read(out / "01_broken.ipynb", as_version=4)
    assert outputs_text(partial.cells[1]) == "before\n"
    assert partial.cells[2].outputs[0].output_type == "error"
    assert partial.cells[3].outputs == []
    assert not (out / "02_after.ipynb").exists()


def test_cell_timeout_is_reported(tmp_path):
    folder = write_notebooks(tmp_path / "nb", {"00_slow.ipynb": ["import time\ntime.sleep(30)"]})
    with pytest.raises(CourseError, match="00_slow.ipynb failed in cell index 1: CellTimeoutError"):
        run_course(profile="smoke", notebooks_dir=folder, out_dir=tmp_path / "out", timeout_per_cell=2)


def test_only_runs_the_named_notebooks(tmp_path):
    folder = write_notebooks(tmp_path / "nb", {"00_a.ipynb": ["1 / 0"], "02_b.ipynb": ["print('b')"]})
    runs = run_course(profile="smoke", only=["2"], notebooks_dir=folder, out_dir=tmp_path / "out")
    assert [run.name for run in runs] == ["02_b"]
    with pytest.raises(ConfigError, match="no notebook numbered 07; available: 00, 02"):
        run_course(profile="smoke", only=["07"], notebooks_dir=folder, out_dir=tmp_path / "out")


def test_timings_table_lists_each_notebook_and_the_total():
    runs = [
        NotebookRun("00_a", Path("00_a.ipynb"), Path("out/00_a.ipynb"), 3.24, {1: 0.5, 3: 2.5}),
        NotebookRun("01_b", Path("01_b.ipynb"), Path("out/01_b.ipynb"), 10.0, {1: 9.0}),
    ]
    lines = format_timings(runs).splitlines()
    assert lines[0].split() == ["notebook", "cells", "seconds", "slowest", "cell"]
    assert lines[2].split() == ["00_a", "2", "3.2", "#3", "(2.5", "s)"]
    assert lines[-1].split() == ["total", "3", "13.2"]


SCRIPT = """# %% [markdown]
# # Title

# %%
x = 1
"""


def test_sync_pairs_writes_notebooks_from_scripts_and_check_finds_drift(tmp_path):
    (tmp_path / "00_intro.py").write_text(SCRIPT)
    assert sync_pairs(tmp_path) == [tmp_path / "00_intro.ipynb"]
    notebook_bytes = (tmp_path / "00_intro.ipynb").read_bytes()
    assert sync_pairs(tmp_path, check=True) == []

    (tmp_path / "00_intro.py").write_text(SCRIPT + "\n# %%\ny = 2\n")
    with pytest.raises(CourseError, match="00_intro.ipynb"):
        sync_pairs(tmp_path, check=True)
    sync_pairs(tmp_path)
    (tmp_path / "00_intro.py").write_text(SCRIPT)
    sync_pairs(tmp_path)
    assert (tmp_path / "00_intro.ipynb").read_bytes() == notebook_bytes, "cell ids must be stable"


def test_sync_pairs_gives_a_lone_notebook_a_script(tmp_path):
    write_notebooks(tmp_path, {"01_lone.ipynb": ["z = 3"]})
    with pytest.raises(CourseError, match="01_lone.py"):
        sync_pairs(tmp_path, check=True)
    sync_pairs(tmp_path)
    assert "z = 3" in (tmp_path / "01_lone.py").read_text()
    assert sync_pairs(tmp_path, check=True) == []
