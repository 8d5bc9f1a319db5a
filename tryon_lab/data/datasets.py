"""PyTorch datasets over the synthetic world.

Every item is a dict of tensors and strings: images are float32 CxHxW in [-1, 1], masks float32
1xHxW in {0, 1} (1 = repaint), and ``masked_pixel_values = pixel_values * (1 - mask)`` as in
Stable Diffusion inpainting. Items are deterministic functions of (world seed, split, index).

These datasets feed training, so they read the train split only: a val or test split, or a val or
test item, needs ``evaluation=True`` (say so where results are measured), else ``SplitError``.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from tryon_lab.data.attributes import ItemSpec, attribute_labels, caption_twins, global_item_index
from tryon_lab.data.masks import bounding_box, check_hint_layout, make_collage, stroke_mask
from tryon_lab.data.render.items import Motif, motif_labels, random_motif
from tryon_lab.data.splits import SPLIT_CODES, check_split, item_split
from tryon_lab.data.world import World, WorldSample, caption_for
from tryon_lab.errors import ConfigError, SplitError

MASK_MODES = ("shape", "box", "mixed")
STROKE_PROBABILITY = 0.2
_MASK_STREAM, _CROP_STREAM, _MOTIF_STREAM = 5, 6, 7  # see world.py: codes 0-4, 12 and 13 are taken


# Tensors are built in numpy and wrapped at the end: torch's intra-op threads cost far more
# than they save on images this small, above all in a DataLoader's main process.


def image_to_array(image: Image.Image) -> np.ndarray:
    """Return an RGB PIL image as a float32 CxHxW numpy array in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Return an RGB PIL image as a float32 CxHxW tensor in [-1, 1]."""
    return torch.from_numpy(image_to_array(image))


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """Return a bool HxW mask as a float32 1xHxW tensor of 0s and 1s."""
    return torch.from_numpy(np.asarray(mask, dtype=np.float32)[None])


def label_tensors(item: ItemSpec) -> dict[str, torch.Tensor]:
    """Return ``attribute_labels(item)`` as int64 scalar tensors."""
    return {name: torch.tensor(value, dtype=torch.int64) for name, value in attribute_labels(item).items()}


def training_mask(sample: WorldSample, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Return the mask to inpaint for ``sample``: its ``shape`` mask, its ``box`` mask, or
    (``mixed``) either one at random, with probability 0.2 unioned with 1-3 random brush
    strokes. The mask always covers the item, so the caption names what must be painted."""
    if mode not in MASK_MODES:
        raise ConfigError(f"unknown mask_mode {mode!r}; choose one of {MASK_MODES}")
    if mode == "shape":
        return sample.shape_mask
    if mode == "box":
        return sample.box_mask
    mask = sample.shape_mask if rng.random() < 0.5 else sample.box_mask
    if rng.random() < STROKE_PROBABILITY:
        size = mask.shape[0]
        mask = mask.copy()
        for _ in range(int(rng.integers(1, 4))):
            points = rng.uniform(0, size, size=(int(rng.integers(2, 5)), 2))
            mask |= stroke_mask(points, radius=rng.uniform(0.03, 0.07) * size, size=(size, size))
    return mask


def check_training_split(split: str, evaluation: bool, item: ItemSpec | None = None) -> str:
    """Return ``split`` if training may read it (and ``item``, when given); a val or test split
    or item without ``evaluation`` raises ``SplitError``."""
    check_split(split)
    if evaluation:
        return split
    if split != "train":
        raise SplitError(f"split {split!r} is for evaluation only: training datasets read 'train' "
                         "(pass evaluation=True where results are measured)")
    if item is not None and item_split(item) != "train":
        raise SplitError(f"item {item.item_id} is a {item_split(item)} item: training never sees it "
                         "(pass evaluation=True where results are measured)")
    return split


def _inpaint_item(sample: WorldSample, mask: np.ndarray, caption: str) -> dict:
    pixels = image_to_array(sample.target)
    keep = ~mask[None]
    return {
        "pixel_values": torch.from_numpy(pixels),
        "mask": mask_to_tensor(mask),
        "masked_pixel_values": torch.from_numpy(pixels * keep),
        "caption": caption,
        "labels": label_tensors(sample.item),
    }


class _WorldDataset(Dataset):
    """``length`` samples of ``world`` in ``split``, each with its own mask random stream; a
    split other than train needs ``evaluation=True``."""

    def __init__(
        self,
        world: World,
        split: str = "train",
        length: int = 10_000,
        mask_mode: str = "mixed",
        evaluation: bool = False,
    ) -> None:
        check_training_split(split, evaluation)
        if mask_mode not in MASK_MODES:
            raise ConfigError(f"unknown mask_mode {mask_mode!r}; choose one of {MASK_MODES}")
        if length < 1:
            raise ConfigError(f"length must be >= 1, got {length}")
        self.world, self.split, self.length, self.mask_mode = world, split, int(length), mask_mode

    def __len__(self) -> int:
        return self.length

    def _sample_and_mask(self, index: int) -> tuple[WorldSample, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        sample = self.world.sample(index, self.split)
        rng = np.random.default_rng([self.world.seed, _MASK_STREAM, SPLIT_CODES[self.split], index])
        return sample, training_mask(sample, self.mask_mode, rng)


class InpaintDataset(_WorldDataset):
    """Text-conditioned inpainting pairs: ``pixel_values`` (the target), ``mask``,
    ``masked_pixel_values``, ``caption`` and ``labels`` (category, colour, pattern)."""

    def __getitem__(self, index: int) -> dict:
        sample, mask = self._sample_and_mask(index)
        return _inpaint_item(sample, mask, sample.caption)


class DTCPairDataset(_WorldDataset):
    """Diffuse-to-Choose pairs: the ``InpaintDataset`` fields plus ``reference`` (the catalog
    image at the world's resolution) and ``hint`` (the reference pasted on black as
    ``masks.make_collage`` lays it out with ``hint_layout``: by default into the mask's largest
    rectangle)."""

    def __init__(self, world: World, split: str = "train", length: int = 10_000, mask_mode: str = "mixed",
                 evaluation: bool = False, hint_layout: str = "rectangle") -> None:
        super().__init__(world, split, length, mask_mode, evaluation)
        self.hint_layout = check_hint_layout(hint_layout)

    def __getitem__(self, index: int) -> dict:
        sample, mask = self._sample_and_mask(index)
        item = _inpaint_item(sample, mask, sample.caption)
        size = (self.world.resolution, self.world.resolution)
        reference = sample.reference
        if reference.size != size:
            reference = reference.resize(size, Image.Resampling.BICUBIC)
        item["reference"] = image_to_tensor(reference)
        item["hint"] = image_to_tensor(make_collage(reference, mask, layout=self.hint_layout))
        return item


class DreamBoothDataset(Dataset):
    """One item on ``n_people`` different people (products: in different rooms), captioned with
    a rare ``token``: "a photo of a person wearing a sks tee". ``class_prompt`` is the same
    caption without the token, for prior preservation. Fields as ``InpaintDataset``. A val or
    test ``split`` needs ``evaluation=True``, and so does a val or test ``item`` unless
    ``personalize``: the item is then the subject a user fine-tunes on (DreamBooth's whole
    point; benchmarks pick test items, whose motifs no base training saw), while its people
    still follow the split rule."""

    def __init__(
        self,
        world: World,
        item: ItemSpec,
        n_people: int,
        token: str = "sks",
        class_word: str | None = None,
        mask_mode: str = "shape",
        split: str = "train",
        evaluation: bool = False,
        personalize: bool = False,
    ) -> None:
        check_training_split(split, evaluation, None if personalize else item)
        if mask_mode not in MASK_MODES:
            raise ConfigError(f"unknown mask_mode {mask_mode!r}; choose one of {MASK_MODES}")
        self.world, self.item, self.token, self.mask_mode, self.split = world, item, token, mask_mode, split
        self.class_word = class_word or item.category
        self.samples = world.instance_samples(item, n_people, split)
        phrase = f"{token} {self.class_word}"
        self.instance_prompts = [
            caption_for(phrase, item.kind, sample.attributes.get("room")) for sample in self.samples
        ]
        first_room = self.samples[0].attributes.get("room") if self.samples else None
        self.class_prompt = caption_for(self.class_word, item.kind, first_room)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        rng = np.random.default_rng([self.world.seed, _MASK_STREAM, SPLIT_CODES[self.split], index, 1])
        return _inpaint_item(sample, training_mask(sample, self.mask_mode, rng), self.instance_prompts[index])


class ItemCropDataset(_WorldDataset):
    """Judge data (the world encoder): ``image`` (float32 3 x ``crop_size`` squared, in
    [-1, 1]) showing either the target item cropped by a mask's box (padded to a square) or its
    catalog image, 50/50, with ``labels`` (category, colour, pattern), ``motif`` (the
    ``MOTIF_FACTORS`` labels of the motif painted on it), ``item`` (the item's index in
    ``all_items()``, which tells caption twins apart) and ``source`` ("crop" or "catalog"). A
    crop is cut around the item's own pixels or, half the time, around the sample's shape mask
    (the item and the one it replaced), so that the judge names the item whatever margin of
    person or room a crop holds.

    With ``random_motifs`` (train split only) every sample's item wears a motif drawn afresh
    instead of its own, never the design of one of its val or test caption twins: a network
    that must name these motifs learns to read them, where an item's own motif could be
    recalled from its caption and the motif's corner."""

    def __init__(
        self, world: World, split: str = "train", length: int = 10_000, crop_size: int = 64, evaluation: bool = False,
        random_motifs: bool = False,
    ) -> None:
        super().__init__(world, split, length, "shape", evaluation)
        if random_motifs and split != "train":
            raise SplitError(f"random_motifs repaints train items for training; got split {split!r}")
        self.crop_size, self.random_motifs = int(crop_size), bool(random_motifs)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        motif = self._random_motif(index) if self.random_motifs else None
        sample = self.world.sample(index, self.split, motif=motif)
        painted = motif or self.world.motif(sample.item)
        rng = np.random.default_rng([self.world.seed, _CROP_STREAM, SPLIT_CODES[self.split], index])
        if rng.random() < 0.5:
            mask = sample.item_mask if rng.random() < 0.5 else sample.shape_mask
            image, source = square_crop(sample.target, mask), "crop"
        else:
            image, source = sample.reference, "catalog"
        image = image.resize((self.crop_size, self.crop_size), Image.Resampling.BICUBIC)
        return {"image": image_to_tensor(image), "labels": label_tensors(sample.item),
                "motif": torch.tensor(list(motif_labels(painted).values()), dtype=torch.int64),
                "item": torch.tensor(global_item_index(sample.item), dtype=torch.int64), "source": source}

    def _random_motif(self, index: int) -> Motif:
        item = self.world.item(index, self.split)
        held = {_design(self.world.motif(twin)) for twin in caption_twins(item) if item_split(twin) != "train"}
        rng = np.random.default_rng([self.world.seed, _MOTIF_STREAM, SPLIT_CODES[self.split], index])
        while _design(motif := random_motif(item.colour, rng)) in held:
            pass
        return motif


def _design(motif: Motif) -> tuple:
    """What a motif reader names: shape and colours (the corner only places it)."""
    return motif.shape, motif.fill, motif.inner


def square_crop(image: Image.Image, mask: np.ndarray, margin: float = 0.08) -> Image.Image:
    """Return the square around ``mask``'s bounding box (grown by ``margin`` of its side)
    cut from ``image``; parts outside the image are filled with edge pixels."""
    top, left, bottom, right = bounding_box(mask)
    side = int(round(max(bottom - top, right - left) * (1 + 2 * margin)))
    cy, cx = (top + bottom) / 2, (left + right) / 2
    y0, x0 = int(round(cy - side / 2)), int(round(cx - side / 2))
    array = np.asarray(image.convert("RGB"))
    pad = max(0, -y0, -x0, y0 + side - array.shape[0], x0 + side - array.shape[1])
    padded = np.pad(array, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return Image.fromarray(padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side])
