"""MODEL_CARD.md for a shipped checkpoint: what it is, how it was trained, how well it does."""

from __future__ import annotations

from pathlib import Path


def _table(rows: dict[str, object]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return "\n".join(lines)


def write_model_card(
    out_dir: str | Path,
    title: str,
    summary: str,
    record: dict,
    metrics: dict[str, object],
    recipe: dict[str, object],
    reproduce: list[str],
    images: dict[str, str] | None = None,
) -> Path:
    """Write ``out_dir/MODEL_CARD.md``; returns its path.

    ``record``: the run record (command, versions, machine, steps, wall time); ``metrics``: named
    measured values with units in the names; ``recipe``: the training settings; ``reproduce``: the
    shell commands that rebuild this checkpoint; ``images``: caption -> relative PNG path.
    """
    parts = [f"# {title}", "", summary, "", "## Metrics (measured, not configured)", "", _table(metrics), "",
             "## Recipe", "", _table(recipe), "", "## Run", "", _table(record), "",
             "## Reproduce", "", "```bash", *reproduce, "```", ""]
    logs = sorted((Path(out_dir) / "logs").glob("*.csv"))
    if logs:
        parts += ["## Logs", "", "Loss per step, as logged during training:", ""]
        parts += [f"- [{p.name}](logs/{p.name})" for p in logs] + [""]
    for caption, path in (images or {}).items():
        parts += [f"### {caption}", "", f"![{caption}]({path})", ""]
    path = Path(out_dir) / "MODEL_CARD.md"
    path.write_text("\n".join(parts))
    return path
