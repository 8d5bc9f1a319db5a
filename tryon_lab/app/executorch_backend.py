"""``ExecuTorchBackend``: the app on an exported phone bundle, run by the ExecuTorch runtime.

A bundle written by ``tryon-lab export`` (``tryon_lab.export.bundle``) holds the four
components as XNNPACK ``.pte`` programs. This back end runs them as the phone does: the
programs through ``PteRunner`` (the ExecuTorch runtime), the denoising loop through
``tryon_lab.export.runner.run_tryon`` (the phone's loop), at the bundle's fixed resolution,
with the photo padded to the model's square and the result pasted back inside the mask. So
students watch their own phone model paint, step by step, in the same app as the PyTorch model.

Opening a bundle checks every file's SHA-256 against the manifest first (nothing in a
modified bundle is run); every problem is a ``BundleError``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tryon_lab.app.backends import GenerationCancelled, StepCallback
from tryon_lab.errors import TryOnInputError
from tryon_lab.export.errors import BundleError
from tryon_lab.export.manifest import Manifest
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE

COMPONENTS = ("TextEncoder", "VAEEncoder", "Unet", "VAEDecoder")  # what run_tryon calls


@dataclass(frozen=True)
class PhoneModel:
    """An opened bundle: its ``folder``, ``manifest``, one ``PteRunner`` per component in
    ``runners``, the prompt ``tokenizer``, and the sizes the programs were exported at."""

    folder: Path
    manifest: Manifest
    runners: dict[str, Any]
    tokenizer: Any
    resolution: int
    token_length: int
    noise_shape: tuple[int, ...]


def check_bundle(bundle: str | Path) -> tuple[Path, Manifest]:
    """Check that ``bundle`` can run here, without loading a program: the folder and its manifest
    are there, every file's SHA-256 matches, every component has an ExecuTorch program.
    Returns (the resolved folder, the manifest); raises ``BundleError`` naming the problem."""
    from tryon_lab.export.manifest import read_manifest
    from tryon_lab.export.verify import check_files

    folder = Path(bundle).expanduser().resolve()
    if not folder.is_dir():
        raise BundleError(f"bundle {bundle} not found (expected a folder written by `tryon-lab export`)")
    manifest = read_manifest(folder)
    problems = check_files(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BundleError(f"bundle {folder} does not match its manifest: {problems[0]}{more}; "
                          "re-export it, or see `tryon-lab verify`")
    conditioning = manifest.runtime.conditioning
    if conditioning != "text":
        raise BundleError(f"bundle {folder} is conditioned on {conditioning!r}, not on a prompt; the app runs "
                          "text-prompted try-on bundles")
    entries = manifest.components
    missing = [name for name in COMPONENTS if name not in entries or entries[name].executorch is None]
    if missing:
        raise BundleError(f"bundle {folder} has no ExecuTorch program for {', '.join(missing)}; "
                          "export it with `--targets executorch` (or both targets)")
    return folder, manifest


def open_bundle(bundle: str | Path, tokenizer: str | Path | None = None) -> PhoneModel:
    """Check ``bundle`` (``check_bundle``) and load its ExecuTorch programs.

    ``tokenizer``: a tokenizer or pipeline folder, for a bundle exported without Core ML (such a
    bundle carries no BPE files); by default the bundle's own files, else its source model's.
    Returns the ``PhoneModel``; raises ``BundleError`` for a missing, modified, malformed or
    ExecuTorch-less bundle.
    """
    folder, manifest = check_bundle(bundle)
    specs = {name: manifest.components[name].spec for name in COMPONENTS}
    try:
        (token_length,) = [t.shape[-1] for t in specs["TextEncoder"].inputs if t.name == "input_ids"]
        (resolution,) = [t.shape[-1] for t in specs["VAEEncoder"].inputs if t.name == "image"]
        (_, channels, *latent) = [t.shape for t in specs["Unet"].outputs if t.name == "noise_pred"][0]
    except (ValueError, IndexError):
        raise BundleError(f"bundle {folder}: its components lack the contract's input_ids, image or "
                          "noise_pred tensors (or their shapes)") from None
    runners = {name: _load_program(folder / manifest.components[name].executorch.path, specs[name])
               for name in COMPONENTS}
    return PhoneModel(folder, manifest, runners, bundle_tokenizer(folder, manifest, tokenizer, token_length),
                      resolution, token_length, (1, channels, *latent))


def _load_program(path: Path, spec) -> Any:
    from tryon_lab.export.executorch import PteRunner

    try:
        return PteRunner(path, spec)
    except Exception as err:  # noqa: BLE001 - the runtime raises plain RuntimeErrors for bad programs
        raise BundleError(f"the ExecuTorch runtime cannot load {path.name}: {err}") from None


def bundle_tokenizer(folder: Path, manifest: Manifest, override: str | Path | None, length: int):
    """The CLIP tokenizer for a bundle's prompts: ``override`` (a tokenizer or pipeline folder),
    else the bundle's BPE files (``manifest.tokenizer``), else its source model's tokenizer.
    Raises ``BundleError`` when none is there."""
    from transformers import CLIPTokenizer

    if override is not None:
        candidates = [Path(override) / "tokenizer", Path(override)]
    elif manifest.tokenizer is not None:
        candidates = [(folder / manifest.tokenizer.vocab).parent]
    else:
        candidates = [source_model_folder(manifest.source_model) / "tokenizer"]
    for candidate in candidates:
        if (candidate / "vocab.json").is_file() or (candidate / "tokenizer.json").is_file():
            return CLIPTokenizer.from_pretrained(candidate, model_max_length=length, local_files_only=True)
    raise BundleError(f"no tokenizer for bundle {folder} at {' or '.join(map(str, candidates))} (a bundle "
                      "exported without Core ML carries none); export it with both targets, or pass the model "
                      "folder as tokenizer")


def source_model_folder(source: str) -> Path:
    """The model folder a manifest's ``source_model`` names ("shipped": the shipped text model)."""
    from tryon_lab.paths import shipped_model
    from tryon_lab.pipelines.loading import SHIPPED_INPAINT

    if source == "shipped":  # what `tryon-lab export` records without --model
        return shipped_model(SHIPPED_INPAINT)
    return Path(source).expanduser()


class ExecuTorchBackend:
    """Runs an exported bundle's ``.pte`` programs with the ExecuTorch runtime (the ``TryOnBackend``
    interface: ``generate`` with step previews, ``cancel``), with classifier-free guidance."""

    def __init__(self, model: PhoneModel, guidance_scale: float = TEXT_GUIDANCE) -> None:
        self.model = model
        self.guidance_scale = guidance_scale
        # a bundle runs the one sampler it was exported for (an LCM bundle's U-Net has the LoRA fused in)
        self.samplers = ("lcm",) if model.manifest.scheduler.get("_class_name") == "LCMScheduler" else ("ddim",)
        self.name = f"ExecuTorch · {model.folder.name}"
        self._cancelled = threading.Event()

    @classmethod
    def from_bundle(cls, bundle: str | Path, tokenizer: str | Path | None = None, **kwargs) -> ExecuTorchBackend:
        """Open ``bundle`` (see ``open_bundle``); raises ``BundleError`` for a bad one."""
        return cls(open_bundle(bundle, tokenizer), **kwargs)

    def generate(self, image: Image.Image, mask: np.ndarray, prompt: str, steps: int, seed: int,
                 on_step: StepCallback | None = None, sampler: str | None = None) -> Image.Image:
        """Inpaint ``mask`` of ``image`` as ``prompt`` says in ``steps`` steps from ``seed`` with the
        bundle's sampler (``sampler``, if given, must be it); return the photo-sized result, equal to
        ``image`` outside the mask."""
        import torch

        from tryon_lab.data.io import load_image, load_mask
        from tryon_lab.export.runner import TryOnInputs, run_tryon
        from tryon_lab.export.verify import manifest_scheduler, to_image
        from tryon_lab.pipelines.compositing import SEAM_PX, paste_back, to_model_square
        from tryon_lab.pipelines.latents import pil_to_tensor

        if steps < 1:
            raise TryOnInputError(f"steps must be at least 1, got {steps}")
        if sampler not in (None, *self.samplers):
            raise TryOnInputError(f"this bundle was exported for the {self.samplers[0]} sampler, not {sampler!r}")
        self._cancelled.clear()
        photo = load_image(image)
        mask = load_mask(mask, image=photo)
        square, square_mask = to_model_square(photo, mask, self.model.resolution)
        noise = torch.randn(self.model.noise_shape, generator=torch.Generator().manual_seed(seed))
        inputs = TryOnInputs(image=pil_to_tensor(square)[None].numpy(),
                             mask=square_mask.astype(np.float32)[None, None],
                             input_ids=self._tokens(prompt), negative_input_ids=self._tokens(""),
                             noise=noise.numpy(), steps=steps, guidance_scale=self.guidance_scale)
        decode = self.model.runners["VAEDecoder"].predict

        def step_end(step: int, latents: np.ndarray) -> None:
            if self._cancelled.is_set():
                raise GenerationCancelled("the try-on was cancelled")
            if on_step is not None:
                on_step(step, steps, lambda: paste_back(photo, to_image(decode({"latent": latents})["image"]),
                                                        mask, 0.0))

        manifest = self.model.manifest
        result = run_tryon(self.model.runners, inputs, manifest_scheduler(manifest.scheduler), step_end,
                           rows=manifest.runtime.unet_batch)
        return paste_back(photo, to_image(result["image"]), mask, SEAM_PX)  # the PyTorch pipeline's default seam

    def cancel(self) -> None:
        """Stop the running generation after its current step."""
        self._cancelled.set()

    def _tokens(self, text: str) -> np.ndarray:
        length = self.model.token_length
        ids = self.model.tokenizer([text], padding="max_length", max_length=length, truncation=True,
                                   return_tensors="np").input_ids
        return ids.astype(np.int32)
