"""An SD-1.5-size Core ML export on a 2-core, 24 GiB machine (``python -m benchmarks export-sd15``; not in CI).

A random-weight U-Net with Stable Diffusion 1.5 inpainting's real shapes (the ``sd15`` config:
9-channel UNet2DConditionModel, blocks 320/640/1280/1280, cross-attention 768, 64x64 latents,
about 860M parameters) goes through the package's own export path: ``coreml.convert_measured``
(fp16 unless measured worse; its check runs the whole fp16 program on the MIL executor),
``palettize.palettize`` (6-bit k-means, palettes of 32 output channels, k-means in one process per
core), ``chunking.chunk_program`` (2 chunks, cut on the palettized program), then the MIL executor
runs the chunk packages one at a time, as a phone chains them, against PyTorch fp32 on one fixed
input. The torch model is freed once converted, each program once the next one is made.
Only the U-Net is exported: the text encoder and the VAE (123M and 84M parameters) go through the
same conversion the shipped bundle already measures.

Every stage is timed and its peak memory measured, printed as it ends and recorded: the process's
own peak RSS exactly (``/proc/self/clear_refs`` resets the high-water mark ``VmHWM`` at each stage
start) and, sampled every half second, the RSS of the process with its children (the k-means
workers). ``getrusage``'s children figure is not used: a child's high-water mark includes the
parent's pages it shared at the fork. The weights are identified by the seed and the SHA-256 of the
fp32 state dict (``weights_sha256``); the commit is in the section's record line.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

MODELS = ()  # random weights of the sd15 config: no shipped model is measured
GIB = 1 << 30
NEURAL_ENGINE_LIMIT = GIB  # the largest model the Neural Engine takes (why Apple cuts the SD U-Net in two)
RATIO_BAR, PSNR_BAR, MEMORY_BAR = 0.40, 30.0, 20 * GIB
SAMPLE_SECONDS = 0.5


def _status_kib(key: str, pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss() -> int:
    """RSS (bytes) of this process and all its descendants, now."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grown = {os.getpid()}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(_status_kib("VmRSS", pid) for pid in tree) * 1024


class _TreeSampler(threading.Thread):
    """Samples ``_tree_rss`` every ``SAMPLE_SECONDS``; ``take()`` returns the largest since the last take."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest, self.lock, self.stopped = 0, threading.Lock(), threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_SECONDS):
            rss = _tree_rss()
            with self.lock:
                self.largest = max(self.largest, rss)

    def take(self) -> int:
        rss = _tree_rss()
        with self.lock:
            largest, self.largest = max(self.largest, rss), 0
        return largest


def _trim() -> None:
    """Hand freed heap memory back to the system (glibc keeps it, e.g. after tracing), so each stage's
    peak is its own and other processes on the machine get the memory back."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


@dataclass
class Stage:
    """One stage: ``name``, wall ``seconds``, peak RSS of the process (exact) and of its tree (sampled)."""

    name: str
    seconds: float
    peak: int
    tree_peak: int


@dataclass
class Progress:
    """Times and peak memory per stage, printed as each stage ends."""

    stages: list[Stage] = field(default_factory=list)
    began: float = field(default_factory=time.perf_counter)
    exact: bool = True  # False where VmHWM could not be reset (each stage's peak is then the run's so far)
    sampler: _TreeSampler = field(default_factory=_TreeSampler)

    def __post_init__(self) -> None:
        self.sampler.start()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        gc.collect()
        _trim()
        self.exact = _reset_peak() and self.exact
        self.sampler.take()
        began = time.perf_counter()
        print(f"[export-sd15] {name} ...", flush=True)
        yield
        done = Stage(name, time.perf_counter() - began, _status_kib("VmHWM") * 1024, 0)
        done.tree_peak = max(self.sampler.take(), done.peak)
        self.stages.append(done)
        print(f"[export-sd15] {name}: {done.seconds:.1f} s, peak RSS {done.peak / GIB:.2f} GiB (with children "
              f"{done.tree_peak / GIB:.2f} GiB), total {time.perf_counter() - self.began:.0f} s", flush=True)

    def close(self) -> None:
        self.sampler.stopped.set()

    @property
    def peak(self) -> Stage:
        """The stage with the largest peak (process and children)."""
        return max(self.stages, key=lambda s: max(s.peak, s.tree_peak))


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 over the state dict in key order: per tensor its name, dtype and shape, then its bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(memoryview(tensor.detach().contiguous().reshape(-1).numpy()).cast("B"))
    return digest.hexdigest()


class _UnetOnly:
    """What the contract's ``Unet`` builder reads from a text inpainting pipeline: the U-Net and the
    token length (the text encoder itself is not built)."""

    def __init__(self, unet: torch.nn.Module, token_length: int) -> None:
        self.unet, self.text_encoder = unet, "not built"
        self.tokenizer = type("Tokenizer", (), {"model_max_length": token_length})()


def fixed_inputs(spec, seed: int) -> dict[str, np.ndarray]:
    """One fixed U-Net input: standard normal sample and tokens, timestep 500 for both guidance rows."""
    rng = np.random.default_rng(seed)
    return {t.name: np.full(t.shape, 500.0, dtype=np.float32) if t.name == "timestep"
            else rng.standard_normal(t.shape, dtype=np.float32) for t in spec.inputs}


def run_chunks_one_by_one(paths: list[Path], chunk_inputs: list[tuple[str, ...]], inputs: dict[str, np.ndarray],
                          progress: Progress) -> tuple[dict[str, np.ndarray], list[tuple[float, int]]]:
    """Chain the chunk packages with Apple's rule (chunk k sees chunk k-1's outputs and the model
    inputs), one MIL executor loaded at a time; return the last outputs and, per chunk, the run's
    seconds and the executor's peak bytes of activations."""
    from tryon_lab.export.mil import MILExecutor

    previous: dict[str, np.ndarray] = {}
    measured = []
    for index, (path, names) in enumerate(zip(paths, chunk_inputs), start=1):
        with progress.stage(f"MIL executor, chunk {index}: load and run"):
            executor = MILExecutor(path, f"chunk {index}")
            available = {**inputs, **previous}
            began = time.perf_counter()
            previous = executor.predict({name: available[name] for name in names})
            measured.append((time.perf_counter() - began, executor.peak_bytes))
            del executor
    return previous, measured


def run(config: str = "sd15", bits: int = 6, chunks: int = 2, seed: int = 0, workers: int | None = None,
        scratch: str | Path | None = None) -> list[tuple[str, object, str]]:
    """Build, convert, palettize, chunk and check the ``config`` U-Net (a config name or JSON file);
    return ``(metric, value, note)`` rows. ``workers``: k-means processes (default: one per core)."""
    from tryon_lab.export.bundle import folder_bytes, sha256_file
    from tryon_lab.export.chunking import chunk_balance, chunk_program
    from tryon_lab.export.compare import max_abs_error, signal_psnr
    from tryon_lab.export.contract import pipeline_components
    from tryon_lab.export.coreml import convert_measured
    from tryon_lab.export.palettize import PaletteSettings, palettize, weight_report
    from tryon_lab.models.components import build_unet
    from tryon_lab.models.config import load_model_config

    workers = workers or os.cpu_count() or 1
    settings = PaletteSettings()
    progress = Progress()
    try:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            out = Path(tmp)
            with progress.stage("build the random U-Net"):
                model_config = load_model_config(config)
                torch.manual_seed(seed)
                unet = build_unet(model_config).eval()
                parameters = sum(p.numel() for p in unet.parameters())
                sha = weights_sha256(unet)
                pipe = _UnetOnly(unet, model_config.tokenizer["max_length"])
                component = pipeline_components(pipe, only=("Unet",))["Unet"]
                inputs = fixed_inputs(component.spec, seed)
            with progress.stage("PyTorch fp32 reference step"):
                began = time.perf_counter()
                with torch.no_grad():
                    output = component.module(*(torch.from_numpy(inputs[t.name]) for t in component.spec.inputs))
                torch_seconds = time.perf_counter() - began
                reference = {component.spec.outputs[0].name: output.numpy()}
            with progress.stage("convert to an fp16 ML Program (trace, ct.convert, whole-program executor check)"):
                conversion = convert_measured(component, inputs, reference)
                del component, pipe, unet, output  # the torch model is done with
            with progress.stage("save the fp16 package"):
                fp16_path = out / "Unet-fp16.mlpackage"
                conversion.model.save(str(fp16_path))
                fp16_bytes = folder_bytes(fp16_path)
            with progress.stage(f"palettize ({bits}-bit k-means, palettes of {settings.group_size} channels, "
                                f"{workers} processes)"):
                palettized = palettize(conversion.model, bits, settings, workers=workers)
                precision, fp16_psnr, convert_seconds = conversion.precision, conversion.psnr, conversion.seconds
                del conversion
                report = weight_report(palettized)
            with progress.stage(f"save the {bits}-bit package (unchunked)"):
                whole_path = out / f"Unet-{bits}bit.mlpackage"
                palettized.save(str(whole_path))
                whole_bytes = folder_bytes(whole_path)
            with progress.stage(f"chunk into {chunks} and save"):
                pieces = chunk_program(palettized, chunks)
                del palettized
                paths = [out / f"UnetChunk{index}.mlpackage" for index in range(1, chunks + 1)]
                for piece, path in zip(pieces, paths):
                    piece.model.save(str(path))
                chunk_bytes = [folder_bytes(p) for p in paths]
                weight_hashes = [sha256_file(p / "Data" / "com.apple.CoreML" / "weights" / "weight.bin") for p in paths]
                chunk_inputs = [piece.inputs for piece in pieces]
                balance, weight_bytes = chunk_balance(pieces), [piece.weight_bytes for piece in pieces]
                del pieces
            outputs, executed = run_chunks_one_by_one(paths, chunk_inputs, inputs, progress)
    finally:
        progress.close()
    name = next(iter(reference))
    psnr, error = signal_psnr(outputs[name], reference[name]), max_abs_error(outputs[name], reference[name])

    wall = time.perf_counter() - progress.began
    six_bit = sum(chunk_bytes)
    ratio = six_bit / fp16_bytes
    peak = progress.peak
    peak_bytes = max(peak.peak, peak.tree_peak)
    largest = max(max(s.peak for s in progress.stages), max(s.tree_peak for s in progress.stages))
    unet = model_config.unet
    rows: list[tuple[str, object, str]] = [
        ("model", f"{config}: random-weight UNet2DConditionModel, {parameters / 1e6:.1f}M parameters",
         f"{unet['in_channels']} input channels, blocks {unet['block_out_channels']}, cross-attention "
         f"{unet['cross_attention_dim']}, {model_config.resolution} px ({model_config.latent_size}x"
         f"{model_config.latent_size} latents), batch 2 (guidance rows); U-Net only (text encoder and VAE not exported)"),
        ("seed", seed, "torch.manual_seed(seed) before build_unet; the fixed input from numpy default_rng(seed), "
                       "timestep 500"),
        ("weights sha256", sha, "of the fp32 state dict: per tensor in key order its name, dtype, shape, bytes "
                                "(benchmarks.export_sd15.weights_sha256)"),
        ("wall time (s)", round(wall, 1), f"build to the last chunk's run, {torch.get_num_threads()} torch threads; "
                                          "stages below"),
        ("peak RSS (GiB)", round(largest / GIB, 2),
         f"process and k-means workers; largest in stage '{peak.name}' (process alone {peak.peak / GIB:.2f} GiB); "
         f"bar: well under {MEMORY_BAR / GIB:.0f}: {'met' if peak_bytes < MEMORY_BAR else 'MISSED'}"),
        ("U-Net fp16 package (bytes)", fp16_bytes,
         f"{fp16_bytes / GIB:.3f} GiB; compute precision {precision}, ct.convert {convert_seconds:.0f} s"),
        (f"U-Net {bits}-bit packages, {chunks} chunks (bytes)", six_bit,
         f"{six_bit / GIB:.3f} GiB; unchunked {whole_bytes} bytes; {report.average_bits:.3f} bits per weight on "
         f"average (elements per width {report.histogram})"),
        (f"U-Net {bits}-bit / fp16 package size", round(ratio, 4),
         f"{chunks} chunk packages / the fp16 package; bar <= {RATIO_BAR}: {'met' if ratio <= RATIO_BAR else 'MISSED'}"),
    ]
    for index, size in enumerate(chunk_bytes, start=1):
        rows.append((f"chunk {index} package (bytes)", size,
                     f"{size / GIB:.3f} GiB; bar < 1 GiB (Neural Engine): "
                     f"{'met' if size < NEURAL_ENGINE_LIMIT else 'MISSED'}; {len(chunk_inputs[index - 1])} inputs; "
                     f"weight.bin sha256 {weight_hashes[index - 1][:16]}"))
    rows += [
        ("chunk balance, largest / smallest package", round(max(chunk_bytes) / min(chunk_bytes), 4),
         f"weight bytes {weight_bytes}: largest deviation from the mean {balance:.3f}"),
        (f"U-Net {precision} one-step PSNR (dB)", round(fp16_psnr, 1),
         "whole unpalettized program on the MIL executor vs PyTorch fp32 (convert_measured's check); bar >= 35"),
        (f"U-Net {bits}-bit chunked one-step PSNR (dB)", round(psnr, 2),
         f"{chunks} chunk packages chained on the MIL executor, one loaded at a time, vs PyTorch fp32 on the fixed "
         f"input; max abs error {error:.3g}; bar >= {PSNR_BAR:g}: {'met' if psnr >= PSNR_BAR else 'MISSED'}"),
        ("one step (s): PyTorch fp32 / MIL executor per chunk",
         f"{torch_seconds:.1f} / {' + '.join(f'{seconds:.1f}' for seconds, _ in executed)}",
         "run only, loading excluded; executor activations at most "
         + " / ".join(f"{held / GIB:.2f}" for _, held in executed) + " GiB per chunk"),
    ]
    note = "wall time; peak RSS of the process, with its k-means workers where larger (sampled every 0.5 s)"
    for stage in progress.stages:
        shown = f"{stage.peak / GIB:.2f}" + (f" ({stage.tree_peak / GIB:.2f})" if stage.tree_peak > stage.peak * 1.02
                                              else "")
        rows.append((f"stage: {stage.name}", f"{stage.seconds:.0f} s, {shown} GiB",
                     note + ("" if progress.exact else "; VmHWM could not be reset: peaks so far")))
    return rows
