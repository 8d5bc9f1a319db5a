"""Recipe: train Diffuse to Choose on the world's try-all pairs, and the paper's ablation.

Each step (``DTCObjective``): noise the target latent at a random timestep; the reference
becomes tokens (the null tokens with probability ``drop_rate``, together with an empty hint:
guidance dropout); the hint encoder turns (masked latent + adapted hint, mask) into FiLM or
addition conditioning; the main U-Net predicts the noise. Loss = MSE on the noise
+ ``perceptual_weight`` x a perceptual distance between the VAE-decoded predicted x0 and the
ground truth, weighted per sample by alpha_bar_t (x0 predicted from nearly pure noise says little)
and measured with ``PerceptualNet``, a separately trained network, never the world encoder.
Training masks are half shape, half box (``ShapeOrBoxDTCDataset``). The VAE is frozen, so
latents are cached once (``build_dtc_cache``); the main U-Net, the reference encoder and the
hint path train together. Runs resume from their newest checkpoint (``run_loop``).

``train_perceptual_net`` is the perceptual network's recipe; ``run_ablation`` trains and scores
the variants of the paper's Table 1 / 2 (no hint, direct addition, FiLM; each with and without
perceptual loss) on held-out pairs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from tryon_lab.data.attributes import ATTRIBUTE_NAMES
from tryon_lab.data.datasets import DTCPairDataset
from tryon_lab.data.world import SPLIT_CODES, World
from tryon_lab.models.channels import inpaint_channels
from tryon_lab.models.dtc import (
    EMPTY_HINT,
    HintEncoder,
    PerceptualNet,
    ReferenceEncoder,
    dtc_unet_forward,
    resize_images,
)
from tryon_lab.pipelines.latents import InpaintRule, latent_mask
from tryon_lab.training.common import module_fingerprint, save_atomically
from tryon_lab.training.loop import LoopSettings

_SHAPE_OR_BOX_STREAM = 11  # random stream code (world.py and datasets.py use 0-6)
CACHE_FILE = "dtc.safetensors"

# name -> (fusion, perceptual loss): the paper's fusion ablation (Table 1) and its
# perceptual-loss ablation (Table 2), on one shared recipe.
ABLATION_VARIANTS: dict[str, tuple[str | None, bool]] = {
    "baseline": (None, False),
    "baseline+perceptual": (None, True),
    "add": ("add", False),
    "add+perceptual": ("add", True),
    "film": ("film", False),
    "film+perceptual": ("film", True),
}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class ShapeOrBoxDTCDataset(Dataset):
    """DTC pairs whose mask is the item's shape mask or its box mask, 50/50 (deterministic per
    index), as in the paper; fields of ``DTCPairDataset`` (the hint fills the mask's largest rectangle)."""

    def __init__(self, world: World, split: str = "train", length: int = 10_000):
        self.shape = DTCPairDataset(world, split, length, mask_mode="shape")
        self.box = DTCPairDataset(world, split, length, mask_mode="box")
        self.world, self.split, self.length = world, split, int(length)

    def __len__(self) -> int:
        return self.length

    def uses_box(self, index: int) -> bool:
        """Whether item ``index`` is drawn with the box mask."""
        rng = np.random.default_rng([self.world.seed, _SHAPE_OR_BOX_STREAM, SPLIT_CODES[self.split], int(index)])
        return bool(rng.random() < 0.5)

    def __getitem__(self, index: int) -> dict:
        return (self.box if self.uses_box(index) else self.shape)[index]


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


@torch.no_grad()
def build_dtc_cache(vae: AutoencoderKL, dataset, out_dir: str | Path, reference_size: int, *,
                    inpaint_rule: InpaintRule, batch_size: int = 32, record: dict[str, str] | None = None) -> Path:
    """Encode a DTC pair dataset once: latents, masked latents, latent masks (float, by ``inpaint_rule``), and the
    target, hint (full size) and reference (``reference_size``) as uint8. Written atomically to
    ``out_dir/dtc.safetensors``, with ``record`` (what it was built from) in its metadata; returns ``out_dir``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    scale = vae.config.scaling_factor
    names = ("latents", "masked_latents", "masks", "targets", "hints", "references")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    for batch in tqdm(loader, desc="encoding DTC pairs"):
        latents = vae.encode(batch["pixel_values"].to(vae.device, vae.dtype)).latent_dist.mode() * scale
        parts["latents"].append(latents.float().cpu())
        masked = vae.encode(batch["masked_pixel_values"].to(vae.device, vae.dtype)).latent_dist.mode() * scale
        parts["masked_latents"].append(masked.float().cpu())
        parts["masks"].append(latent_mask(batch["mask"], latents.shape[-1], inpaint_rule))
        parts["targets"].append(_to_uint8(batch["pixel_values"]))
        parts["hints"].append(_to_uint8(batch["hint"]))
        parts["references"].append(_to_uint8(resize_images(batch["reference"], reference_size)))
        for name in ATTRIBUTE_NAMES:
            parts.setdefault(f"labels_{name}", []).append(batch["labels"][name])
    tensors = {name: torch.cat(chunks).contiguous() for name, chunks in parts.items()}

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        save_file(tensors, tmp / CACHE_FILE, metadata={"reference_size": str(reference_size), **(record or {})})

    return save_atomically(out_dir, write)


class DTCCache(Dataset):
    """Items of a ``build_dtc_cache`` folder: latents, masked_latents, mask, target, hint, reference
    (images uint8 (3, H, W); the objective converts them to [-1, 1])."""

    def __init__(self, cache_dir: str | Path):
        path = Path(cache_dir) / CACHE_FILE
        self.tensors = load_file(path)
        with safe_open(path, "pt") as file:
            self.record: dict[str, str] = file.metadata() or {}

    def __len__(self) -> int:
        return len(self.tensors["latents"])

    def __getitem__(self, index: int) -> dict:
        t = self.tensors
        return {"latents": t["latents"][index], "masked_latents": t["masked_latents"][index], "mask": t["masks"][index],
                "target": t["targets"][index], "hint": t["hints"][index], "reference": t["references"][index]}


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------


class DTCObjective(torch.nn.Module):
    """Diffusion loss (+ perceptual loss on the decoded predicted x0) of a DTC model on a DTCCache batch.

    ``hint_encoder`` None trains the no-hint (Paint-by-Example-style) baseline; ``perceptual``
    None turns the perceptual loss off. ``vae`` and ``perceptual`` stay frozen (gradients flow
    through them to the prediction only). ``perceptual_batch`` limits the perceptual loss to the
    first N samples of each batch (its VAE decode dominates a CPU step).
    """

    def __init__(self, unet: UNet2DConditionModel, image_encoder: ReferenceEncoder, hint_encoder: HintEncoder | None,
                 noise_scheduler: DDPMScheduler, *, vae: AutoencoderKL | None = None,
                 perceptual: PerceptualNet | None = None, perceptual_weight: float = 0.1,
                 perceptual_batch: int | None = None, drop_rate: float = 0.1, train_unet: bool = True):
        super().__init__()
        if perceptual is not None and vae is None:
            raise ValueError("the perceptual loss decodes the predicted x0: give the VAE")
        self.unet, self.image_encoder, self.hint_encoder = unet, image_encoder, hint_encoder
        self.unet.requires_grad_(train_unet)
        self.vae = vae.eval().requires_grad_(False) if vae is not None else None
        self.perceptual = perceptual.eval().requires_grad_(False) if perceptual is not None else None
        self.noise_scheduler = noise_scheduler
        self.perceptual_weight, self.perceptual_batch, self.drop_rate = perceptual_weight, perceptual_batch, drop_rate

    def train(self, mode: bool = True):
        super().train(mode)
        for frozen in (self.vae, self.perceptual):  # frozen networks stay in eval mode
            if frozen is not None:
                frozen.eval()
        return self

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns (total loss, {"diffusion": ..., "perceptual": ...})."""
        latents, masked, mask = batch["latents"], batch["masked_latents"], batch["mask"]
        batch_size, device = latents.shape[0], latents.device
        drop = torch.rand(batch_size, device=device) < self.drop_rate
        tokens = self.image_encoder.tokens(_to_float(batch["reference"]), drop)
        noise = torch.randn_like(latents)
        steps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (batch_size,), device=device)
        noisy = self.noise_scheduler.add_noise(latents, noise, steps)
        conditioning = None
        if self.hint_encoder is not None:
            hint = torch.where(drop[:, None, None, None], torch.full_like(_to_float(batch["hint"]), EMPTY_HINT),
                               _to_float(batch["hint"]))
            timestep = steps if self.hint_encoder.config.timestep_conditioning else None
            conditioning = self.hint_encoder(masked, mask, hint, tokens, timestep=timestep)
        model_in = torch.cat([noisy, inpaint_channels(mask, masked)], dim=1)
        prediction = dtc_unet_forward(self.unet, model_in, steps, tokens, conditioning)
        diffusion = F.mse_loss(prediction, noise)
        logs = {"diffusion": float(diffusion.detach())}
        if self.perceptual is None or self.perceptual_weight == 0:
            return diffusion, logs
        n = batch_size if self.perceptual_batch is None else min(self.perceptual_batch, batch_size)
        perceptual = self.perceptual_loss(noisy[:n], prediction[:n], steps[:n], _to_float(batch["target"][:n]))
        logs["perceptual"] = float(perceptual.detach())
        return diffusion + self.perceptual_weight * perceptual, logs

    def predicted_x0(self, noisy: torch.Tensor, prediction: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """x0 = (x_t - sqrt(1 - a) eps) / sqrt(a) for an epsilon (or v) prediction."""
        alpha = self.noise_scheduler.alphas_cumprod.to(noisy.device)[steps].view(-1, 1, 1, 1).to(noisy.dtype)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            return alpha.sqrt() * noisy - (1 - alpha).sqrt() * prediction
        return (noisy - (1 - alpha).sqrt() * prediction) / alpha.sqrt()

    def perceptual_loss(self, noisy: torch.Tensor, prediction: torch.Tensor, steps: torch.Tensor,
                        target: torch.Tensor) -> torch.Tensor:
        """alpha_bar-weighted perceptual distance between the decoded predicted x0 and the target pixels."""
        x0 = self.predicted_x0(noisy, prediction, steps)
        decoded = self.vae.decode(x0 / self.vae.config.scaling_factor).sample
        distance = self.perceptual.distance(decoded, target.to(decoded.dtype))
        weight = self.noise_scheduler.alphas_cumprod.to(distance.device)[steps].to(distance.dtype)
        return (weight * distance).mean()


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DTCSettings:
    """Sizes for one DTC run (from the profile or the command line)."""

    steps: int
    batch_size: int = 8
    learning_rate: float = 1e-4
    drop_rate: float = 0.1
    perceptual_weight: float = 0.1
    perceptual_batch: int | None = 4
    dataset_size: int = 4000
    checkpoint_every: int = 250
    ema_decay: float | None = None
    film_mode: str = "spatial"
    timestep_conditioning: bool = False
    train_unet: bool = True
    warmup_steps: int = 50

    def loop(self) -> LoopSettings:
        """The generic loop settings of this run."""
        return LoopSettings(steps=self.steps, learning_rate=self.learning_rate, checkpoint_every=self.checkpoint_every,
                            ema_decay=self.ema_decay, warmup_steps=self.warmup_steps, weight_decay=1e-2)


def ensure_dtc_cache(accelerator, vae: AutoencoderKL, world: World, cache_dir: str | Path, dataset_size: int,
                     reference_size: int, inpaint_rule: InpaintRule) -> DTCCache:
    """Load the latent cache of ``dataset_size`` training pairs from ``cache_dir``, building it first (main
    process) when it is missing or was built from anything else (another size, world, VAE or rule: e.g.
    by another profile), so a course run never stops on a stale cache."""
    cache_dir = Path(cache_dir)
    wanted = {"pairs": str(dataset_size), "reference_size": str(reference_size), "world": repr(world),
              "inpaint_rule": inpaint_rule, "vae": module_fingerprint(vae)}
    with accelerator.main_process_first():
        if accelerator.is_main_process:
            held = DTCCache(cache_dir).record if (cache_dir / CACHE_FILE).is_file() else None
            if held != wanted:
                if held is not None:
                    changed = sorted(k for k in wanted if held.get(k) != wanted[k])
                    print(f"rebuilding {cache_dir}: it was built with another {', '.join(changed)}")
                build_dtc_cache(vae, ShapeOrBoxDTCDataset(world, "train", dataset_size), cache_dir, reference_size,
                                inpaint_rule=inpaint_rule, record=wanted)
    return DTCCache(cache_dir)


def train_dtc(base, run_dir: str | Path, settings: DTCSettings, *, fusion: str | None = "film",
              perceptual: PerceptualNet | str | Path | None = None, cache_dir: str | Path | None = None,
              seed: int = 0):
    """Train (or resume) a DTC model on top of the text inpainting pipeline ``base`` (a folder or a
    TryOnInpaintPipeline). ``fusion``: "film", "add" or None (the no-hint baseline);
    ``perceptual``: a PerceptualNet (or its folder) to add the perceptual loss, None for none.

    Work files (checkpoints, losses.csv; the latent cache unless ``cache_dir``) live in ``run_dir``.
    Returns ``(DTCPipeline with a DDIM sampler, LoopResult)``.
    """
    from diffusers import DDIMScheduler

    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop

    run_dir = Path(run_dir)
    accelerator = make_accelerator(seed)
    if isinstance(base, (str, Path)):
        base = load_inpaint_pipeline(base, device="cpu")
    if isinstance(perceptual, (str, Path)):
        perceptual = PerceptualNet.from_pretrained(perceptual)
    vae = base.vae.eval().requires_grad_(False)
    torch.manual_seed(seed)
    pipe = DTCPipeline.from_base(base, fusion, film_mode=settings.film_mode,
                                 timestep_conditioning=settings.timestep_conditioning,
                                 scheduler=DDIMScheduler.from_config(base.scheduler.config))
    world = World(seed=seed, resolution=pipe.resolution)
    cache = ensure_dtc_cache(accelerator, vae, world, cache_dir or run_dir / "dtc-cache", settings.dataset_size,
                             pipe.image_encoder.config.image_size, base.inpaint_rule)
    noise_scheduler = DDPMScheduler.from_config(base.scheduler.config)
    objective = DTCObjective(pipe.unet, pipe.image_encoder, pipe.hint_encoder, noise_scheduler, vae=vae,
                             perceptual=perceptual, perceptual_weight=settings.perceptual_weight,
                             perceptual_batch=settings.perceptual_batch, drop_rate=settings.drop_rate,
                             train_unet=settings.train_unet)
    batches = endless(loader_factory(accelerator, cache, settings.batch_size))
    result = run_loop(accelerator, run_dir, objective, batches, settings.loop(), progress_desc="dtc")
    if result.ema is not None:
        result.ema.copy_to(objective.parameters())
    pipe.unet.requires_grad_(False)
    pipe.image_encoder.requires_grad_(False)
    if pipe.hint_encoder is not None:
        pipe.hint_encoder.requires_grad_(False)
    return pipe, result


# --------------------------------------------------------------------------------------------
# The perceptual network's recipe
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerceptualSettings:
    """Sizes for the perceptual network's run. ``world_seed`` differs from the judge's world (0)."""

    steps: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    dataset_size: int = 20000
    crop_size: int = 64
    world_seed: int = 1
    checkpoint_every: int = 500


def train_perceptual_net(run_dir: str | Path, settings: PerceptualSettings, resolution: int = 128,
                         out_dir: str | Path | None = None) -> PerceptualNet:
    """Train (or resume) the perceptual network on item crops of its own world (``world_seed``);
    saves it to ``out_dir`` if given; returns it in eval mode, frozen."""
    from tryon_lab.data.datasets import ItemCropDataset
    from tryon_lab.training.common import loader_factory, make_accelerator
    from tryon_lab.training.loop import endless, run_loop
    from tryon_lab.training.world_encoder import AttributeObjective

    accelerator = make_accelerator(settings.world_seed)
    net = PerceptualNet.for_world()
    dataset = ItemCropDataset(World(settings.world_seed, resolution), split="train", length=settings.dataset_size,
                              crop_size=settings.crop_size)
    batches = endless(loader_factory(accelerator, dataset, settings.batch_size))
    loop = LoopSettings(steps=settings.steps, learning_rate=settings.learning_rate,
                        checkpoint_every=settings.checkpoint_every, warmup_steps=50, weight_decay=1e-4)
    # its pretraining task, as ImageNet classification is VGG's
    run_loop(accelerator, run_dir, AttributeObjective(net), batches, loop, progress_desc="perceptual net")
    net = net.eval().requires_grad_(False)
    if out_dir is not None:
        save_atomically(out_dir, lambda tmp: net.save_pretrained(tmp))
    return net


# --------------------------------------------------------------------------------------------
# Evaluation and the ablation
# --------------------------------------------------------------------------------------------


def dtc_method(pipe, steps: int = 25, guidance_scale: float = 5.0, seed: int = 0, batch_size: int = 8):
    """A ``metrics.inpainting`` Method: each sample's shape mask on its scene, with its reference."""

    def run(samples: Sequence) -> list:
        outputs: list = []
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            result = pipe([s.scene for s in chunk], [s.shape_mask for s in chunk], [s.reference for s in chunk],
                          num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed + start)
            outputs.extend(result.images)
        return outputs

    return run


@dataclass
class AblationSettings:
    """What the ablation trains and how it scores: one DTCSettings for every variant."""

    train: DTCSettings
    variants: tuple[str, ...] = tuple(ABLATION_VARIANTS)
    eval_samples: int = 64
    sample_steps: int = 25
    guidance_scale: float = 5.0
    seed: int = 0


def run_ablation(base, run_dir: str | Path, settings: AblationSettings, *, perceptual_dir: str | Path | None,
                 judge_dir: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Train and score every variant on the same held-out try-all pairs (garments and products,
    unseen combinations); resumable per variant and per checkpoint.

    Each variant trains in ``run_dir/<name>`` (one shared latent cache), is saved to
    ``run_dir/<name>/pipeline`` and scored with ``evaluate_methods`` (masked PSNR, box SSIM and,
    with a judge, attribute accuracy and reference similarity) plus FID on world-encoder features
    of the item crops; scores accumulate in ``run_dir/ablation.json``. Returns {variant: scores}.
    """
    from tryon_lab.metrics.inpainting import evaluate_methods
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.pipelines.dtc import DTCPipeline
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    unknown = set(settings.variants) - set(ABLATION_VARIANTS)
    if unknown:
        raise ValueError(f"unknown ablation variants {sorted(unknown)}; choose from {list(ABLATION_VARIANTS)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    results_path = run_dir / "ablation.json"
    results: dict[str, dict[str, float]] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if isinstance(base, (str, Path)):
        base = load_inpaint_pipeline(base, device="cpu")
    judge = WorldJudge.load(judge_dir) if judge_dir and Path(judge_dir, "config.json").is_file() else None
    perceptual = PerceptualNet.from_pretrained(perceptual_dir) if perceptual_dir else None
    world = World(settings.seed, base.unet.config.sample_size * 2 ** (len(base.vae.config.block_out_channels) - 1))
    heldout = [world.sample(i, split="test") for i in range(settings.eval_samples)]
    for name in settings.variants:
        if name in results:
            continue
        fusion, use_perceptual = ABLATION_VARIANTS[name]
        if use_perceptual and perceptual is None:
            raise ValueError(f"variant {name!r} needs the perceptual network: give perceptual_dir")
        folder = run_dir / name / "pipeline"
        if (folder / "model_index.json").is_file():
            pipe = DTCPipeline.from_pretrained(folder, local_files_only=True)
            wall = json.loads((folder / "training.json").read_text()).get("wall_seconds")
        else:
            pipe, loop = train_dtc(base, run_dir / name, settings.train, fusion=fusion,
                                   perceptual=perceptual if use_perceptual else None,
                                   cache_dir=run_dir / "dtc-cache", seed=settings.seed)
            wall = loop.wall_seconds
            record = {"variant": name, "fusion": fusion, "perceptual": use_perceptual, "wall_seconds": wall,
                      "settings": asdict(settings.train)}

            def write(tmp: Path, pipe=pipe, record=record) -> None:
                pipe.save_pretrained(tmp, safe_serialization=True)
                (tmp / "training.json").write_text(json.dumps(record, indent=2))

            save_atomically(folder, write)
        pipe.set_progress_bar_config(disable=True)
        outputs: list = []

        def method(samples, pipe=pipe, outputs=outputs):
            outputs.extend(dtc_method(pipe, settings.sample_steps, settings.guidance_scale, settings.seed)(samples))
            return outputs

        scores = evaluate_methods({name: method}, heldout, judge)[name]
        if judge is not None:
            items = [s.item_mask for s in heldout]
            scores["fid_world"] = judge.fid([s.target for s in heldout], items, outputs, items)
        scores["train_wall_seconds"] = float(wall or 0.0)
        results[name] = scores
        results_path.write_text(json.dumps(results, indent=2))
    return {name: results[name] for name in settings.variants}


def ablation_table(results: dict[str, dict[str, float]], baseline: str = "baseline") -> str:
    """A Markdown table of ablation results, with FID's change against ``baseline`` when scored."""
    columns = [("fid_world", "FID (world enc.) ↓"), ("ref_similarity", "ref. similarity ↑"),
               ("attr_acc_all", "attr. acc. (all) ↑"), ("masked_psnr_db", "masked PSNR dB ↑"), ("box_ssim", "box SSIM ↑")]
    present = [(k, title) for k, title in columns if any(k in r for r in results.values())]
    base_fid = results.get(baseline, {}).get("fid_world")
    head = ["variant"] + [t for _, t in present] + (["FID vs baseline"] if base_fid else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, scores in results.items():
        cells = [name] + [f"{scores[k]:.3f}" if k in scores else "" for k, _ in present]
        if base_fid:
            fid = scores.get("fid_world")
            cells.append(f"{100 * (fid - base_fid) / base_fid:+.1f}%" if fid is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
