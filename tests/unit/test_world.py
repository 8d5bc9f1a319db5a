"""The synthetic world: determinism, splits, ground-truth consistency, datasets and the catalog."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from tryon_lab.data.attributes import (
    ARM_POSES,
    ATTRIBUTE_NAMES,
    BODY_SHAPES,
    CATEGORIES,
    COLOURS,
    GARMENT_CATEGORIES,
    KINDS,
    N_MOTIFS,
    N_PEOPLE,
    N_ROOMS,
    PATTERNS,
    PRODUCT_CATEGORIES,
    ItemSpec,
    all_items,
    attribute_labels,
    caption_twins,
    item_from_id,
    num_classes,
    person_from_id,
)
from tryon_lab.data.catalog import load_catalog, write_catalog
from tryon_lab.data.datasets import DreamBoothDataset, DTCPairDataset, InpaintDataset, ItemCropDataset
from tryon_lab.data.masks import bounding_box
from tryon_lab.data.render.people import build_body, figure
from tryon_lab.data.splits import (
    FRACTIONS,
    SPLITS,
    TRAIN_TWINS,
    context_ids,
    item_split,
    person_split,
    room_split,
    split_items,
    split_sizes,
)
from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError, SplitError

N_SPLIT_SAMPLES = 200


def pixels(image) -> np.ndarray:
    return np.asarray(image)


def context_id(sample) -> int:
    return sample.attributes["person_id" if sample.kind == "garment" else "room_id"]


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3)


@pytest.fixture(scope="module")
def split_samples(world):
    """A few hundred samples of each split; the tests below share them to stay fast."""
    return {split: [world.sample(i, split) for i in range(N_SPLIT_SAMPLES)] for split in SPLITS}


def test_same_seed_and_index_give_identical_bytes():
    a, b = World(seed=7), World(seed=7)
    for index in (0, 3, 11):
        sa, sb = a.sample(index), b.sample(index)
        for name in ("scene", "target", "reference"):
            assert pixels(getattr(sa, name)).tobytes() == pixels(getattr(sb, name)).tobytes()
        assert np.array_equal(sa.shape_mask, sb.shape_mask)
        assert sa.caption == sb.caption and sa.attributes == sb.attributes


def test_a_pickled_world_renders_the_same_samples(world):
    # DataLoader workers started with "spawn" receive the world pickled.
    clone = pickle.loads(pickle.dumps(world))
    assert pixels(clone.sample(2).target).tobytes() == pixels(world.sample(2).target).tobytes()


def test_different_index_seed_or_split_give_different_samples(world):
    scenes = {pixels(world.sample(i).scene).tobytes() for i in range(8)}
    assert len(scenes) == 8
    assert pixels(World(seed=4).sample(0).target).tobytes() != pixels(world.sample(0).target).tobytes()
    assert pixels(world.sample(0, "test").target).tobytes() != pixels(world.sample(0).target).tobytes()
    with pytest.raises(ConfigError, match="unknown split 'heldout'"):
        world.sample(0, "heldout")


def test_no_item_person_or_room_is_in_two_splits():
    ids = {
        "garment": ([i.item_id for i in all_items("garment")], lambda s: [i.item_id for i in split_items(s, "garment")]),
        "product": ([i.item_id for i in all_items("product")], lambda s: [i.item_id for i in split_items(s, "product")]),
        "person": (list(range(N_PEOPLE)), lambda s: context_ids(s, "garment").tolist()),
        "room": (list(range(N_ROOMS)), lambda s: context_ids(s, "product").tolist()),
    }
    for name, (every, of_split) in ids.items():
        per_split = {split: set(of_split(split)) for split in SPLITS}
        assert sum(len(v) for v in per_split.values()) == len(every), name  # disjoint ...
        assert set().union(*per_split.values()) == set(every), name  # ... and complete
        for split in SPLITS:
            assert len(per_split[split]) == pytest.approx(FRACTIONS[split] * len(every), abs=2), (name, split)
    assert all(person_split(p) == s for s in SPLITS for p in context_ids(s, "garment")[:50])
    assert all(room_split(r) == s for s in SPLITS for r in context_ids(s, "product"))
    assert all(item_split(i) == s for s in SPLITS for k in KINDS for i in split_items(s, k))


def test_every_caption_has_train_twins_and_val_and_test_hold_many_twin_groups():
    for kind in KINDS:
        items = all_items(kind)
        for first in range(0, len(items), N_MOTIFS):
            twins = items[first : first + N_MOTIFS]
            assert twins == caption_twins(twins[0])
            assert sum(item_split(t) == "train" for t in twins) >= TRAIN_TWINS
    sizes = split_sizes()
    for split in ("val", "test"):
        assert sizes[split]["twin_groups"] >= 300 and sizes[split]["garments"] >= 200, split
        assert sizes[split]["rooms"] >= 40 and sizes[split]["people"] >= 5000, split


def test_samples_show_only_their_splits_items_people_and_rooms(split_samples):
    for split, samples in split_samples.items():
        for s in samples:
            assert item_split(s.item) == split and s.split == split
            assert (person_split if s.kind == "garment" else room_split)(context_id(s)) == split
            if s.attributes["original_item"] is not None:
                assert item_split(item_from_id(s.attributes["original_item"])) == split


def test_caption_twins_share_the_caption_and_differ_only_in_a_small_motif(world):
    person = person_from_id(int(context_ids("test", "garment")[0]))
    for spec in (ItemSpec("garment", "tee", "red", "stripes"), ItemSpec("product", "mug", "teal", "dots")):
        twins = caption_twins(spec)
        assert len(twins) == N_MOTIFS >= 4
        assert len({t.caption_phrase for t in twins}) == 1 and len({t.item_id for t in twins}) == N_MOTIFS
        assert len({(world.motif(t).shape, world.motif(t).corner) for t in twins}) == N_MOTIFS
        shots = [pixels(world.catalog_image(t)) for t in twins]
        item_area = (shots[0] != 255).any(axis=2).sum()
        for a in range(N_MOTIFS):
            for b in range(a + 1, N_MOTIFS):
                differ = (shots[a] != shots[b]).any(axis=2)
                assert 0 < differ.sum() < 0.25 * item_area, (spec.item_id, a, b)  # two motifs
        if spec.kind == "garment":
            worn = [world.render_person(person, t) for t in twins]
            assert all(np.array_equal(worn[0][1], mask) for _, mask in worn)  # same shape ...
            assert len({pixels(image).tobytes() for image, _ in worn}) == N_MOTIFS  # ... other motif


def test_item_ids_round_trip():
    for item in all_items()[:: 97]:
        assert item_from_id(item.item_id) == item
    assert item_from_id("garment-tee-red-stripes") == ItemSpec("garment", "tee", "red", "stripes", 0)
    for bad, field in (("garment-tee-red", "KIND-CATEGORY"), ("garment-tee-red-stripes-x", "motif"),
                       (f"garment-tee-red-stripes-{N_MOTIFS}", "motif")):
        with pytest.raises(ConfigError, match=field):
            item_from_id(bad)


def test_training_datasets_refuse_val_and_test(world):
    test_item = split_items("test", "garment")[0]
    for split in ("val", "test"):
        for dataset in (InpaintDataset, DTCPairDataset, ItemCropDataset):
            with pytest.raises(SplitError, match="evaluation"):
                dataset(world, split, length=2)
            assert dataset(world, split, length=2, evaluation=True)[1]
    with pytest.raises(SplitError, match=f"{test_item.item_id} is a test item"):
        DreamBoothDataset(world, test_item, n_people=1)
    with pytest.raises(SplitError, match="split 'test'"):
        DreamBoothDataset(world, split_items("train", "garment")[0], n_people=1, split="test")
    evaluated = DreamBoothDataset(world, test_item, n_people=2, split="test", evaluation=True)
    assert all(person_split(s.attributes["person_id"]) == "test" for s in evaluated.samples)


def test_every_category_colour_and_pattern_is_reachable(split_samples):
    samples = split_samples["train"] + split_samples["test"]
    assert {s.item.category for s in samples} == set(CATEGORIES)
    assert {s.item.colour for s in samples} == set(COLOURS)
    assert {s.item.pattern for s in samples} == set(PATTERNS)
    kinds = [s.kind for s in split_samples["train"]]
    assert kinds.count("garment") == pytest.approx(0.6 * len(kinds), abs=1)


def test_scene_and_target_differ_only_inside_the_shape_mask(split_samples):
    for sample in split_samples["train"][:80]:
        scene, target = pixels(sample.scene), pixels(sample.target)
        changed = (scene != target).any(axis=2)
        assert not changed[~sample.shape_mask].any(), sample.index
        assert changed.any()


def test_masks_are_consistent(split_samples):
    for sample in split_samples["train"][:80]:
        shape, box, item = sample.shape_mask, sample.box_mask, sample.item_mask
        assert shape.dtype == np.bool_ and shape.shape == (128, 128)
        assert 0 < shape.sum() < shape.size
        assert np.all(box >= shape) and np.all(shape >= item) and item.any()
        top, left, bottom, right = bounding_box(shape)
        assert box.sum() == (bottom - top) * (right - left) and box[top:bottom, left:right].all()


def test_captions_and_attributes_name_the_target_item(split_samples):
    for sample in split_samples["train"][:40]:
        assert sample.item.caption_phrase in sample.caption
        assert {k: sample.attributes[k] for k in ATTRIBUTE_NAMES} == {
            "category": sample.item.category, "colour": sample.item.colour, "pattern": sample.item.pattern
        }
        if sample.kind == "product":
            assert sample.caption.endswith(f" {sample.attributes['room']}")
        else:
            assert sample.caption.startswith("a photo of a person wearing ")


def test_vocabulary_and_labels():
    world = World()
    garments, products = world.items("garment"), world.items("product")
    assert len(garments) == len(GARMENT_CATEGORIES) * len(COLOURS) * len(PATTERNS) * N_MOTIFS
    assert len(products) == len(PRODUCT_CATEGORIES) * len(COLOURS) * len(PATTERNS) * N_MOTIFS
    assert len({i.item_id for i in world.items()}) == len(garments) + len(products)
    spec = ItemSpec("garment", "tee", "red", "stripes", 2)
    assert spec.item_id == "garment-tee-red-stripes-2" and spec.caption_phrase == "red striped tee"
    classes = num_classes()
    for item in world.items():
        labels = attribute_labels(item)
        assert all(0 <= labels[name] < classes[name] for name in ATTRIBUTE_NAMES)
    with pytest.raises(ValueError, match="colour"):
        ItemSpec("product", "mug", "magenta", "solid")


def test_person_helper_matches_the_sample_and_renders_every_garment(world):
    sample = world.sample(5, kind="garment")
    person = world.person(5)
    assert sample.attributes["person_id"] == person.person_id
    for category in GARMENT_CATEGORIES:
        image, mask = world.render_person(person, ItemSpec("garment", category, "blue", "checks"))
        assert image.size == (128, 128) and 0.08 < mask.mean() < 0.4, category


@pytest.mark.parametrize("pose", ARM_POSES)
def test_every_body_and_pose_fits_in_the_frame(pose):
    for body in BODY_SHAPES:
        person = person_from_id(0)
        layers = build_body(person, figure(body, pose, 128)).layers
        drawn = np.any([mask for mask, _ in layers], axis=0)
        border = np.concatenate([drawn[0], drawn[-1], drawn[:, 0], drawn[:, -1]])
        assert not border.any(), (body, pose)


def test_catalog_images_are_stable_and_centred(world):
    mug = ItemSpec("product", "mug", "teal", "dots")
    assert pixels(world.catalog_image(mug)).tobytes() == pixels(world.catalog_image(mug)).tobytes()
    plain = pixels(world.catalog_image(mug))
    assert (plain[0, 0] == 255).all() and (plain[-1, -1] == 255).all()
    assert not np.array_equal(plain, pixels(world.catalog_image(mug, busy=True)))
    tee = pixels(world.catalog_image(ItemSpec("garment", "tee", "green", "solid")))
    top, left, bottom, right = bounding_box((tee != 255).any(axis=2))
    assert abs((top + bottom) - 128) <= 2 and abs((left + right) - 128) <= 2


def test_instance_samples_show_one_item_on_different_people(world):
    item = ItemSpec("garment", "hoodie", "orange", "logo")
    samples = world.instance_samples(item, 5)
    assert len({s.attributes["person_id"] for s in samples}) == 5
    assert all(s.item == item and person_split(s.attributes["person_id"]) == "train" for s in samples)
    test = world.instance_samples(item, 3, "test")
    assert all(person_split(s.attributes["person_id"]) == "test" for s in test)


def _check_image(tensor: torch.Tensor, size: int = 128) -> None:
    assert tensor.dtype == torch.float32 and tensor.shape == (3, size, size)
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0


def _check_inpaint_item(item: dict) -> None:
    _check_image(item["pixel_values"])
    mask = item["mask"]
    assert mask.dtype == torch.float32 and mask.shape == (1, 128, 128)
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0} and mask.sum() > 0
    assert torch.equal(item["masked_pixel_values"], item["pixel_values"] * (1 - mask))
    assert isinstance(item["caption"], str)
    assert all(v.dtype == torch.int64 and v.ndim == 0 for v in item["labels"].values())


@pytest.mark.parametrize("mode", ["shape", "box", "mixed"])
def test_inpaint_dataset_items_and_masks_cover_the_item(world, mode):
    dataset = InpaintDataset(world, length=12, mask_mode=mode)
    assert len(dataset) == 12
    for index in range(12):
        item = dataset[index]
        _check_inpaint_item(item)
        covered = item["mask"][0].numpy().astype(bool)
        assert np.all(covered >= world.sample(index).shape_mask)
    with pytest.raises(IndexError):
        dataset[12]


def test_mixed_masks_include_strokes_sometimes(world):
    dataset = InpaintDataset(world, length=40, mask_mode="mixed")
    extra = [
        (dataset[i]["mask"][0].numpy().astype(bool) & ~world.sample(i).box_mask).any() for i in range(40)
    ]
    assert 0 < sum(extra) < 40


def test_dtc_dataset_has_reference_and_hint(world):
    item = DTCPairDataset(world, split="test", length=4, evaluation=True)[3]
    _check_inpaint_item(item)
    _check_image(item["reference"])
    _check_image(item["hint"])
    outside = item["mask"].expand(3, -1, -1) == 0
    assert (item["hint"][outside] == -1).all()  # the collage is black outside the mask


def test_dreambooth_dataset_captions(world):
    dataset = DreamBoothDataset(world, ItemSpec("garment", "tee", "red", "stripes"), n_people=3)
    assert len(dataset) == 3
    assert dataset[0]["caption"] == "a photo of a person wearing a sks tee"
    assert dataset.class_prompt == "a photo of a person wearing a tee"
    _check_inpaint_item(dataset[2])


def test_item_crop_dataset(world):
    dataset = ItemCropDataset(world, "train", length=10)
    items = [dataset[i] for i in range(10)]
    assert {item["source"] for item in items} == {"crop", "catalog"}
    for index, item in enumerate(items):
        _check_image(item["image"], 64)
        expected = attribute_labels(world.sample(index).item)
        assert {name: int(value) for name, value in item["labels"].items()} == expected


def test_catalog_round_trip(world, tmp_path):
    out = write_catalog(tmp_path / "cat", world, n_garments=12, n_products=8, n_scenes=4)
    entries = load_catalog(out)
    assert len(entries) == 20 and all(e.file.is_file() for e in entries)
    assert {e.spec.category for e in entries} == set(CATEGORIES)
    assert {e.kind for e in entries} == {"garment", "product"}
    scenes = json.loads((out / "scenes" / "scenes.json").read_text())
    assert len(scenes) == 4 and all((out / "scenes" / s["mask"]).is_file() for s in scenes)
    assert write_catalog(out, world, n_garments=2, n_products=1, n_scenes=1) == out  # replaces
    assert len(load_catalog(out / "catalog")) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]  # no staging folders left


def test_catalog_errors_name_the_bad_field(world, tmp_path):
    out = write_catalog(tmp_path / "cat", world, n_garments=2, n_products=1, n_scenes=0)
    index = out / "catalog" / "catalog.json"
    records = json.loads(index.read_text())
    records[1]["colour"] = "magenta"
    index.write_text(json.dumps(records))
    with pytest.raises(ConfigError, match="entry 1: field 'colour'"):
        load_catalog(out)
    index.write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        load_catalog(out)
    (tmp_path / "precious" / "catalog").mkdir(parents=True)
    (tmp_path / "precious" / "catalog" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a catalog"):
        write_catalog(tmp_path / "precious", world)


def test_rendering_into_data_keeps_its_other_folders(tmp_path):
    (tmp_path / "models" / "mini").mkdir(parents=True)
    (tmp_path / "models" / "mini" / "weights").write_text("keep me")
    for garments in (2, 1):  # a second render replaces the first catalog
        write_catalog(tmp_path, World(resolution=64), n_garments=garments, n_products=1, n_scenes=1)
    assert (tmp_path / "models" / "mini" / "weights").read_text() == "keep me"
    assert len(load_catalog(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "models", "scenes"]


@pytest.mark.parametrize("resolution", [64, 256])
def test_other_resolutions(resolution):
    world = World(seed=1, resolution=resolution)
    for index in range(5):
        sample = world.sample(index)
        assert sample.scene.size == sample.target.size == sample.reference.size == (resolution, resolution)
        assert sample.shape_mask.shape == (resolution, resolution)
        changed = (pixels(sample.scene) != pixels(sample.target)).any(axis=2)
        assert not changed[~sample.shape_mask].any()
        assert 0.05 < sample.shape_mask.mean() < 0.5
