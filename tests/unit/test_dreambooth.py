"""DreamBooth on tiny random checkpoints: the identifier token, what trains (full vs LoRA on
attention only or on every layer, convolutions included), the loss falling, resuming, run names,
saving and loading both kinds, switching LoRA garments on one base model, the evaluation's
figures and tables, a user's photo folder, and the command line."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from tryon_lab.data.world import World
from tryon_lab.errors import ConfigError, MaskError
from tryon_lab.training.dreambooth import (
    DreamBoothSettings,
    add_identifier_token,
    build_objective,
    folder_instances,
    item_from_id,
    load_dreambooth,
    save_dreambooth,
    train_dreambooth,
    trainable_parameters,
    world_instances,
)
from tryon_lab.training.losslog import read_losses

RED_TEE = "garment-tee-red-stripes"
SETTINGS = DreamBoothSettings(steps=8, batch_size=2, learning_rate=2e-3, lora_learning_rate=1e-2,
                              token_learning_rate=1e-2, num_class_images=2, class_steps=2, n_people=3,
                              checkpoint_every=4, log_every=1)


@pytest.fixture(scope="module")
def world():
    return World(seed=0, resolution=64)


@pytest.fixture(scope="module")
def instances(world):
    return world_instances(world, item_from_id(RED_TEE), n_people=3, n_scenes=2)


@pytest.fixture(scope="module")
def trained(tiny_pipeline_dir, instances, tmp_path_factory):
    """A full and a LoRA fine-tune of the tiny model on the red striped tee (8 steps each); the LoRA
    one on every layer (Conv2d adapters too) with alpha != rank, so saving must keep the scale."""
    runs = tmp_path_factory.mktemp("dreambooth")
    announced = []
    full = train_dreambooth(tiny_pipeline_dir, instances, runs / "full", SETTINGS, on_step=announced.append)
    lora = train_dreambooth(tiny_pipeline_dir, instances, runs / "lora",
                            replace(SETTINGS, lora_rank=4, lora_alpha=8, lora_targets="all"),
                            class_dir=runs / "full" / "class-images")
    return {"full": full, "lora": lora, "runs": runs, "announced": announced}


def _output(pipe, world, prompt, seed=0):
    sample = world.sample(0)
    return pipe(sample.scene, sample.shape_mask, prompt, num_inference_steps=2, seed=seed, output_type="np").images[0]


def test_identifier_token_is_added_with_the_class_words_embedding(tiny_pipeline):
    tokenizer, encoder = tiny_pipeline.tokenizer, tiny_pipeline.text_encoder
    rows = encoder.get_input_embeddings().num_embeddings
    class_ids = tokenizer("tee", add_special_tokens=False).input_ids
    token_id = add_identifier_token(tokenizer, encoder, "sks", "tee")
    weight = encoder.get_input_embeddings().weight
    assert weight.shape[0] == rows + 1 == len(tokenizer) and token_id == rows
    assert torch.allclose(weight[token_id], weight[class_ids].mean(0))
    ids = tokenizer("a photo of a person wearing a sks tee").input_ids
    assert ids.count(token_id) == 1
    assert token_id not in tokenizer("asks").input_ids  # a whole word only
    assert add_identifier_token(tokenizer, encoder, "sks", "dress") == token_id  # idempotent, row kept
    assert torch.equal(encoder.get_input_embeddings().weight[token_id], weight[token_id])
    for bad in ("tee", "two words", "SKS", ""):
        with pytest.raises(ConfigError, match="identifier token"):
            add_identifier_token(tokenizer, encoder, bad, "tee")


@pytest.mark.parametrize("targets", ["attention", "all"])
def test_lora_trains_a_small_fraction_of_what_full_fine_tuning_trains(tiny_pipeline_dir, targets):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline

    counts = {}
    for rank in (None, 2, 8):
        pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
        token_id = add_identifier_token(pipe.tokenizer, pipe.text_encoder, "sks", "tee")
        objective = build_objective(pipe, token_id, replace(SETTINGS, lora_rank=rank, lora_targets=targets))
        counts[rank] = trainable_parameters(objective)
        names = [n for n, p in objective.named_parameters() if p.requires_grad]
        if rank:
            assert all("lora_" in n or n == "token.delta" for n in names)
            layers = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names if "lora_" in n}
            assert layers >= {"to_q", "to_k", "to_v", "0"}
            assert ({"conv1", "conv2", "proj_in", "time_emb_proj"} <= layers) == (targets == "all")
    width = pipe.text_encoder.config.hidden_size
    assert counts[None] == sum(p.numel() for n, p in pipe.unet.named_parameters() if "lora_" not in n) + width
    assert counts[2] < counts[8] < counts[None] / (10 if targets == "attention" else 2)
    assert (counts[8] - width) == 4 * (counts[2] - width)  # LoRA parameters grow linearly with the rank


def test_unknown_lora_targets_are_a_config_error():
    with pytest.raises(ConfigError, match="lora_targets 'mlp' is not one of attention, transformer, all"):
        replace(SETTINGS, lora_rank=4, lora_targets="mlp").check()


def test_a_lora_run_takes_lora_steps_when_set_and_a_full_run_never_does():
    assert replace(SETTINGS, lora_steps=30).train_steps == 8 and replace(SETTINGS, lora_steps=30).loop().steps == 8
    lora = replace(SETTINGS, lora_rank=4)
    assert lora.train_steps == 8 and replace(lora, lora_steps=30).loop().steps == 30
    with pytest.raises(ConfigError, match="lora_steps must be >= 1"):
        replace(lora, lora_steps=0).check()


def test_run_names_change_with_the_recipe_but_not_with_the_step_count(instances):
    from tryon_lab.training.dreambooth.train import run_name

    name = run_name(instances, SETTINGS)
    assert name.startswith("garment-tee-red-stripes-0-sks-full-")
    assert run_name(instances, replace(SETTINGS, steps=80, checkpoint_every=40)) == name  # resumes and goes on
    lora = replace(SETTINGS, lora_rank=4)
    assert run_name(instances, replace(lora, lora_steps=30)) == run_name(instances, lora)
    assert run_name(instances, replace(SETTINGS, learning_rate=1e-3)) != name
    assert "-lora-" in run_name(instances, replace(SETTINGS, lora_rank=4))


def test_a_few_steps_reduce_the_loss(trained, instances, tiny_pipeline_dir):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.dreambooth.evaluate import denoising_loss

    base = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    add_identifier_token(base.tokenizer, base.text_encoder, instances.token, instances.class_word)
    before = denoising_loss(base, instances.dataset())
    for mode in ("full", "lora"):
        result = trained[mode]
        assert denoising_loss(result.pipe, instances.dataset()) < before, mode
        rows = read_losses(result.run_dir / "losses.csv")
        assert [r["step"] for r in rows] == list(range(1, 9)) and {"instance", "prior"} <= rows[0].keys()
    assert (trained["full"].run_dir / "class-images" / "manifest.json").is_file()
    assert not (trained["lora"].run_dir / "class-images").exists()  # shared through class_dir
    assert trained["lora"].trainable_parameters < trained["full"].trainable_parameters / 2
    assert trained["announced"] == list(range(8))  # on_step before every step


def test_a_run_resumes_from_its_newest_checkpoint(trained, instances, tiny_pipeline_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained["lora"].run_dir, run_dir)
    class_images = sorted((trained["runs"] / "full" / "class-images").iterdir())
    longer = train_dreambooth(tiny_pipeline_dir, instances, run_dir, replace(trained["lora"].settings, steps=10),
                              class_dir=trained["runs"] / "full" / "class-images")
    assert longer.resumed_from == 8 and longer.steps == 10
    assert [r["step"] for r in read_losses(run_dir / "losses.csv")] == list(range(1, 11))
    assert sorted((trained["runs"] / "full" / "class-images").iterdir()) == class_images  # cached, not painted again
    # the resumed adapter started from the trained one, not from a fresh initialisation
    trained_b = {n: p for n, p in trained["lora"].pipe.unet.named_parameters() if "lora_B" in n}
    resumed_b = {n: p for n, p in longer.pipe.unet.named_parameters() if "lora_B" in n}
    fresh_distance = sum(float(p.abs().sum()) for p in trained_b.values())
    moved = sum(float((resumed_b[n] - p).abs().sum()) for n, p in trained_b.items())
    assert moved < fresh_distance


def test_full_fine_tune_saves_as_a_pipeline_folder_that_loads_with_its_token(trained, world, tmp_path):
    result = trained["full"]
    out = save_dreambooth(result, tmp_path / "red-tee", dtype=torch.float32)
    assert (out / "model_index.json").is_file() and (out / "dreambooth.json").is_file()
    assert (out / "reference.png").is_file()
    loaded = load_dreambooth(out, device="cpu")
    loaded.set_progress_bar_config(disable=True)
    assert "sks" in loaded.tokenizer.get_added_vocab()
    prompt = result.instance_prompt
    assert np.allclose(_output(loaded, world, prompt), _output(result.pipe, world, prompt), atol=2 / 255)


def test_lora_saves_as_an_adapter_that_loads_onto_the_base(trained, world, tiny_pipeline_dir, tmp_path):
    result = trained["lora"]
    out = save_dreambooth(result, tmp_path / "red-tee-lora")
    assert {"pytorch_lora_weights.safetensors", "learned_embeds.safetensors", "dreambooth.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "unet").exists()
    loaded = load_dreambooth(out, base=tiny_pipeline_dir, device="cpu")
    loaded.set_progress_bar_config(disable=True)
    prompt = result.instance_prompt
    assert np.allclose(_output(loaded, world, prompt), _output(result.pipe, world, prompt), atol=2 / 255)


def test_adapters_switch_without_reloading_and_restore_the_base(trained, instances, world, tiny_pipeline_dir, tmp_path):
    from tryon_lab.pipelines.loading import load_inpaint_pipeline
    from tryon_lab.training.adapters import GarmentAdapters, finetuned_catalog

    garments = tmp_path / "garments"
    save_dreambooth(trained["lora"], garments / "red")
    blue = world_instances(world, item_from_id("garment-tee-blue-dots"), n_people=3, token="zwx", n_scenes=2)
    other = train_dreambooth(tiny_pipeline_dir, blue, tmp_path / "run-blue", replace(SETTINGS, lora_rank=4, steps=4))
    save_dreambooth(other, garments / "blue")
    entries = finetuned_catalog(garments)
    assert [e.id for e in entries] == ["garment-tee-blue-dots-0-zwx", "garment-tee-red-stripes-0-sks"]
    assert entries[1].colour == "red" and entries[1].file.is_file() and "sks tee" in entries[1].prompt

    pipe = load_inpaint_pipeline(tiny_pipeline_dir, device="cpu")
    pipe.set_progress_bar_config(disable=True)
    prompt = "a photo of a person wearing a red tee"
    base = _output(pipe, world, prompt)
    adapters = GarmentAdapters(pipe)
    adapters.load_all(garments)
    unet = pipe.unet
    assert np.array_equal(_output(pipe, world, prompt), base)  # loaded, not active
    adapters.activate("garment-tee-red-stripes-0-sks")
    red = _output(pipe, world, prompt)
    adapters.activate("garment-tee-blue-dots-0-zwx")
    blue_out = _output(pipe, world, prompt)
    assert not np.allclose(red, base) and not np.allclose(blue_out, red)
    adapters.activate("garment-tee-red-stripes-0-sks")
    assert np.array_equal(_output(pipe, world, prompt), red)
    adapters.deactivate()
    assert np.array_equal(_output(pipe, world, prompt), base)
    assert pipe.unet is unet  # never reloaded
    with adapters.use("garment-tee-blue-dots-0-zwx"):
        assert np.array_equal(_output(pipe, world, prompt), blue_out)
    assert adapters.active is None
    times = adapters.switch_times(repeats=3)
    assert times["mean_s"] < 0.2  # the bar (the mean: one preempted switch on a busy CI box is not a failure)
    with pytest.raises(ConfigError, match="no adapter named"):
        adapters.activate("garment-nope")

    from tryon_lab.training.dreambooth.evaluate import garment_gallery, heldout_cases
    from tryon_lab.training.dreambooth.figures import gallery_grid

    cases = heldout_cases(world, item_from_id(RED_TEE), n_people=1, mask_kinds=("box",))
    adapters.activate("garment-tee-blue-dots-0-zwx")
    gallery = garment_gallery(adapters, cases, steps=2)
    assert list(gallery) == adapters.names and adapters.active == "garment-tee-blue-dots-0-zwx"  # state restored
    assert not np.array_equal(np.asarray(gallery[adapters.names[0]][0]), np.asarray(gallery[adapters.names[1]][0]))
    figure = gallery_grid(cases, gallery, {e.id: Image.open(e.file) for e in entries})
    assert len(figure.axes) == 2 * 3


def test_evaluation_tables_and_figures(trained, world, tiny_pipeline):
    from tryon_lab.training.dreambooth.evaluate import before_after, footprint, heldout_cases
    from tryon_lab.training.dreambooth.figures import _spread, comparison_grid, cost_table, instance_grid, scores_table

    result = trained["full"]
    cases = heldout_cases(world, item_from_id(RED_TEE), n_people=2, mask_kinds=("shape", "brush"))
    scored = before_after(tiny_pipeline, result.pipe, cases, result.instance_prompt,
                          result.instances.class_prompt, steps=2)
    table = scores_table(scored)
    assert "masked PSNR dB" in table and "brush" in table and "all attributes" not in table  # no judge given
    assert len(comparison_grid(cases, scored, rows=3).axes) == 3 * (2 + len(scored))
    assert _spread(cases, 3) == [0, 2, 1]  # the grid takes the mask kinds in turn
    assert len(instance_grid(result.instances).axes) >= len(result.instances.images) + 1
    costs = cost_table([footprint(result), footprint(trained["lora"])])
    assert "lora r4" in costs and "trainable params" in costs


def test_live_loss_plot_draws_nothing_outside_a_notebook(trained):
    from tryon_lab.training.dreambooth.live import LiveLossPlot, loss_figure

    live = LiveLossPlot(trained["full"].run_dir, 8, every_s=0.0)
    live(3)
    live.finish()
    assert live._handle is None
    figure = loss_figure(trained["full"].run_dir / "losses.csv", 8, "full")
    assert figure.axes[0].get_xlim() == (0.0, 8.0) and "step 8 of 8" in figure.axes[0].get_title()


def test_base_model_dir_makes_random_models_once_and_checks_folders(tmp_path):
    from tryon_lab.training.dreambooth.recipe import base_model_dir

    folder = base_model_dir("random:tiny", tmp_path)
    assert (folder / "model_index.json").is_file()
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert base_model_dir("random:tiny", tmp_path) == folder and (folder / "model_index.json").stat().st_mtime_ns == stamp
    assert base_model_dir(str(folder), tmp_path) == folder
    with pytest.raises(ConfigError, match="not 'shipped'"):
        base_model_dir(str(tmp_path / "nothing"), tmp_path)


def _write_folder(folder, world, n=3):
    folder.mkdir()
    for sample in world.instance_samples(item_from_id(RED_TEE), n):
        photo = sample.target.resize((90, 120))  # any size: padded to the model's square
        photo.save(folder / f"p{sample.index}.jpg")
        Image.fromarray(sample.shape_mask).resize((90, 120)).save(folder / f"p{sample.index}_mask.png")


def test_a_users_photo_folder_is_an_instance_set(world, tmp_path):
    _write_folder(tmp_path / "mine", world)
    inst = folder_instances(tmp_path / "mine", 64, token="zwx", class_word="tee")
    assert len(inst.images) == 3 and inst.images[0].size == (64, 64) and inst.masks[0].any()
    assert inst.instance_prompt == "a photo of a person wearing a zwx tee"
    assert inst.class_prompt == "a photo of a person wearing a tee" and len(inst.scenes) == 3


def test_a_bad_photo_folder_gives_a_clear_error(world, tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        folder_instances(tmp_path / "missing", 64, class_word="tee")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no photos found"):
        folder_instances(tmp_path / "empty", 64, class_word="tee")
    _write_folder(tmp_path / "f", world)
    with pytest.raises(ConfigError, match="class word"):
        folder_instances(tmp_path / "f", 64)
    (tmp_path / "f" / "p1_mask.png").rename(tmp_path / "f" / "q_mask.png")
    with pytest.raises(ConfigError, match=r"no mask for p1\.jpg"):
        folder_instances(tmp_path / "f", 64, class_word="tee")
    (tmp_path / "f" / "p1.jpg").unlink()
    with pytest.raises(ConfigError, match=r"q_mask\.png have no photo"):
        folder_instances(tmp_path / "f", 64, class_word="tee")
    (tmp_path / "f" / "q_mask.png").unlink()
    Image.new("L", (30, 30)).save(tmp_path / "f" / "p0_mask.png")
    with pytest.raises(MaskError, match="p0_mask.png"):
        folder_instances(tmp_path / "f", 64, class_word="tee")


def test_cli_trains_a_lora_garment_from_a_photo_folder(world, tiny_pipeline_dir, tmp_path, capsys):
    from tryon_lab.cli import main
    from tryon_lab.training.adapters import finetuned_catalog

    _write_folder(tmp_path / "mine", world)
    status = main(["dreambooth", "--images", str(tmp_path / "mine"), "--class-word", "tee", "--token", "zwx",
                   "--lora-rank", "2", "--profile", "smoke", "--base", str(tiny_pipeline_dir),
                   "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    assert status == 0
    printed = capsys.readouterr().out
    assert "LoRA rank 2" in printed and "a photo of a person wearing a zwx tee" in printed
    (entry,) = finetuned_catalog(tmp_path / "out")
    assert entry.id == "user-mine-zwx" and entry.colour is None and entry.mode == "lora"
    assert main(["dreambooth", "--garment", "garment-nope", "--base", str(tiny_pipeline_dir),
                 "--out", str(tmp_path / "x")]) == 2
    assert "KIND-CATEGORY-COLOUR-PATTERN" in capsys.readouterr().err


def test_a_test_item_is_a_subject_judged_by_identity_on_people_of_the_asked_split(world, tiny_pipeline):
    """DreamBooth personalizes a new garment (a test item no base training saw) on train people;
    its evaluation reads val or test people, never train, and scores identity given the world."""
    from tryon_lab.data.splits import item_split, person_split
    from tryon_lab.errors import ConfigError
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.dreambooth.evaluate import garment_scores, heldout_cases

    item = next(i for i in world.items("garment", "test") if i.category == "tee")
    subject = world_instances(world, item, n_people=2, n_scenes=1)
    assert item_split(item) == "test" and len(subject.images) == 4
    for split in ("val", "test"):
        cases = heldout_cases(world, item, n_people=2, mask_kinds=("shape",), split=split)
        assert {person_split(c.sample.attributes["person_id"]) for c in cases} == {split}
    with pytest.raises(ConfigError, match="never the train people"):
        heldout_cases(world, item, n_people=2, split="train")
    judge = WorldJudge(WorldEncoder.for_world())
    scored = garment_scores(tiny_pipeline, cases, None, judge, steps=2, world=world)
    assert scored.per_sample["identity_acc"].shape == (2,) and "identity_acc_lo" in scored.scores["all"]
    assert "identity_acc" not in garment_scores(tiny_pipeline, cases, None, judge, steps=2).scores["all"]
