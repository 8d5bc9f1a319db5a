"""Every course notebook runs in the smoke profile, is stored without outputs, and matches its
jupytext ``py:percent`` script."""

from pathlib import Path

import nbformat
import pytest

from tryon_lab.course.runner import discover_notebooks, run_course, sync_pairs

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = discover_notebooks(NOTEBOOKS_DIR)


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_in_the_smoke_profile(notebook, tmp_path):
    runs = run_course(profile="smoke", only=[notebook.name[:2]], notebooks_dir=NOTEBOOKS_DIR, out_dir=tmp_path)
    assert [run.name for run in runs] == [notebook.stem]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_without_outputs(notebook):
    code_cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    with_outputs = [i for i, c in enumerate(code_cells) if c.outputs or c.execution_count is not None]
    assert not with_outputs, f"{notebook.name}: code cells {with_outputs} carry outputs; clear them"


def test_notebooks_match_their_scripts():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOKS_DIR}"
    sync_pairs(NOTEBOOKS_DIR, check=True)
