"""Instance sets (the garment to learn) and class images (the prior to keep).

An ``InstanceSet`` holds model-resolution photos of one item with masks and captions, from the
world (a catalog item on 3-8 people) or from a user's folder (``NAME.png`` + ``NAME_mask.png``).
Class images are what the *base* model paints for the class prompt ("a photo of a person
wearing a tee") in the same kind of masks; training on them too keeps the class word meaning
"any tee" (prior preservation). They are generated once and cached in the run folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tryon_lab.data.attributes import ItemSpec, item_index
from tryon_lab.data.attributes import (
    item_from_id as item_from_id,  # re-exported: recipes, notebooks and tests import it here
)
from tryon_lab.data.datasets import DreamBoothDataset, image_to_array, mask_to_tensor, square_crop
from tryon_lab.data.io import load_image, load_mask
from tryon_lab.data.masks import mask_to_image
from tryon_lab.data.world import SPLIT_CODES, World, WorldSample, caption_for
from tryon_lab.errors import ConfigError
from tryon_lab.pipelines.compositing import to_model_square
from tryon_lab.pipelines.samplers import TEXT_GUIDANCE
from tryon_lab.training.common import save_atomically, write_json

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MASK_SUFFIX = "_mask"
TRAIN_MASK_KINDS = ("shape", "box")


@dataclass
class InstanceSet:
    """Photos of one item at the model's resolution, with masks (bool HxW) and captions.

    ``scenes``/``scene_masks``: where class images are painted (people wearing something else).
    ``reference``: a picture of the item for the catalog (the catalog shot, or a crop).
    """

    images: list[Image.Image]
    masks: list[np.ndarray]
    captions: list[str]
    token: str
    class_word: str
    class_prompt: str
    kind: str = "garment"
    item: ItemSpec | None = None
    reference: Image.Image | None = None
    scenes: list[Image.Image] = field(default_factory=list)
    scene_masks: list[np.ndarray] = field(default_factory=list)
    source: str = ""

    @property
    def instance_prompt(self) -> str:
        """The prompt that calls up the learned item, e.g. "a photo of a person wearing a sks tee"."""
        return self.captions[0]

    def dataset(self) -> "PairDataset":
        """The training pairs (image, mask, caption)."""
        return PairDataset(self.images, self.masks, self.captions)


class PairDataset(torch.utils.data.Dataset):
    """Inpainting items (pixel_values, mask, masked_pixel_values, caption) from in-memory lists,
    as ``InpaintDataset`` lays them out (so ``build_latent_cache`` encodes them)."""

    def __init__(self, images: list[Image.Image], masks: list[np.ndarray], captions: list[str]):
        if not (len(images) == len(masks) == len(captions)) or not images:
            raise ConfigError(f"need equal, non-zero numbers of images, masks and captions; got "
                             f"{len(images)}, {len(masks)}, {len(captions)}")
        self.images, self.masks, self.captions = images, masks, captions

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        """A short hash of images, masks and captions (names a latent cache of these pairs)."""
        digest = hashlib.sha1()
        for image, mask, caption in zip(self.images, self.masks, self.captions):
            digest.update(np.asarray(image.convert("RGB")).tobytes())
            digest.update(np.packbits(np.asarray(mask, dtype=bool)).tobytes())
            digest.update(caption.encode())
        return digest.hexdigest()[:12]

    def __getitem__(self, index: int) -> dict:
        pixels = image_to_array(self.images[index])
        mask = np.asarray(self.masks[index], dtype=bool)
        return {"pixel_values": torch.from_numpy(pixels), "mask": mask_to_tensor(mask),
                "masked_pixel_values": torch.from_numpy(pixels * ~mask[None]), "caption": self.captions[index]}


def world_instances(world: World, item: ItemSpec, n_people: int = 5, token: str = "sks", class_word: str | None = None,
                    mask_kinds: tuple[str, ...] = TRAIN_MASK_KINDS, n_scenes: int = 16) -> InstanceSet:
    """One catalog ``item`` (of any split: it is the subject) worn by ``n_people`` world people
    (train split), once per mask kind.

    Class scenes: ``n_scenes`` other people wearing other train items of the same category.
    """
    if not 1 <= n_people <= 32:
        raise ConfigError(f"n_people must be between 1 and 32, got {n_people}")
    data = DreamBoothDataset(world, item, n_people, token=token, class_word=class_word, personalize=True)
    images, masks, captions = [], [], []
    for kind in mask_kinds:
        if kind not in ("shape", "box"):
            raise ConfigError(f"training mask kind {kind!r} is not 'shape' or 'box'")
        for sample, caption in zip(data.samples, data.instance_prompts):
            images.append(sample.target)
            masks.append(sample.shape_mask if kind == "shape" else sample.box_mask)
            captions.append(caption)
    scenes = category_scenes(world, item, n_scenes, "train")
    return InstanceSet(images, masks, captions, token, data.class_word, data.class_prompt, kind=item.kind, item=item,
                       reference=world.catalog_image(item), scenes=[s.scene for s in scenes],
                       scene_masks=[s.shape_mask for s in scenes], source=item.item_id)


def category_scenes(world: World, item: ItemSpec, n: int, split: str = "train") -> list[WorldSample]:
    """Up to ``n`` samples of *other* items of ``item``'s category in ``split``, each on its own
    person (room) of ``split``: the scenes class images are painted on (masks: their shape masks)."""
    others = [it for it in world.items(item.kind, split) if it.category == item.category and it != item]
    rng = np.random.default_rng([world.seed, 7, SPLIT_CODES[split], item_index(item)])
    picks = rng.choice(len(others), size=min(n, len(others)), replace=False)
    return [world.instance_samples(others[int(i)], 1, split)[0] for i in picks]


def _photos_and_masks(folder: Path) -> list[tuple[Path, Path]]:
    if not folder.is_dir():
        raise ConfigError(f"--images {folder}: not a folder (expected photos NAME.png/.jpg with masks NAME_mask.png)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    masks = {p.stem[: -len(MASK_SUFFIX)]: p for p in files if p.stem.endswith(MASK_SUFFIX)}
    photos = [p for p in files if not p.stem.endswith(MASK_SUFFIX)]
    if not photos:
        raise ConfigError(f"--images {folder}: no photos found (expected NAME.png/.jpg files, each with a "
                          f"mask NAME{MASK_SUFFIX}.png, white where the garment is)")
    unmasked = [p.name for p in photos if p.stem not in masks]
    if unmasked:
        raise ConfigError(f"--images {folder}: no mask for {', '.join(unmasked)} "
                          f"(add {Path(unmasked[0]).stem}{MASK_SUFFIX}.png, white where the garment is)")
    orphans = sorted(m.name for stem, m in masks.items() if stem not in {p.stem for p in photos})
    if orphans:
        raise ConfigError(f"--images {folder}: mask(s) {', '.join(orphans)} have no photo of the same name")
    return [(p, masks[p.stem]) for p in photos]


def folder_instances(folder: str | Path, resolution: int, token: str = "sks", class_word: str | None = None) -> InstanceSet:
    """A user's photos of one garment: ``NAME.(png|jpg|...)`` with ``NAME_mask.png`` (white = garment).

    Photos of any size, mode and orientation are padded to the model's square. Raises
    ``ConfigError`` for a missing or empty folder, unpaired files or no class word, and the
    loaders' ``ImageFileError``/``MaskError`` (naming the file) for unreadable photos or bad masks.
    The class images are painted on the same photos.
    """
    folder = Path(folder)
    pairs = _photos_and_masks(folder)
    if not class_word:
        raise ConfigError("a folder of photos needs a class word saying what the garment is (e.g. tee, dress, jacket)")
    images, masks = [], []
    for photo_path, mask_path in pairs:
        photo = load_image(photo_path)
        square, mask = to_model_square(photo, load_mask(mask_path, image=photo), resolution)
        if not mask.any():
            raise ConfigError(f"--images {mask_path}: the mask vanishes at the model's {resolution}px; draw it larger")
        images.append(square)
        masks.append(mask)
    caption = caption_for(f"{token} {class_word}", "garment")
    reference = square_crop(images[0], masks[0]).resize((resolution, resolution), Image.Resampling.BICUBIC)
    return InstanceSet(images, masks, [caption] * len(images), token, class_word, caption_for(class_word, "garment"),
                       kind="garment", reference=reference, scenes=list(images), scene_masks=list(masks),
                       source=str(folder))


CLASS_MANIFEST = "manifest.json"


def class_images(pipe, instances: InstanceSet, n: int, out_dir: str | Path, steps: int = 25,
                 guidance_scale: float = TEXT_GUIDANCE, seed: int = 0, batch_size: int = 8) -> PairDataset:
    """Paint ``n`` class-prompt images with the base ``pipe`` on the instance set's scenes (cycled).

    Cached in ``out_dir`` (PNG image + mask per sample, manifest.json); a cache made with other
    settings is replaced. Returns the pairs with the class prompt as caption.
    """
    out_dir = Path(out_dir)
    if not instances.scenes:
        raise ConfigError("the instance set has no scenes to paint class images on")
    scene_hash = hashlib.sha1(b"".join(np.asarray(s).tobytes() for s in instances.scenes)).hexdigest()[:12]
    wanted = {"prompt": instances.class_prompt, "n": n, "steps": steps, "guidance_scale": guidance_scale,
              "seed": seed, "scenes": scene_hash, "resolution": pipe.resolution}
    manifest = out_dir / CLASS_MANIFEST
    if not (manifest.is_file() and json.loads(manifest.read_text()) == wanted):
        picks = [k % len(instances.scenes) for k in range(n)]
        scenes = [to_model_square(instances.scenes[k], instances.scene_masks[k], pipe.resolution) for k in picks]
        painted: list[Image.Image] = []
        for start in range(0, n, batch_size):
            chunk = scenes[start:start + batch_size]
            painted += pipe([s[0] for s in chunk], [s[1] for s in chunk], instances.class_prompt,
                            num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed + start).images

        def write(tmp: Path) -> None:
            tmp.mkdir(parents=True)
            for k, (image, (_, mask)) in enumerate(zip(painted, scenes)):
                image.save(tmp / f"class-{k:04d}.png")
                mask_to_image(mask).save(tmp / f"class-{k:04d}{MASK_SUFFIX}.png")
            write_json(tmp / CLASS_MANIFEST, wanted)

        save_atomically(out_dir, write)
    images = [load_image(out_dir / f"class-{k:04d}.png") for k in range(n)]
    masks = [load_mask(out_dir / f"class-{k:04d}{MASK_SUFFIX}.png") for k in range(n)]
    return PairDataset(images, masks, [instances.class_prompt] * n)
