"""``python -m benchmarks dreambooth-val``: the DreamBooth protocol on val garments and val people,
where the recipe is tuned (see benchmarks/dreambooth.py); test stays for reporting.

``python -m benchmarks.dreambooth_val --base PIPELINE [--out FILE]`` runs it on a candidate base
pipeline that is not shipped (whether a new base lets fine-tuning capture a garment, before it
ships): a Markdown table headed by the commit and the candidate folder's hash, RESULTS.md untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.dreambooth import MODELS
from benchmarks.dreambooth import run as run_on

__all__ = ["MODELS", "run", "main"]


def run() -> list[tuple[str, object, str]]:
    """The dreambooth benchmark's rows on the val split."""
    return run_on(split="val")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the val protocol on ``--base``, print (and write) the table; return the exit status."""
    from benchmarks.provenance import HASH_CHARS, RECORDS, git_commit
    from tryon_lab.errors import ConfigError
    from tryon_lab.paths import sha256_folder

    parser = argparse.ArgumentParser(description="The DreamBooth protocol on val, with a candidate base pipeline.")
    parser.add_argument("--base", type=Path, required=True, help="the candidate base pipeline folder")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    if not (args.base / "model_index.json").is_file():
        print(f"error: {args.base} is not a pipeline folder (no model_index.json)", file=sys.stderr)
        return 2
    try:
        rows = run_on(split="val", base_dir=args.base)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    digest = sha256_folder(args.base, skip=RECORDS)[:HASH_CHARS]
    lines = [f"DreamBooth protocol on val; base `{args.base}` (folder sha256 {digest}), commit {git_commit()}.", "",
             "| metric | value | note |", "|---|---|---|"]
    text = "\n".join(lines + [f"| {metric} | {value} | {note} |" for metric, value, note in rows]) + "\n"
    print(text, end="")
    if args.out:
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(text)
        partial.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
