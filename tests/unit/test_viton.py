"""VitonFolder on tiny VITON-HD-style fixtures, and its errors for broken layouts."""

import numpy as np
import pytest
from PIL import Image

from tryon_lab.data.viton import UPPER_CLOTH_LABELS, VitonFolder
from tryon_lab.errors import ConfigError, MaskError

PEOPLE = ["00001_00.jpg", "00002_00.jpg", "00003_00.jpg"]
CLOTHS = PEOPLE  # VITON-HD names each person's own garment like the person
WIDTH, HEIGHT = 48, 64  # VITON-HD's 3:4 portrait aspect
TORSO = (slice(20, 44), slice(12, 36))


def labels_map():
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[4:18, 16:32] = 13  # face
    labels[TORSO] = UPPER_CLOTH_LABELS[0]
    labels[44:60, 14:34] = 9  # pants
    image = Image.fromarray(labels).convert("P")
    image.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))
    return image


def make_layout(base, masks="agnostic"):
    """Write 3 people, 3 cloths and one mask variant under ``base``; return the torso mask."""
    for folder in ("image", "cloth", "agnostic-mask" if masks == "agnostic" else "image-parse-v3"):
        (base / folder).mkdir(parents=True)
    torso = np.zeros((HEIGHT, WIDTH), bool)
    torso[TORSO] = True
    for i, (person, cloth) in enumerate(zip(PEOPLE, CLOTHS)):
        Image.new("RGB", (WIDTH, HEIGHT), (40 * i, 90, 160)).save(base / "image" / person)
        Image.new("RGB", (40, 40), (200, 30 * i, 30)).save(base / "cloth" / cloth)
        stem = person.removesuffix(".jpg")
        if masks == "agnostic":
            mask = Image.fromarray(torso.astype(np.uint8) * 255)
            mask.save(base / "agnostic-mask" / f"{stem}_mask.png")
        else:
            labels_map().save(base / "image-parse-v3" / f"{stem}.png")
    return torso


def write_pairs(path, pairs):
    path.write_text("".join(f"{person} {cloth}\n" for person, cloth in pairs))


@pytest.mark.parametrize("masks", ["agnostic", "parse"])
def test_loads_split_with_pairs(tmp_path, masks):
    make_layout(tmp_path / "test", masks)
    pairs = list(zip(PEOPLE, reversed(CLOTHS)))
    write_pairs(tmp_path / "test_pairs.txt", pairs)
    data = VitonFolder(tmp_path, split="test", size=32)
    assert len(data) == 3
    for index in range(3):
        sample = data[index]
        assert sample["person"].size == (32, 32) and sample["person"].mode == "RGB"
        assert sample["cloth"].size == (32, 32) and sample["cloth"].mode == "RGB"
        assert sample["mask"].dtype == bool and sample["mask"].shape == (32, 32)
        assert sample["name"] == PEOPLE[index].removesuffix(".jpg")
    # The torso (24x24 of 48x64) scaled by 0.5 and padded by 4 columns on each side.
    mask = data[0]["mask"]
    assert mask[10:22, 10:22].all() and mask.sum() == 144
    assert data[0]["cloth"].getpixel((16, 16))[1] == 60  # paired with the third cloth


def test_pairs_by_name_without_pairs_file(tmp_path):
    make_layout(tmp_path)
    data = VitonFolder(tmp_path, size=16)
    assert data.pairs == list(zip(PEOPLE, PEOPLE))
    assert [data[i]["name"] for i in range(len(data))] == ["00001_00", "00002_00", "00003_00"]


def test_missing_split_suggests_splits(tmp_path):
    make_layout(tmp_path / "train")
    with pytest.raises(ConfigError, match=r"no 'image/' folder.*train.*split="):
        VitonFolder(tmp_path)


def test_missing_cloth_folder(tmp_path):
    (tmp_path / "image").mkdir()
    with pytest.raises(ConfigError, match=r"no 'cloth/' folder"):
        VitonFolder(tmp_path)


def test_missing_mask_folder(tmp_path):
    for folder in ("image", "cloth"):
        (tmp_path / folder).mkdir()
    with pytest.raises(ConfigError, match="agnostic-mask"):
        VitonFolder(tmp_path)


def test_pairs_reference_missing_file(tmp_path):
    make_layout(tmp_path / "test")
    write_pairs(tmp_path / "test_pairs.txt", [(PEOPLE[0], "nope.jpg")])
    with pytest.raises(ConfigError, match=r"cloth.nope\.jpg.*missing"):
        VitonFolder(tmp_path, split="test")


def test_missing_mask_file(tmp_path):
    make_layout(tmp_path)
    (tmp_path / "agnostic-mask" / "00002_00_mask.png").unlink()
    with pytest.raises(ConfigError, match=r"00002_00_mask\.png.*missing"):
        VitonFolder(tmp_path)


def test_malformed_pairs_line(tmp_path):
    make_layout(tmp_path)
    (tmp_path / "pairs.txt").write_text(f"{PEOPLE[0]} {CLOTHS[0]}\n{PEOPLE[1]}\n")
    with pytest.raises(ConfigError, match=r"pairs\.txt, line 2"):
        VitonFolder(tmp_path)


def test_empty_image_folder(tmp_path):
    for folder in ("image", "cloth", "agnostic-mask"):
        (tmp_path / folder).mkdir()
    with pytest.raises(ConfigError, match="no person images"):
        VitonFolder(tmp_path)


def test_parse_map_in_colour_is_rejected(tmp_path):
    make_layout(tmp_path, masks="parse")
    colour_map = Image.new("RGB", (WIDTH, HEIGHT), (255, 0, 0))
    colour_map.save(tmp_path / "image-parse-v3" / "00001_00.png")
    data = VitonFolder(tmp_path)
    with pytest.raises(ConfigError, match=r"00001_00\.png.*label map"):
        data[0]


def test_parse_map_without_upper_clothes(tmp_path):
    make_layout(tmp_path, masks="parse")
    Image.new("P", (WIDTH, HEIGHT), 0).save(tmp_path / "image-parse-v3" / "00001_00.png")
    with pytest.raises(MaskError, match=r"00001_00\.png.*upper-clothes"):
        VitonFolder(tmp_path)[0]


def test_agnostic_mask_of_wrong_size(tmp_path):
    make_layout(tmp_path)
    Image.new("L", (10, 10), 255).save(tmp_path / "agnostic-mask" / "00001_00_mask.png")
    with pytest.raises(MaskError, match=r"00001_00_mask\.png.*10x10.*48x64"):
        VitonFolder(tmp_path)[0]
