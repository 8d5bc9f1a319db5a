"""Look inside Diffuse to Choose: which DTC a notebook shows, the collage hint, the model's parts,
the FiLM maps at every skip connection, try-ons beside a no-hint baseline, the ablation next to
the paper's tables, and what the hint costs per sampling step.

These are the computations behind notebook 03. They run the real ``DTCPipeline`` and the
recipe's own functions (``train_dtc``, ``dtc_method``, ``ablation_table``, ``measure_step_times``),
so what the notebook shows is what ``tryon-lab train-dtc`` and ``tryon-lab tryon`` do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from tryon_lab.data.masks import Box, largest_rectangle, make_collage, overlay
from tryon_lab.data.world import World, WorldSample
from tryon_lab.errors import ConfigError
from tryon_lab.models.dtc import HintConditioning, skip_channels
from tryon_lab.paths import REPO_ROOT, data_dir
from tryon_lab.pipelines.loading import SHIPPED_DTC
from tryon_lab.plotting import NotebookFigure, image_grid

MASKED_GRAY = 128  # masked pixels are 0 in [-1, 1]: what the VAE encodes for the masked image
TRYON_BAR = 1.2  # a DTC try-on may cost at most this many plain inpainting try-ons
SHORT_RUN_POINTS = 20  # loss curves with at most this many logged points get markers
RECOMPUTE = ":recompute"  # measure_step_times runs a pipeline named "...:recompute" with cache_hint=False
FILM_HEADERS = ["level", "gamma min", "gamma mean", "gamma max", "beta min", "beta mean", "beta max", "in/out of mask"]


# --- which DTC the notebook shows --------------------------------------------------------------


def load_dtc(spec: str, base, *, trained=None, fusion: str | None = "film"):
    """Return the DTCPipeline named by ``spec``, with its progress bar off.

    ``spec``: ``"shipped"`` (``data/models/dtc``), ``"trained"`` (the ``trained`` pipeline, e.g.
    the notebook's own run), ``"fresh"`` (``DTCPipeline.from_base(base, fusion)``: untrained hint
    path, FiLM the identity; ``fusion`` None is the no-hint baseline) or a DTC folder (parts or a
    full pipeline; relative paths are taken from the repository root). The model lands on
    ``base``'s device. Raises ``ConfigError`` when the model is not there.
    """
    from diffusers import DDIMScheduler

    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_dtc_pipeline
    from tryon_lab.quiet import library_bars_off

    device = str(base.device)
    if spec == "trained":
        if trained is None:
            raise ConfigError("no DTC was trained in this session: run the training section first")
        pipe = trained
    elif spec == "fresh":
        pipe = DTCPipeline.from_base(base, fusion, scheduler=DDIMScheduler.from_config(base.scheduler.config))
    else:
        folder = None if spec == "shipped" else _repo_path(spec)
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"no DTC model at {folder}; `tryon-lab train-dtc` writes one")
        with library_bars_off():
            pipe = load_dtc_pipeline(folder, device=device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def course_dtc(settings: Mapping[str, Any], base, trained=None) -> tuple[str, Any]:
    """The profile's DTC: ``settings["model"]``, or ``settings["fallback"]`` when that model is
    absent (e.g. ``"shipped"`` before ``data/models/dtc`` is trained). Returns (spec used, pipeline)."""
    try:
        return settings["model"], load_dtc(settings["model"], base, trained=trained)
    except ConfigError:
        return settings["fallback"], load_dtc(settings["fallback"], base, trained=trained)


def optional_baseline(spec: str, base) -> tuple[Any, str]:
    """The no-hint baseline named by ``spec`` (as ``load_dtc``; ``""`` for none), or None when it
    is absent. Returns (pipeline or None, a sentence saying which)."""
    if not spec:
        return None, "No baseline is configured for this profile."
    try:
        pipe = load_dtc(spec, base, fusion=None)
    except ConfigError as error:
        return None, f"No no-hint baseline here ({error})."
    if pipe.hint_encoder is not None:
        raise ConfigError(f"{spec!r} has a hint encoder; a baseline is a DTC model without one")
    what = "an untrained no-hint model (smoke run)" if spec == "fresh" else f"the recipe's no-hint baseline `{spec}`"
    return pipe, f"Beside it: {what}."


def dtc_note(spec: str, pipe) -> str:
    """A Markdown sentence saying which DTC the notebook shows and what its pictures mean."""
    shape = f"{pipe.resolution}x{pipe.resolution} images, fusion {_fusion(pipe)}"
    if spec == "shipped":
        return f"This run shows the shipped DTC (`data/models/dtc`): {shape}."
    if spec == "trained":
        return (f"**This run shows the model trained above** ({shape}): a few steps only, so expect results "
                "close to an untrained model's. The `quick` profile shows the shipped DTC once "
                "`tryon-lab train-dtc` has made it.")
    if spec == "fresh":
        return f"**This run shows an untrained DTC** ({shape}): FiLM is still the identity."
    return f"This run shows the DTC in `{spec}`: {shape}."


def dtc_record_folder(spec: str) -> Path | None:
    """The folder ``spec`` was loaded from when it holds a training record, else None."""
    if spec in ("trained", "fresh"):
        return None
    folder = data_dir() / "models" / SHIPPED_DTC if spec == "shipped" else _repo_path(spec)
    return folder if (folder / "training.json").is_file() else None


def _repo_path(spec: str) -> Path:
    path = Path(spec)
    return path if path.is_absolute() else REPO_ROOT / path


def _fusion(pipe) -> str:
    hint = pipe.hint_encoder
    if hint is None:
        return "none (no hint)"
    return hint.config.fusion + (f" ({hint.config.film_mode})" if hint.config.fusion == "film" else "")


# --- the collage hint --------------------------------------------------------------------------


def heldout_pairs(resolution: int, count: int, seed: int = 0) -> list[WorldSample]:
    """``count`` test-split try-all pairs of the world at ``resolution``, garments and products alternating."""
    world = World(seed=seed, resolution=resolution)
    return [world.sample(i, split="test", kind=("garment", "product")[i % 2]) for i in range(count)]


@dataclass
class HintParts:
    """The pieces of one DTC input: the ``scene``, its ``mask``, the mask's largest rectangle
    ``box`` (top, left, bottom, right), the ``masked`` image the U-Net sees, the ``reference``
    and the ``hint`` (the reference stretched into ``box`` on black)."""

    scene: Image.Image
    mask: np.ndarray
    box: Box
    masked: Image.Image
    reference: Image.Image
    hint: Image.Image

    def images(self) -> list[Image.Image]:
        """Scene, mask with its largest rectangle, masked image, reference, hint."""
        return [self.scene, draw_box(overlay(self.scene, self.mask), self.box), self.masked, self.reference, self.hint]


def hint_parts(scene: Image.Image, mask: np.ndarray, reference: Image.Image) -> HintParts:
    """Build the hint of one (scene, mask, reference) as ``DTCPipeline.make_hints`` does."""
    mask = np.asarray(mask, dtype=bool)
    masked = np.asarray(scene.convert("RGB")).copy()
    masked[mask] = MASKED_GRAY
    return HintParts(scene, mask, largest_rectangle(mask), Image.fromarray(masked), reference,
                     make_collage(reference, mask))


def draw_box(image: Image.Image, box: Box, colour: tuple[int, int, int] = (255, 220, 0)) -> Image.Image:
    """A copy of ``image`` with the (top, left, bottom exclusive, right exclusive) ``box`` outlined."""
    top, left, bottom, right = box
    out = image.convert("RGB").copy()
    ImageDraw.Draw(out).rectangle((left, top, right - 1, bottom - 1), outline=colour, width=1)
    return out


def hint_figure(rows: Mapping[str, HintParts], size: float = 1.9) -> NotebookFigure:
    """One row per labelled ``HintParts``: scene, mask + largest rectangle, masked image, reference, hint."""
    titles = ["scene", "mask + largest rectangle", "masked image (U-Net)", "reference", "hint (collage)"]
    return image_grid([im for parts in rows.values() for im in parts.images()],
                      [f"{label}: {t}" if i == 0 else t for label in rows for i, t in enumerate(titles)],
                      ncols=len(titles), size=size)


# --- the model's anatomy -----------------------------------------------------------------------


def skip_names(unet) -> list[str]:
    """Names of the U-Net's skip connections plus the mid block, in ``skip_channels`` order:
    ``conv_in``, ``down1.res1``, ``down1.down``, ..., ``mid``."""
    names = ["conv_in"]
    for b, block in enumerate(unet.down_blocks, start=1):
        names += [f"down{b}.res{r}" for r in range(1, len(block.resnets) + 1)]
        if getattr(block, "downsamplers", None):
            names += [f"down{b}.down"] * len(block.downsamplers)
    return names + ["mid"]


def skip_rows(pipe, conditioning: HintConditioning) -> list[list]:
    """Rows (level, name, channels, map size) of every skip connection ``conditioning`` modulates."""
    names, channels = skip_names(pipe.unet), skip_channels(pipe.unet)
    return [[i, name, c, "x".join(map(str, t.shape[-2:]))]
            for i, (name, c, t) in enumerate(zip(names, channels, conditioning.shifts))]


def count_parameters(module: torch.nn.Module | torch.Tensor) -> int:
    """Number of parameters of a module (or elements of a tensor parameter)."""
    if isinstance(module, torch.Tensor):
        return module.numel()
    return sum(p.numel() for p in module.parameters())


def parameter_rows(pipe) -> list[list]:
    """Rows (part, what it does, parameters in millions, fp16 MB) of a DTC pipeline."""
    parts: list[tuple[str, str, Any]] = [
        ("vae", "pixels <-> latents (the base model's)", pipe.vae),
        ("unet", "the main 9-channel U-Net (the base model's)", pipe.unet),
        ("image_encoder", "reference -> cross-attention tokens (DINOv2's role)", pipe.image_encoder),
    ]
    hint = pipe.hint_encoder
    if hint is not None:
        parts += [("hint_encoder.adapter", "4-layer CNN: hint pixels -> latent size", hint.adapter),
                  ("hint_encoder.encoder", "secondary encoder: a copy of conv_in, down and mid blocks", hint.encoder),
                  ("hint_encoder.fusion_layers", "zero-initialised 1x1 convs -> FiLM gamma, beta per skip",
                   hint.fusion_layers)]
        if "time_embed" in dict(hint.named_parameters()):
            parts.append(("hint_encoder.time_embed", "learned constant time embedding", hint.time_embed))
    return [[name, what, round(count_parameters(m) / 1e6, 3), round(count_parameters(m) * 2 / 2**20, 2)]
            for name, what, m in parts]


def encoder_drift(pipe) -> list[list]:
    """Rows (block, relative distance) between the hint encoder's secondary encoder and the main
    U-Net block it was copied from: ||w_hint - w_unet|| / ||w_unet|| over the block's weights
    (conv_in: its masked-latent and mask input channels). 0 everywhere = an exact copy."""
    hint = pipe.hint_encoder.encoder.state_dict()
    main = pipe.unet.state_dict()
    latent = pipe.unet.config.out_channels
    sums: dict[str, list[float]] = {}
    for key, weight in hint.items():
        if key not in main or key.startswith("time_embedding"):
            continue
        source = main[key][:, latent:] if key == "conv_in.weight" else main[key]
        block = ".".join(key.split(".")[:2]) if key.startswith("down_blocks") else key.split(".")[0]
        acc = sums.setdefault(block, [0.0, 0.0])
        acc[0] += float((weight.float() - source.float()).pow(2).sum())
        acc[1] += float(source.float().pow(2).sum())
    return [[block, round((d / max(n, 1e-12)) ** 0.5, 4)] for block, (d, n) in sums.items()]


# --- inside FiLM -------------------------------------------------------------------------------


def level_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A pixel mask brought to a feature map's (h, w): a cell is masked if any of its pixels is."""
    tensor = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
    return F.adaptive_max_pool2d(tensor, size)[0, 0].numpy() > 0.5


def film_rows(conditioning: HintConditioning, names: Sequence[str], mask: np.ndarray | None = None,
              index: int = 0) -> list[list]:
    """Rows (``FILM_HEADERS``) of per-level statistics of one example (``index``) of
    ``conditioning``: level name, gamma min / mean / max, beta min / mean / max, and, with the
    pixel ``mask`` (spatial maps only), the mean |gamma - 1| + |beta| inside the mask over that
    outside it: above 1, the hint changes the skip more where the item goes."""
    rows = []
    scales = conditioning.scales or (None,) * len(conditioning)
    for name, shift, scale in zip(names, conditioning.shifts, scales):
        beta = shift[index].float()
        gamma = scale[index].float() if scale is not None else None
        row = [name]
        row += _min_mean_max(gamma) if gamma is not None else ["", "", ""]
        row += _min_mean_max(beta)
        row.append(_inside_outside(gamma, beta, mask))
        rows.append(row)
    return rows


def _min_mean_max(values: torch.Tensor) -> list[float]:
    return [round(float(f(values)), 4) for f in (torch.min, torch.mean, torch.max)]


def _inside_outside(gamma: torch.Tensor | None, beta: torch.Tensor, mask: np.ndarray | None) -> str | float:
    if mask is None or beta.shape[-2:] == (1, 1):
        return ""
    strength = beta.abs().mean(0) + ((gamma - 1).abs().mean(0) if gamma is not None else 0)
    cells = torch.from_numpy(level_mask(mask, tuple(beta.shape[-2:])))
    if cells.all() or not cells.any():
        return ""
    outside = float(strength[~cells].mean())
    return round(float(strength[cells].mean()) / outside, 2) if outside > 0 else ""


def film_figure(conditioning: HintConditioning, names: Sequence[str], hint: Image.Image | None = None,
                index: int = 0, size: float = 1.6) -> NotebookFigure:
    """FiLM maps of one example: per level (columns), the channel mean of gamma (top row, centred
    on 1) and of beta (bottom row, centred on 0), each on its own symmetric colour scale (the
    title gives it). Channel-wise FiLM (1x1 maps) shows one value per channel instead.
    ``hint``: shown first for orientation. Addition (no gamma) has only the beta row."""
    rows = [("gamma", conditioning.scales, 1.0)] if conditioning.scales is not None else []
    rows.append(("beta" if conditioning.scales is not None else "residual", conditioning.shifts, 0.0))
    ncols = len(names) + (hint is not None)
    fig = NotebookFigure(figsize=(size * ncols, size * len(rows) + 0.6))
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, (label, maps, centre) in enumerate(rows):
        offset = 0
        if hint is not None:
            axes[r, 0].imshow(hint)
            axes[r, 0].set_title("hint" if r == 0 else "", fontsize=8)
            axes[r, 0].set_axis_off()
            offset = 1
        for c, (name, tensor) in enumerate(zip(names, maps)):
            values = tensor[index].float()
            grid = values.mean(0) if values.shape[-1] > 1 or values.shape[-2] > 1 else values.flatten()[None]
            spread = float((grid - centre).abs().max()) or 1e-6
            ax = axes[r, c + offset]
            ax.imshow(grid.cpu().numpy(), cmap="RdBu_r", vmin=centre - spread, vmax=centre + spread,
                      aspect="auto" if grid.shape[0] == 1 else "equal")
            ax.set_title(f"{name}\n{label} {centre:g}±{spread:.2g}", fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    return fig


# --- training and try-ons ----------------------------------------------------------------------


def dtc_logs(folder: Path | None, variants: Sequence[str] | None = None) -> dict[str, Path]:
    """The loss logs a shipped DTC folder carries (``logs/<variant>_losses.csv``, "+" written
    "_"), by variant name, only ``variants`` if given; {} without a folder."""
    if folder is None or not (folder / "logs").is_dir():
        return {}
    logs = {p.stem.removesuffix("_losses"): p for p in sorted((folder / "logs").glob("*_losses.csv"))}
    if variants is None:
        return logs
    return {v: logs[v.replace("+", "_")] for v in variants if v.replace("+", "_") in logs}


def loss_figure(curves: Mapping[str, Path], smooth: int = 5, size: tuple[float, float] = (4.5, 3.0)) -> NotebookFigure:
    """One panel per ``{title: losses.csv}``: every logged loss against step (log scale)."""
    from tryon_lab.training.losslog import plot_losses

    fig = NotebookFigure(figsize=(size[0] * len(curves), size[1]))
    for ax, (title, path) in zip(fig.subplots(1, len(curves), squeeze=False)[0], curves.items()):
        plot_losses(path, ax=ax, smooth=smooth)
        for line in ax.get_lines():
            if len(line.get_xdata()) <= SHORT_RUN_POINTS:  # a short run logs a few points: show them
                line.set_marker("o")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def run_tryons(pipes: Mapping[str, Any], samples: Sequence[WorldSample], *, steps: int, guidance_scale: float,
               seed: int = 0) -> dict[str, list[Image.Image]]:
    """Each pipeline's try-ons of ``samples`` (shape masks, same seeds): {name: images}."""
    from tryon_lab.training.dtc import dtc_method

    return {name: dtc_method(pipe, steps, guidance_scale, seed)(samples) for name, pipe in pipes.items()}


def tryon_figure(samples: Sequence[WorldSample], outputs: Mapping[str, Sequence[Image.Image]],
                 size: float = 1.9) -> NotebookFigure:
    """Per sample: scene + mask, reference, hint, each method's try-on, ground truth."""
    images, titles = [], []
    for i, sample in enumerate(samples):
        images += [overlay(sample.scene, sample.shape_mask), sample.reference,
                   make_collage(sample.reference, sample.shape_mask)]
        images += [outs[i] for outs in outputs.values()] + [sample.target]
        titles += [f"{sample.kind}: scene + mask", "reference", "hint", *outputs, "ground truth"]
    return image_grid(images, titles, ncols=4 + len(outputs), size=size)


def course_judge():
    """The world encoder as judge (``data/models/world-encoder``), or None when it is absent."""
    from tryon_lab.metrics.judge import WorldJudge

    folder = data_dir() / "models" / "world-encoder"
    return WorldJudge.load(folder) if (folder / "config.json").is_file() else None


# --- the ablation and the paper ----------------------------------------------------------------

# Diffuse to Choose (Seyfioglu et al. 2024), section 2.6: (CLIP score x100, FID).
PAPER_TABLE_1 = {  # fusion variants, in-house Vit-All data; PBE_best = PBE + DINOv2 + perceptual loss
    "PBE_best": (85.43, 6.65),
    "DTC, direct addition": (86.94, 6.19),
    "DTC, cross-attention": (88.01, 5.68),
    "DTC, FiLM (final)": (88.14, 5.72),
}
PAPER_TABLE_2 = {  # Paint-by-Example variants against DTC, VITON-HD-NoFace
    "PBE, CLIP [CLS] only": (82.43, 9.54),
    "+ all CLIP patches": (84.01, 8.93),
    "+ DINOv2 encoder": (87.48, 6.18),
    "+ perceptual loss": (87.79, 5.93),
    "DTC": (90.14, 5.39),
}
# Our variant -> (table, row) of the paper it corresponds to, and each table's no-hint +
# perceptual-loss row that changes are measured against (ours: "baseline+perceptual").
PAPER_ROWS = {
    "baseline": ("Table 2", "+ DINOv2 encoder"),
    "baseline+perceptual": ("Table 1", "PBE_best"),
    "add+perceptual": ("Table 1", "DTC, direct addition"),
    "film+perceptual": ("Table 1", "DTC, FiLM (final)"),
}
PAPER_TABLES = {"Table 1": (PAPER_TABLE_1, "PBE_best"), "Table 2": (PAPER_TABLE_2, "+ perceptual loss")}


def read_ablation(folder: Path | None) -> dict[str, dict[str, float]] | None:
    """The scored ablation a DTC folder's ``training.json`` records ({variant: scores}), or None."""
    if folder is None or not (folder / "training.json").is_file():
        return None
    return json.loads((folder / "training.json").read_text()).get("ablation") or None


def paper_table_markdown() -> str:
    """The paper's Table 1 and 2 as one Markdown table (CLIP x100 up, FID down)."""
    lines = ["| table | method | CLIP ↑ | FID ↓ |", "|---|---|---|---|"]
    for table, (rows, _) in PAPER_TABLES.items():
        lines += [f"| {table} | {name} | {clip:.2f} | {fid:.2f} |" for name, (clip, fid) in rows.items()]
    return "\n".join(lines)


def paper_comparison(results: Mapping[str, Mapping[str, float]], reference: str = "baseline+perceptual") -> str:
    """A Markdown table of our variants beside the paper row each corresponds to, with each FID's
    change against the no-hint model with perceptual loss (ours: ``reference``; the paper's:
    PBE_best in Table 1, "+ perceptual loss" in Table 2). Absolute values are not comparable
    (other data, other feature network); the direction and size of the changes are."""
    ours_ref = results.get(reference, {}).get("fid_world")
    lines = ["| variant | FID (world enc.) ↓ | vs " + reference + " | ref. similarity ×100 ↑ | paper row | "
             "paper FID ↓ | paper vs no-hint + perceptual | paper CLIP ↑ |", "|---|---|---|---|---|---|---|---|"]
    for name, scores in results.items():
        fid = scores.get("fid_world")
        cells = [name, _fmt(fid), _change(fid, ours_ref), _fmt(scores.get("ref_similarity"), 100)]
        if name in PAPER_ROWS:
            table, row = PAPER_ROWS[name]
            rows, ref_row = PAPER_TABLES[table]
            clip, paper_fid = rows[row]
            cells += [f"{table}: {row}", f"{paper_fid:.2f}", _change(paper_fid, rows[ref_row][1]), f"{clip:.2f}"]
        else:
            cells += ["(no such row)", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None else f"{value * scale:.2f}"


def _change(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    return f"{100 * (value - reference) / reference:+.1f}%"


# --- what the hint costs per step --------------------------------------------------------------


@contextmanager
def single_thread():
    """Run torch on one thread inside the block (restoring the count after), so CPU time measures
    the work itself: on a busy laptop wall time measures the neighbours too."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def step_times(pipes: Mapping[str, Any], sample: WorldSample, *, steps: int, repeats: int,
               guidance_scale: float) -> dict[str, dict[str, float]]:
    """``measure_step_times`` of ``pipes`` on one sample, in CPU seconds on one thread."""
    from tryon_lab.pipelines.dtc import measure_step_times

    with single_thread():
        return measure_step_times(dict(pipes), sample.scene, sample.shape_mask, sample.reference, steps=steps,
                                  repeats=repeats, guidance_scale=guidance_scale, clock=time.process_time)


def timing_rows(results: Mapping[str, Mapping[str, float]], reference: str) -> list[list]:
    """Rows (pipeline, ms per step, s per call, call / ``reference``'s call) of ``step_times``
    (names without ``measure_step_times``' ":recompute" marker)."""
    base = results[reference]["call_s"]
    return [[name.removesuffix(RECOMPUTE), round(1000 * r["step_s"], 1), round(r["call_s"], 3),
             round(r["call_s"] / base, 2)] for name, r in results.items()]


def meets_bar(results: Mapping[str, Mapping[str, float]], name: str, reference: str, bar: float = TRYON_BAR) -> bool:
    """Whether ``name``'s try-on costs at most ``bar`` times ``reference``'s."""
    return results[name]["call_s"] <= bar * results[reference]["call_s"]
