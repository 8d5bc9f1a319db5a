"""Judge v2: identity accuracy (retrieval among caption twins by the motif the judge reads), its
training on train items wearing random motifs, continuing a judge with ``--init``, and the leftover metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tryon_lab.data.attributes import all_items, caption_twins, global_item_index, item_from_id
from tryon_lab.data.datasets import ItemCropDataset
from tryon_lab.data.render.items import Motif, motif_labels
from tryon_lab.data.splits import item_split
from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError, SplitError
from tryon_lab.metrics.judge import WorldJudge, reference_crop
from tryon_lab.metrics.leftover import leftover_share
from tryon_lab.models.world_encoder import WorldEncoder
from tryon_lab.training.world_encoder import JudgeObjective, continue_judge

WORLD = World(0, 128)
TEE = "garment-tee-red-stripes-0"


def pixel_judge() -> WorldJudge:
    """A judge whose identity embedding is the picture's pixels and whose crop of a try-on is the
    whole picture, as its catalog shot is cut: nearest twin = the same picture."""
    judge = WorldJudge(WorldEncoder.for_world())
    judge.encoder.identify = lambda images: F.normalize(images.flatten(1), dim=-1)
    judge.crops = lambda images, masks: torch.stack([reference_crop(image, judge.size) for image in images])
    return judge


def test_identity_hits_find_the_item_among_its_twins_and_miss_a_twin():
    judge = pixel_judge()
    twins = caption_twins(item_from_id(TEE))
    shots = [WORLD.catalog_image(twin) for twin in twins]
    masks = [np.ones((128, 128), dtype=bool)] * len(shots)
    assert judge.identity_hits(shots, masks, twins, WORLD).all()
    # every shot labelled as the next twin: each retrieval now names the wrong item
    shifted = twins[1:] + twins[:1]
    assert not judge.identity_hits(shots, masks, shifted, WORLD).any()


def test_judge_objective_learns_the_painted_motifs_of_train_items_only():
    encoder = WorldEncoder.for_world()
    objective = JudgeObjective(encoder)
    train = ItemCropDataset(WORLD, "train", length=4, random_motifs=True)
    batch = torch.utils.data.default_collate([train[i] for i in range(4)])
    loss, logs = objective(batch)
    assert torch.isfinite(loss) and {"acc_motif_shape", "acc_motif_inner", "acc_colour"} <= set(logs)
    motif_only = JudgeObjective(encoder, attributes=False)
    assert "acc_colour" not in motif_only(batch)[1]
    relabelled = {**batch, "motif": (batch["motif"] + 1) % 6}  # the loss reads the painted motif's labels
    assert not torch.equal(motif_only(relabelled)[0], motif_only(batch)[0])
    test_item = next(item for item in caption_twins(item_from_id(TEE)) if item_split(item) != "train")
    batch["item"][0] = global_item_index(test_item)
    with pytest.raises(SplitError, match="train items only"):
        objective(batch)


def test_random_motifs_repaint_only_the_items_motif_and_never_show_a_held_out_design():
    random = ItemCropDataset(WORLD, "train", length=60, random_motifs=True)
    own = ItemCropDataset(WORLD, "train", length=60)
    held = {}  # caption id -> motif labels of its val and test twins
    for item in all_items():
        if item_split(item) != "train":
            held.setdefault(caption_twins(item)[0].item_id, []).append(motif_labels(WORLD.motif(item)))
    changed = 0
    for index in range(60):
        drawn, plain = random[index], own[index]
        assert drawn["item"] == plain["item"] and drawn["source"] == plain["source"]
        item = all_items()[int(drawn["item"])]
        assert WORLD.item(index) == item
        labels = dict(zip(("shape", "fill", "inner"), drawn["motif"].tolist()))
        assert labels not in held.get(caption_twins(item)[0].item_id, [])
        changed += not torch.equal(drawn["motif"], plain["motif"])
        assert torch.equal(drawn["motif"], random[index]["motif"])  # the same index draws the same motif
    assert changed >= 50
    # the drawn motif is what the target and catalog shot show; scene, masks and the rest stay
    sample = WORLD.sample(7)
    motif = Motif("cross", 0, (255, 255, 255), (0, 0, 0))
    repainted = WORLD.sample(7, motif=motif)
    assert np.array_equal(np.asarray(repainted.scene), np.asarray(sample.scene))
    assert np.array_equal(repainted.item_mask, sample.item_mask)
    differ = (np.asarray(repainted.target) != np.asarray(sample.target)).any(-1)
    assert differ.any() and not (differ & ~sample.item_mask).any()
    assert not np.array_equal(np.asarray(repainted.reference), np.asarray(sample.reference))
    assert np.array_equal(np.asarray(WORLD.sample(7).reference), np.asarray(sample.reference))  # no cached repaint
    with pytest.raises(SplitError, match="random_motifs"):
        ItemCropDataset(WORLD, "val", length=4, evaluation=True, random_motifs=True)


def test_a_judge_that_reads_motifs_right_tells_every_caption_twin_apart(monkeypatch):
    """Twins always differ in their motif's shape, so reading shape and colours right is enough:
    the identity embedding (root distributions) then retrieves every item among its twins."""
    judge = WorldJudge(WorldEncoder.for_world())
    twins = caption_twins(item_from_id(TEE))
    truth = {}  # catalog-shot bytes -> motif labels, so the fake reader knows each picture's motif

    def read(images):
        labels = [truth[image.numpy().tobytes()] for image in images]
        return {name: F.one_hot(torch.tensor([label[name] for label in labels]), head.out_features).float() * 20
                for name, head in judge.encoder.motif_heads.items()}

    for twin in twins:
        truth[reference_crop(WORLD.catalog_image(twin), judge.size).numpy().tobytes()] = motif_labels(WORLD.motif(twin))
    monkeypatch.setattr(judge.encoder, "motif_logits", read)
    monkeypatch.setattr(judge, "crops", lambda images, masks: torch.stack([reference_crop(i, judge.size) for i in images]))
    shots = [WORLD.catalog_image(twin) for twin in twins]
    embeddings = judge.encoder.identify(judge.crops(shots, None))
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(len(twins)))
    assert len({motif_labels(WORLD.motif(twin))["shape"] for twin in twins}) == len(twins)  # twins differ in shape
    assert judge.identity_hits(shots, [None] * len(shots), twins, WORLD).all()


def test_init_continues_a_judge_with_its_attribute_network_frozen(tmp_path):
    saved = WorldEncoder.for_world()
    saved.save_pretrained(tmp_path / "judge")
    encoder = continue_judge(tmp_path / "judge")
    assert all(torch.equal(value, saved.state_dict()[name]) for name, value in encoder.state_dict().items())
    trainable = {name for name, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("motif_") for name in trainable)
    WorldEncoder(num_colours=7).save_pretrained(tmp_path / "other")
    with pytest.raises(ConfigError, match="another world: its num_colours is 7"):
        continue_judge(tmp_path / "other")
    from diffusers import AutoencoderKL

    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4).save_pretrained(tmp_path / "vae")
    with pytest.raises(ConfigError, match="holds a AutoencoderKL"):
        continue_judge(tmp_path / "vae")
    with pytest.raises(ConfigError, match="--init must name a saved world encoder"):
        continue_judge(tmp_path / "nothing")


def test_leftover_is_one_for_the_old_garment_zero_for_the_truth_nan_without_uncovered_pixels():
    uncovered = [s for s in (WORLD.sample(i, "test", kind="garment") for i in range(40))
                 if not np.isnan(leftover_share(s.scene, s.scene, s.target, s.shape_mask, s.item_mask))]
    assert len(uncovered) >= 5
    for s in uncovered:
        assert leftover_share(s.scene, s.scene, s.target, s.shape_mask, s.item_mask) == 1.0
        assert leftover_share(s.target, s.scene, s.target, s.shape_mask, s.item_mask) == 0.0
    s = uncovered[0]
    assert np.isnan(leftover_share(s.target, s.target, s.target, s.shape_mask, s.item_mask))


def test_min_snr_weights_only_the_nearly_clean_timesteps_down():
    from diffusers import DDPMScheduler

    from tryon_lab.training.inpaint import InpaintObjective

    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    steps = torch.tensor([0, 50, 500, 999])
    weights = InpaintObjective(None, None, None, scheduler, snr_gamma=5.0).timestep_weights(steps)
    assert weights[0] < 0.01 and weights[1] < 1.0 and torch.allclose(weights[2:], torch.ones(2))
    plain = InpaintObjective(None, None, None, scheduler).timestep_weights(steps)
    assert torch.equal(plain, torch.ones(4))


def test_training_masks_include_the_new_garment_showing_more_skin():
    """The U-Net learns to remove what the mask covers: many training masks hold uncovered pixels
    (old garment in the scene, skin or background in the target)."""
    from tryon_lab.data.datasets import InpaintDataset
    from tryon_lab.metrics.leftover import MIN_UNCOVERED, uncovered_pixels

    dataset = InpaintDataset(WORLD, "train", length=60)
    garments = [WORLD.sample(i, "train") for i in range(60) if WORLD.kind_of(i) == "garment"]
    uncovered = [uncovered_pixels(s.scene, s.target, s.shape_mask, s.item_mask).sum() >= MIN_UNCOVERED
                 for s in garments]
    assert np.mean(uncovered) >= 0.3
    masks = [dataset[i]["mask"][0].numpy().astype(bool) for i in range(60) if WORLD.kind_of(i) == "garment"]
    covered = [(m & uncovered_pixels(s.scene, s.target, s.shape_mask, s.item_mask)).sum() > 0
               for m, s in zip(masks, garments)]
    assert np.mean(covered) >= 0.3  # the training mask covers them (shape and box masks both do)
