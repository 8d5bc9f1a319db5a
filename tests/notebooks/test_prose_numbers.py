"""No hand-typed measurements: a number in a notebook's Markdown prose is a constant of the course
(a size, a bar, a setting: the allow-list below, each with its reason) or it is not there at all;
measured numbers are computed by a code cell or read at run time from the recorded results
(``tryon_lab.course.runner.recorded``, ``benchmarks/results.json``), so prose and measurement cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tryon_lab.course.runner import discover_notebooks

NOTEBOOKS = discover_notebooks(Path(__file__).resolve().parents[2] / "notebooks")

# Phrases whose numbers are constants, not measurements (the reason follows each).
ALLOWED = [
    r"\b128(x128|-pixel| px)",                    # the course's model resolution (a config value)
    r"\b512-pixel",                               # SD-1.5's resolution (the paper's photos)
    r"49,152 numbers down to 1,024, 48 times",    # 3x128x128 -> 4x16x16: arithmetic on the resolution
    r"\b27 dB",                                   # the shipped VAE's bar (a target, not a result)
    r"\b35 dB",                                   # Apple's conversion bar (CONVERSION_MIN_PSNR)
    r"\b30 dB",                                   # the palettized U-Net's bar
    r"\b8, 6 and 4 bits|\b6 bits|\b6-bit",        # palette widths, the course recipe
    r"\{2, 3, 4, 6, 8\}",                         # the mixed-bit widths
    r"\b1 GiB",                                   # the Neural Engine's per-model limit
    r"\b200 ms",                                  # the app's latency bar
    r"\b1\.2 times",                              # DTC's cost bar
    r"\b0\.1\b",                                  # DTC's loss weight and null-reference probability (recipe constants)
    r"\b10\^3 to 10\^-2",                         # SNR range of Stable Diffusion's schedule (a property of the betas)
    r"\(70%\)|\(15%\)",                           # the world's split fractions (data.splits constants)
    r"\b65 tokens|8x8 cells|4 x 16 x 16|SD-1\.5 has 13 of them; the mini model has 7",  # architecture
    r"\b2-core",                                  # the machine the course targets
    r"is 44\b",                                   # uint8 wrap-around arithmetic (200 + 100 mod 256)
    r"2 levels of 255",                           # the app tests' bar
    r"\b8\.6 M weights|\b190 k left",            # the exercise's example histogram (a made-up input)
    r"\bt = \d+(?: … \d+)?",                      # timesteps: points on the schedule, not results
    r"magnified 4 times|×100\b",                  # a figure's gain, a score's scale
    r"\b65504\b|\b256 away",                      # fp16's largest value and its square root
    r"\biOS 18\b|\b16 bits",                      # a deployment target; fp16's width
    r"logged every 10 steps",                      # the training loop's logging interval
    r"within 25%",                                # the README table's tolerance
    r"\b95% (?:bootstrap )?interval",              # every interval's level (metrics.stats.LEVEL)
]
UNITS = r"(?:dB|s|sec|seconds?|min|minutes?|hours?|ms|[kKMG]i?B|kilobytes|megabytes|%|times|×|x)"
SUSPECT = re.compile(rf"(?<![\w.\-/^])(?:\d+\.\d+|\d[\d,]*(?=\s?{UNITS}\b)|[1-9]\d{{1,}}(?:,\d{{3}})*)(?![\w])")
VAGUE = re.compile(r"\b(?:about|under|around|roughly|a few|several)\s+(?:a\s+|an\s+|\d+\s+)?(?:seconds?|minutes?|hours?)\b"
                   r"|\bhundreds? (?:of )?kilobytes\b|\ba few (?:hundred )?(?:kilo|mega)bytes\b", re.IGNORECASE)


def _prose(text: str) -> str:
    """The Markdown without code spans, math, headings, list numbers, and references to notebooks,
    sections, exercises, tables and years."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", text, flags=re.S)
    text = re.sub(r"^#+ .*$", " ", text, flags=re.M)
    text = re.sub(r"^\s*\d+\.\s", " ", text, flags=re.M)
    text = re.sub(r"\b(?:notebooks?|chapters?|sections?|exercises?|Tables?|steps?)\s+\d+(?:\.\d+)?(?:\s+and\s+\d+)?",
                  " ", text, flags=re.I)
    text = re.sub(r"\*\*0\d\b|\b0\d\b", " ", text)  # notebook numbers
    text = re.sub(r"\b(?:19|20)\d\d\)|et al\.,? (?:19|20)\d\d", " ", text)  # citations
    for allowed in ALLOWED:
        text = re.sub(allowed, " ", text)
    return text


def hand_typed(notebook: Path) -> list[str]:
    """Every number (and vague duration or size) in ``notebook``'s Markdown cells that looks measured."""
    found = []
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "markdown":
            continue
        for line in _prose(cell.source).splitlines():
            hits = SUSPECT.findall(line) + VAGUE.findall(line)
            found += [f"cell {index}: {hit!r} in: {line.strip()[:120]}" for hit in hits]
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_prose_holds_no_hand_typed_measurement(notebook):
    found = hand_typed(notebook)
    assert not found, (f"{notebook.name}: numbers in prose that are neither computed nor read from recorded "
                       "results (compute them in a cell, read them with tryon_lab.course.runner.recorded, or, for a "
                       "constant, add the phrase to ALLOWED with its reason):\n  " + "\n  ".join(found))


@pytest.mark.parametrize("text", ["a LoRA garment costs a few hundred kilobytes", "it takes about 4 minutes",
                                  "the U-Net scores 46.6 dB", "training ran at 0.806 steps/s",
                                  "FiLM lowers FID by 14% here", "it took 262 s", "a 2.17 MB adapter"])
def test_the_scan_finds_typical_hand_typed_numbers(text, tmp_path):
    from nbformat.v4 import new_markdown_cell, new_notebook

    path = tmp_path / "00_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(text)]), path)
    assert hand_typed(path)


@pytest.mark.parametrize("text", ["the model works at 128x128", "Apple's bar is 35 dB", "see notebook 02, section 3",
                                  "1. first step", "palettize at 6 bits", "(Karras et al., 2022)", "`x = 12.5`"])
def test_the_scan_lets_constants_and_references_pass(text, tmp_path):
    from nbformat.v4 import new_markdown_cell, new_notebook

    path = tmp_path / "00_x.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(text)]), path)
    assert not hand_typed(path)
