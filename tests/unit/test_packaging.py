"""environment.yml must give conda users exactly the pins that pyproject.toml gives pip users."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _pip_section(env: dict) -> list[str]:
    sections = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    assert len(sections) == 1, "environment.yml needs exactly one pip section"
    return sections[0]


def _normalise(requirement: str) -> str:
    return requirement.replace(" ", "").lower()


def test_environment_pins_match_pyproject():
    project = _pyproject()
    expected = project["dependencies"] + project["optional-dependencies"]["dev"]
    pins = [entry for entry in _pip_section(_environment()) if not entry.startswith("-")]
    assert sorted(map(_normalise, pins)) == sorted(map(_normalise, expected))


def test_environment_installs_torch_first_and_the_package_last():
    pip = _pip_section(_environment())
    assert pip[0].startswith("torch==")
    assert pip[-1] == "-e ."


def test_environment_python_matches_requires_python():
    env = _environment()
    pythons = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    assert pythons == ["python=3.11"]
    assert ">=3.11,<3.12" in _pyproject()["requires-python"].replace(" ", "")
    assert "pip" in env["dependencies"]
