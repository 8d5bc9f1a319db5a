"""What a RESULTS.md section measured, and which sections measured models that have changed since.

Every section written by ``python -m benchmarks NAME`` carries a record line: the git commit (short
hash, ``+dirty`` with uncommitted changes to tracked files) and the folder SHA-256 (first 16 hex,
``tryon_lab.paths.sha256_folder``, weights and configs: ``RECORDS`` left out) of each shipped model
its module declares in ``MODELS``.
``python -m benchmarks check`` compares those hashes with the shipped models now; ``STALE.toml``
names the sections known to be stale, and why, so that only a section going stale silently fails.
A change of code rather than of models (how try-ons are scored or pasted back) goes stale through
``STALE.toml`` too: an entry's ``measured_before`` commit makes its section stale until a run at or
after that commit rewrites it.

``results.json`` beside RESULTS.md is its machine-readable copy, written from RESULTS.md by the same
call that writes a section (``write_results_json``): notebooks read measured numbers from it at run
time (``tryon_lab.course.runner.recorded``) instead of typing them, so text and measurement cannot drift.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tryon_lab.errors import ConfigError
from tryon_lab.paths import REPO_ROOT, sha256_folder, shipped_model
from tryon_lab.training.dtc.curve import SHIPPED_CURVE, SHIPPED_FIGURE

ALLOW_LIST = Path(__file__).with_name("STALE.toml")
RESULTS_MD = Path(__file__).with_name("RESULTS.md")
RESULTS_JSON = Path(__file__).with_name("results.json")
HASH_CHARS = 16
_RECORD = re.compile(r"^Commit (\S+); shipped models(?: \(folder sha256, first 16 hex\))?: (.*)$", re.MULTILINE)
ABSENT = "absent"  # what a record says of a model that was not there (an optional one, e.g. a fast VAE)
_MODEL = re.compile(rf"`([^`]+)` ([0-9a-f]{{{HASH_CHARS}}}|{ABSENT})")
_SECTION = re.compile(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Stale:
    """A section of RESULTS.md whose numbers may not describe the shipped models any more."""

    section: str
    reason: str


def git_commit() -> str:
    """Short hash of HEAD, with ``+dirty`` when tracked files other than the results themselves
    (which every section run rewrites) have uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{path.relative_to(REPO_ROOT)}" for path in (RESULTS_MD, RESULTS_JSON)))
    return commit + ("+dirty" if changed else "")


# What a model folder records about itself and no computation reads: its card, training record, loss
# logs, sample grids and learning curve (copied in later by dtc-curve --into). Left out of the hash, so a
# record can be corrected or added without making every section measured on the model stale; weights and
# configs, which decide the numbers, are all hashed.
RECORDS = ("MODEL_CARD.md", "training.json", "logs", "samples.png", "ablation.md", SHIPPED_CURVE, SHIPPED_FIGURE)


def model_hashes(models: Sequence[str]) -> dict[str, str]:
    """{model: first ``HASH_CHARS`` hex of the folder SHA-256, ``RECORDS`` left out} for shipped
    models, ``ABSENT`` for one that is not there. A sub-folder with its own model card
    (``mini-sd-inpaint/lcm``) is a model of its own: left out of its parent's hash, so adding one does
    not make the parent's sections stale; a section that uses it, or would use it when present (the
    lcm sampler's fast VAE), names it."""
    hashes = {}
    for name in models:
        try:
            folder = shipped_model(name)
        except ConfigError:
            hashes[name] = ABSENT
            continue
        hashes[name] = sha256_folder(folder, skip=(*RECORDS, *nested_models(folder)))[:HASH_CHARS]
    return hashes


def nested_models(folder: Path) -> tuple[str, ...]:
    """Names of ``folder``'s sub-folders that hold a MODEL_CARD.md of their own."""
    return tuple(sorted(child.name for child in folder.iterdir() if (child / "MODEL_CARD.md").is_file()))


def record_line(models: Sequence[str]) -> str:
    """The line a section records: commit, and each measured model's folder hash (or "none")."""
    hashes = model_hashes(models)
    if not hashes:
        return f"Commit {git_commit()}; shipped models: none."
    listed = ", ".join(f"`{name}` {digest}" for name, digest in hashes.items())
    return f"Commit {git_commit()}; shipped models (folder sha256, first 16 hex): {listed}."


def sections(text: str) -> dict[str, str]:
    """{section name: its text} of a RESULTS.md."""
    return {m.group(1).strip(): m.group(2) for m in _SECTION.finditer(text)}


def recorded_models(section: str) -> dict[str, str] | None:
    """{model: hash} a section recorded (empty for "none"); None when it has no record line."""
    found = _RECORD.search(section)
    return None if found is None else dict(_MODEL.findall(found.group(2)))


def recorded_commit(section: str) -> str | None:
    """The commit a section's record line names (without ``+dirty``); None when it has no record."""
    found = _RECORD.search(section)
    return None if found is None else found.group(1).removesuffix("+dirty")


def descends(commit: str, ancestor: str) -> bool:
    """Whether ``commit`` is ``ancestor`` or comes after it in this repository's history (False when
    git cannot tell, e.g. an unknown commit)."""
    done = subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, commit], cwd=REPO_ROOT,
                          capture_output=True, check=False)
    return done.returncode == 0


def stale_sections(text: str, measured_before: dict[str, str] | None = None) -> list[Stale]:
    """Sections of a RESULTS.md text with no record, or whose recorded models' hashes differ from the
    shipped models' now (or whose models are gone), or (``measured_before``: {section: commit}) whose
    record predates the commit named for it."""
    stale = []
    for name, body in sections(text).items():
        recorded = recorded_models(body)
        if recorded is None:
            stale.append(Stale(name, "no record of the models it measured (written before records)"))
            continue
        since = (measured_before or {}).get(name)
        if since and not descends(recorded_commit(body), since):
            stale.append(Stale(name, f"measured at {recorded_commit(body)}, before {since}"))
            continue
        changed = []
        for model, digest in recorded.items():
            now = model_hashes([model])[model]
            if now != digest:
                changed.append(f"{model} {digest} -> {now}")
        if changed:
            stale.append(Stale(name, "models changed since: " + ", ".join(changed)))
    return stale


def _allow_table(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text())
        if not all(isinstance(entry["why"], str) for entry in table.values()):
            raise TypeError("`why` must be a string")
        return table
    except (tomllib.TOMLDecodeError, TypeError, KeyError) as error:
        raise ConfigError(f"{path}: every entry must be a [section] table with a `why` string ({error})") from error


def load_allow_list(path: Path = ALLOW_LIST) -> dict[str, str]:
    """{section: why it is known to be stale} from a TOML file of ``[section]`` tables with ``why``."""
    return {name: entry["why"] for name, entry in _allow_table(path).items()}


def load_measured_before(path: Path = ALLOW_LIST) -> dict[str, str]:
    """{section: commit} of the entries that name a ``measured_before`` commit (a code change)."""
    return {name: str(entry["measured_before"]) for name, entry in _allow_table(path).items()
            if "measured_before" in entry}


@dataclass(frozen=True)
class CheckResult:
    """``unlisted``: stale sections not in the allow-list (the failure); ``listed``: stale and allowed;
    ``fresh_but_listed``: allow-listed sections that are fresh now (to remove from the list)."""

    unlisted: list[Stale]
    listed: list[Stale]
    fresh_but_listed: list[str]

    @property
    def passed(self) -> bool:
        """True when no section went stale silently and the allow-list names no fresh section."""
        return not self.unlisted and not self.fresh_but_listed


def check(results: Path, allow_list: Path = ALLOW_LIST) -> CheckResult:
    """Compare ``results``' recorded model hashes with the shipped models, against ``allow_list``."""
    allowed = load_allow_list(allow_list)
    stale = stale_sections(results.read_text(), load_measured_before(allow_list))
    stale_names = {s.section for s in stale}
    return CheckResult([s for s in stale if s.section not in allowed],
                       [Stale(s.section, f"{s.reason}; why: {allowed[s.section]}") for s in stale if s.section in allowed],
                       sorted(name for name in allowed if name not in stale_names))


def refresh_command(section: str) -> str:
    """The command(s) that rewrite ``section``: a course run's section comes from running the course."""
    if section.startswith("course-"):
        profile = section.removeprefix("course-")
        return f"`tryon-lab course --profile {profile}`, then `python -m benchmarks record-course " \
               f"build/course/{profile}/timings.json`"
    return f"`python -m benchmarks {section}`"


def report(result: CheckResult, allow_list: Path = ALLOW_LIST) -> str:
    """What ``python -m benchmarks check`` prints."""
    lines = [f"STALE: {s.section}: {s.reason}; refresh with {refresh_command(s.section)}" for s in result.unlisted]
    lines += [f"known stale ({allow_list.name}): {s.section}: {s.reason}" for s in result.listed]
    lines += [f"listed in {allow_list.name} but fresh now: {name}; remove it from the list"
              for name in result.fresh_but_listed]
    lines.append("check passed" if result.passed else "check FAILED")
    return "\n".join(lines)


# --- the machine-readable copy of RESULTS.md ---------------------------------------------------------

_RUN = re.compile(r"^Run (.+?) on (.+?); took (\d+) s\.$", re.MULTILINE)
_ROW = re.compile(r"^\| (.*?) \| (.*?) \| (.*?) \|$", re.MULTILINE)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:e[-+]?\d+)?$")


def _value(text: str) -> int | float | str:
    """A table cell as a number when it is one (``1719332347``, ``0.3762``, ``5.57e-07``), else the text."""
    if not _NUMBER.match(text):
        return text
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def parse_section(body: str) -> dict:
    """One RESULTS.md section -> {"run": date, "machine", "seconds", "record": commit line or None,
    "rows": [{"metric", "value", "note"}]} (values that are numbers become numbers)."""
    run = _RUN.search(body)
    record = _RECORD.search(body)
    rows = [{"metric": m.group(1).strip(), "value": _value(m.group(2).strip()), "note": m.group(3).strip()}
            for m in _ROW.finditer(body) if m.group(1).strip() not in ("metric", "---")]
    return {"run": run.group(1) if run else None, "machine": run.group(2) if run else None,
            "seconds": int(run.group(3)) if run else None, "record": record.group(0) if record else None,
            "rows": rows}


def results_data(text: str) -> dict[str, dict]:
    """{section: ``parse_section``} of a RESULTS.md text: what ``results.json`` holds."""
    return {name: parse_section(body) for name, body in sections(text).items()}


def write_results_json(results: Path, path: Path | None = None) -> Path:
    """Write the machine-readable copy of ``results`` (default: ``results.json`` beside it); return its path."""
    path = path or results.with_name(RESULTS_JSON.name)
    data = {"source": results.name, "written_by": "python -m benchmarks NAME (benchmarks/provenance.py)",
            "sections": results_data(results.read_text())}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":  # python -m benchmarks.provenance: rewrite results.json from RESULTS.md
    print(write_results_json(RESULTS_MD))
