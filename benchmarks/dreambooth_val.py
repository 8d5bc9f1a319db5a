"""``python -m benchmarks dreambooth-val``: the DreamBooth protocol on val garments and val people,
where the recipe is tuned (see benchmarks/dreambooth.py); test stays for reporting.

``python -m benchmarks.dreambooth_val --base PIPELINE [--set FIELD=VALUE ...] [--out FILE]`` runs it on
a candidate base pipeline that is not shipped (whether a new base lets fine-tuning capture a garment,
before it ships), optionally with recipe fields changed (``DreamBoothSettings``; values in TOML:
``--set learning_rate=2e-4 --set steps=300``) and the identifier's class words (``--class-words
caption``: "a sks red striped tee" rather than "a sks tee"): a Markdown table headed by the commit, the
candidate folder's hash and the changes, RESULTS.md untouched.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

from benchmarks.dreambooth import CLASS_WORDS, MODELS
from benchmarks.dreambooth import run as run_on

__all__ = ["MODELS", "run", "main", "recipe_overrides"]


def run() -> list[tuple[str, object, str]]:
    """The dreambooth benchmark's rows on the val split."""
    return run_on(split="val")


def recipe_overrides(pairs: list[str]) -> dict[str, object]:
    """``{field: value}`` from ``FIELD=VALUE`` strings (values read as TOML); ``ConfigError`` naming a
    pair that is malformed or a field ``DreamBoothSettings`` does not have."""
    from tryon_lab.errors import ConfigError
    from tryon_lab.training.dreambooth import DreamBoothSettings

    known = {f.name for f in fields(DreamBoothSettings)}
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name.strip() not in known:
            raise ConfigError(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(known))}")
        try:
            overrides[name.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            raise ConfigError(f"--set {pair!r}: {value!r} is not a TOML value (a number, true/false, \"text\")") from None
    return overrides


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the val protocol on ``--base``, print (and write) the table; return the exit status."""
    from benchmarks.provenance import HASH_CHARS, RECORDS, git_commit
    from tryon_lab.errors import ConfigError
    from tryon_lab.paths import sha256_folder, write_text_atomically
    from tryon_lab.tables import markdown_table

    parser = argparse.ArgumentParser(description="The DreamBooth protocol on val, with a candidate base pipeline.")
    parser.add_argument("--base", type=Path, required=True, help="the candidate base pipeline folder")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a recipe field of the profile's [dreambooth] (repeatable; TOML values)")
    parser.add_argument("--class-words", choices=CLASS_WORDS,
                        help="what follows the identifier: the category (a sks tee) or the whole caption phrase "
                             "(a sks red striped tee); default: the profile's class_words")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    try:
        overrides = recipe_overrides(args.set)
        if not (args.base / "model_index.json").is_file():
            raise ConfigError(f"{args.base} is not a pipeline folder (no model_index.json)")
        rows = run_on(split="val", overrides=overrides, base_dir=args.base, class_words=args.class_words)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    digest = sha256_folder(args.base, skip=RECORDS)[:HASH_CHARS]
    changes = {**overrides, **({"class_words": args.class_words} if args.class_words else {})}
    changed = ", ".join(f"{name} = {value}" for name, value in changes.items()) or "none"
    text = (f"DreamBooth protocol on val; base `{args.base}` (folder sha256 {digest}), commit {git_commit()}; "
            f"recipe changes: {changed}.\n\n" + markdown_table(rows, ("metric", "value", "note")))
    print(text, end="")
    if args.out:
        write_text_atomically(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
