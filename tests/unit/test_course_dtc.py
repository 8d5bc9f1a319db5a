"""The helpers behind notebook 03 on tiny random models: which DTC is shown (shipped, fallback,
baseline), the hint's parts, the anatomy tables, FiLM statistics and figures, try-ons, the
ablation beside the paper, and the step-time comparison."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image

from tryon_lab.course.dtc.anatomy import count_parameters, encoder_drift, parameter_rows, skip_names, skip_rows
from tryon_lab.course.dtc.cost import meets_bar, step_times, timing_rows
from tryon_lab.course.dtc.film import FILM_HEADERS, film_figure, film_rows, level_mask
from tryon_lab.course.dtc.hint import MASKED_GRAY, draw_box, heldout_pairs, hint_figure, hint_parts
from tryon_lab.course.dtc.models import (
    course_dtc,
    course_judge,
    dtc_note,
    dtc_record_folder,
    load_dtc,
    optional_baseline,
)
from tryon_lab.course.dtc.paper_tables import (
    PAPER_ROWS,
    PAPER_TABLE_1,
    PAPER_TABLE_2,
    PAPER_TABLES,
    paper_comparison,
    paper_table_markdown,
    read_ablation,
)
from tryon_lab.course.dtc.tryons import dtc_logs, loss_figure, run_tryons, tryon_figure
from tryon_lab.data.masks import largest_rectangle
from tryon_lab.errors import ConfigError
from tryon_lab.metrics.timing import RECOMPUTE
from tryon_lab.models.dtc import HintModulation, skip_channels
from tryon_lab.pipelines.dtc import DTCPipeline
from tryon_lab.pipelines.latents import pil_to_tensor
from tryon_lab.plotting import NotebookFigure


@pytest.fixture(scope="module")
def base(tiny_base):
    return tiny_base


@pytest.fixture(scope="module")
def fresh(base):
    torch.manual_seed(0)
    return load_dtc("fresh", base)


@pytest.fixture(scope="module")
def pairs(base):
    return heldout_pairs(base.resolution, 2)


SCORES = {
    "baseline": {"fid_world": 60.0, "ref_similarity": 0.70},
    "baseline+perceptual": {"fid_world": 50.0, "ref_similarity": 0.72},
    "add": {"fid_world": 49.0},
    "film+perceptual": {"fid_world": 40.0, "ref_similarity": 0.80},
}


@pytest.fixture()
def data_with_shipped_dtc(tmp_path, monkeypatch, base, tiny_pipeline_dir):
    """A data folder whose models/ holds the tiny base and a DTC parts folder on it, with a
    training record (ablation) and loss logs, like data/models/dtc."""
    from tryon_lab.training.dtc_recipe import save_dtc_parts

    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    os.symlink(tiny_pipeline_dir, models / "tiny")
    folder = models / "dtc"
    folder.mkdir()
    save_dtc_parts(DTCPipeline.from_base(base, "film"), folder, "tiny", "film")
    (folder / "training.json").write_text(json.dumps({"ablation": SCORES}))
    (folder / "logs").mkdir()
    (folder / "logs" / "film_perceptual_losses.csv").write_text("step,loss\n10,0.5\n20,0.4\n")
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "data"))
    return folder


# --- which DTC --------------------------------------------------------------------------------


def test_fresh_models_have_the_requested_hint_path(base, fresh):
    assert fresh.hint_encoder.config.fusion == "film"
    assert type(fresh.scheduler).__name__ == "DDIMScheduler"
    assert load_dtc("fresh", base, fusion=None).hint_encoder is None
    assert load_dtc("trained", base, trained=fresh) is fresh
    with pytest.raises(ConfigError, match="training section"):
        load_dtc("trained", base)
    with pytest.raises(ConfigError, match="train-dtc"):
        load_dtc("no/such/folder", base)


def test_the_shipped_dtc_is_used_when_present_and_the_fallback_otherwise(base, fresh, data_with_shipped_dtc, tmp_path,
                                                                         monkeypatch):
    settings = {"model": "shipped", "fallback": "trained"}
    used, pipe = course_dtc(settings, base, trained=fresh)
    assert used == "shipped" and pipe is not fresh and pipe.hint_encoder is not None
    assert dtc_record_folder("shipped") == data_with_shipped_dtc
    assert read_ablation(dtc_record_folder("shipped")) == SCORES
    assert list(dtc_logs(data_with_shipped_dtc)) == ["film_perceptual"]
    assert list(dtc_logs(data_with_shipped_dtc, ["baseline", "film+perceptual"])) == ["film+perceptual"]
    assert "shipped DTC" in dtc_note(used, pipe)
    # no shipped model: the fallback, with no record and no logs
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path / "empty"))
    used, pipe = course_dtc(settings, base, trained=fresh)
    assert (used, pipe) == ("trained", fresh)
    assert dtc_record_folder("shipped") is None and dtc_record_folder("trained") is None
    assert read_ablation(None) is None and dtc_logs(None) == {}
    assert "trained above" in dtc_note(used, pipe)


def test_a_pipeline_folder_loads_by_path_and_a_baseline_must_have_no_hint(base, fresh, tmp_path):
    no_hint = load_dtc("fresh", base, fusion=None)
    no_hint.save_pretrained(tmp_path / "baseline")
    fresh.save_pretrained(tmp_path / "film")
    pipe, note = optional_baseline(str(tmp_path / "baseline"), base)
    assert pipe.hint_encoder is None and "baseline" in note
    assert optional_baseline("", base)[0] is None
    missing, note = optional_baseline(str(tmp_path / "absent"), base)
    assert missing is None and "No no-hint baseline" in note
    assert optional_baseline("fresh", base)[0].hint_encoder is None
    with pytest.raises(ConfigError, match="has a hint encoder"):
        optional_baseline(str(tmp_path / "film"), base)


def test_the_judge_is_optional(tmp_path, monkeypatch):
    monkeypatch.setenv("TRYON_LAB_DATA", str(tmp_path))
    assert course_judge() is None


# --- the hint ---------------------------------------------------------------------------------


def test_hint_parts_follow_the_pipeline(pairs, fresh):
    garment, product = pairs
    assert (garment.kind, product.kind) == ("garment", "product") and garment.split == "test"
    parts = hint_parts(garment.scene, garment.shape_mask, garment.reference)
    assert parts.box == largest_rectangle(garment.shape_mask)
    masked, scene = np.asarray(parts.masked), np.asarray(garment.scene)
    assert (masked[garment.shape_mask] == MASKED_GRAY).all()
    assert np.array_equal(masked[~garment.shape_mask], scene[~garment.shape_mask])
    hint = np.asarray(parts.hint)
    top, left, bottom, right = parts.box
    outside = np.ones(hint.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert not hint[outside].any() and hint[top:bottom, left:right].any()
    # the same hint the pipeline builds
    made = fresh.make_hints([garment.reference], [garment.shape_mask])[0]
    assert torch.equal(made, pil_to_tensor(parts.hint))
    figure = hint_figure({"a": parts, "b": hint_parts(product.scene, product.box_mask, product.reference)})
    assert isinstance(figure, NotebookFigure) and len(figure.axes) == 10


def test_draw_box_outlines_exactly_the_box():
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    out = np.asarray(draw_box(image, (2, 3, 8, 12), colour=(255, 0, 0)))
    border = np.zeros((10, 20), bool)
    border[2:8, 3:12] = True
    border[3:7, 4:11] = False
    assert (out[border] == (255, 0, 0)).all() and not out[~border].any()


# --- anatomy ----------------------------------------------------------------------------------


def test_skip_names_match_skip_channels(base, fresh, pairs):
    assert skip_names(base.unet) == ["conv_in", "down1.res1", "down1.down", "down2.res1", "mid"]
    deeper = UNet2DConditionModel(sample_size=8, in_channels=9, out_channels=4, block_out_channels=(8, 16, 16),
                                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                                  up_block_types=("UpBlock2D", "UpBlock2D", "CrossAttnUpBlock2D"),
                                  layers_per_block=2, cross_attention_dim=16, norm_num_groups=8)
    assert len(skip_names(deeper)) == len(skip_channels(deeper)) == 10
    sample = pairs[0]
    modulation = fresh.hint_modulation(sample.scene, sample.shape_mask, sample.reference)
    rows = skip_rows(fresh, modulation)
    assert [r[1] for r in rows] == skip_names(fresh.unet)
    assert [r[2] for r in rows] == [t.shape[1] for t in modulation.shifts]
    assert rows[0][3] == "8x8" and rows[-1][3] == "4x4"


def test_parameter_rows_add_up(fresh):
    rows = {r[0]: r for r in parameter_rows(fresh)}
    hint_millions = sum(r[2] for name, r in rows.items() if name.startswith("hint_encoder."))
    assert hint_millions == pytest.approx(count_parameters(fresh.hint_encoder) / 1e6, abs=1e-2)
    assert rows["unet"][2] == round(count_parameters(fresh.unet) / 1e6, 3)
    assert rows["unet"][3] == round(count_parameters(fresh.unet) * 2 / 2**20, 2)
    assert len(parameter_rows(DTCPipeline.from_base(fresh, None))) == 3


def test_encoder_drift_is_zero_for_a_copy_and_names_the_block_that_moved(base):
    pipe = load_dtc("fresh", base)
    drift = dict(encoder_drift(pipe))
    assert set(drift) == {"conv_in", "down_blocks.0", "down_blocks.1", "mid_block"}
    assert not any(drift.values())
    with torch.no_grad():
        pipe.hint_encoder.encoder.down_blocks[1].resnets[0].conv1.weight.add_(0.1)
    drift = dict(encoder_drift(pipe))
    assert drift["down_blocks.1"] > 0 and drift["conv_in"] == drift["mid_block"] == 0


# --- FiLM -------------------------------------------------------------------------------------


def _modulation(spatial: bool = True, with_scales: bool = True) -> HintModulation:
    size = (4, 4) if spatial else (1, 1)
    shifts = (torch.zeros(1, 2, *size), torch.zeros(1, 3, *size))
    scales = (torch.ones(1, 2, *size), torch.ones(1, 3, *size))
    if spatial:
        shifts[0][:, :, :2, :2] = 0.5  # modulation only where the item goes (top-left quarter)
        shifts[0][:, :, 3, 3] = 0.1
        scales[1][:, :, :2, :2] = 1.2
        scales[1][:, :, 3, 3] = 0.9
    return HintModulation(shifts, scales if with_scales else None)


def test_film_rows_summarise_gamma_beta_and_where_they_act(fresh, pairs):
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True  # the top-left quarter at every level
    rows = film_rows(_modulation(), ["a", "b"], mask)
    assert len(rows[0]) == len(FILM_HEADERS)
    assert rows[0][1:4] == [1.0, 1.0, 1.0] and rows[0][4] == 0.0 and rows[0][6] == 0.5
    assert rows[1][1] == 0.9 and rows[1][3] == 1.2
    assert rows[0][7] == pytest.approx(0.5 / (0.1 / 12), rel=1e-2) and rows[1][7] > 1
    assert film_rows(_modulation(), ["a", "b"])[0][7] == ""  # no mask, no ratio
    assert film_rows(_modulation(spatial=False), ["a", "b"], mask)[0][7] == ""
    assert film_rows(_modulation(with_scales=False), ["a", "b"], mask)[0][1:4] == ["", "", ""]
    sample = pairs[0]
    identity = film_rows(fresh.hint_modulation(sample.scene, sample.shape_mask, sample.reference),
                            skip_names(fresh.unet), sample.shape_mask)
    assert all(r[1:7] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] for r in identity)


def test_level_mask_marks_a_cell_when_any_pixel_is_masked():
    mask = np.zeros((8, 8), bool)
    mask[5, 6] = True
    cells = level_mask(mask, (2, 2))
    assert cells.tolist() == [[False, False], [False, True]]


@pytest.mark.parametrize("spatial, with_scales, rows", [(True, True, 2), (False, True, 2), (True, False, 1)])
def test_film_figure_draws_one_panel_per_level_and_map(spatial, with_scales, rows):
    hint = Image.new("RGB", (8, 8))
    figure = film_figure(_modulation(spatial, with_scales), ["a", "b"], hint=hint)
    assert isinstance(figure, NotebookFigure) and len(figure.axes) == rows * 3
    assert figure._repr_png_().startswith(b"\x89PNG")
    assert len(film_figure(_modulation(spatial, with_scales), ["a", "b"]).axes) == rows * 2


# --- training, try-ons, scores ---------------------------------------------------------------


def test_loss_figure_marks_the_points_of_a_short_run(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("step,loss,diffusion\n10,0.5,0.5\n20,0.4,0.4\n")
    long = tmp_path / "long.csv"
    long.write_text("step,loss\n" + "".join(f"{10 * i},{1 / i}\n" for i in range(1, 60)))
    figure = loss_figure({"short": short, "long": long})
    left, right = figure.axes
    assert left.get_title() == "short" and all(line.get_marker() == "o" for line in left.get_lines())
    assert any(line.get_marker() in ("None", None, "") for line in right.get_lines())


def test_tryons_and_their_figure(fresh, pairs):
    baseline = DTCPipeline.from_base(fresh, None)
    baseline.set_progress_bar_config(disable=True)
    outputs = run_tryons({"DTC": fresh, "baseline": baseline}, pairs, steps=1, guidance_scale=2.0)
    assert list(outputs) == ["DTC", "baseline"] and all(len(v) == 2 for v in outputs.values())
    assert outputs["DTC"][0].size == pairs[0].scene.size
    figure = tryon_figure(pairs, outputs)
    assert len(figure.axes) == 2 * 6
    assert [ax.get_title() for ax in figure.axes[:6]][3:] == ["DTC", "baseline", "ground truth"]


# --- the ablation and the paper ---------------------------------------------------------------


def test_paper_comparison_measures_changes_against_the_no_hint_model_with_perceptual_loss():
    table = paper_comparison(SCORES)
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(lines) == set(SCORES)
    assert "-20.0%" in lines["film+perceptual"] and "Table 1: DTC, FiLM (final)" in lines["film+perceptual"]
    assert all(cell in lines["film+perceptual"] for cell in ("-14.0%", "88.14", "80.00"))
    assert "+0.0%" in lines["baseline+perceptual"] and "PBE_best" in lines["baseline+perceptual"]
    assert "+4.2%" in lines["baseline"] and "+20.0%" in lines["baseline"]  # Table 2 against "+ perceptual loss"
    assert "(no such row)" in lines["add"]
    partial = paper_comparison({"film+perceptual": {"ref_similarity": 0.5}})
    assert "| film+perceptual |  |  | 50.00 |" in partial


def test_paper_tables_are_all_listed():
    table = paper_table_markdown()
    assert table.count("\n") == 2 + len(PAPER_TABLE_1) + len(PAPER_TABLE_2) - 1
    assert "| Table 2 | DTC | 90.14 | 5.39 |" in table
    for table_name, row in PAPER_ROWS.values():
        assert row in PAPER_TABLES[table_name][0]


def test_read_ablation_needs_a_record(tmp_path):
    assert read_ablation(tmp_path) is None
    (tmp_path / "training.json").write_text(json.dumps({"steps": 3}))
    assert read_ablation(tmp_path) is None


# --- timing -----------------------------------------------------------------------------------


def test_timing_rows_and_the_bar():
    results = {"text": {"step_s": 0.010, "call_s": 1.0}, "dtc": {"step_s": 0.011, "call_s": 1.15},
               "dtc" + RECOMPUTE: {"step_s": 0.016, "call_s": 1.5}}
    rows = timing_rows(results, "text")
    assert rows == [["text", 10.0, 1.0, 1.0], ["dtc", 11.0, 1.15, 1.15], ["dtc", 16.0, 1.5, 1.5]]
    assert meets_bar(results, "dtc", "text") and not meets_bar(results, "dtc" + RECOMPUTE, "text")


def test_step_times_runs_every_pipeline_on_one_thread_and_restores_threads(base, fresh, pairs):
    threads = torch.get_num_threads()
    times = step_times({"text": base, "dtc": fresh, "dtc" + RECOMPUTE: fresh}, pairs[0], steps=2, repeats=1,
                          guidance_scale=2.0)
    assert set(times) == {"text", "dtc", "dtc" + RECOMPUTE}
    assert all(t["step_s"] > 0 and t["call_s"] > 0 for t in times.values())
    assert torch.get_num_threads() == threads


def test_the_deviation_table_names_every_difference_with_the_recipes_numbers():
    from tryon_lab.course.dtc.paper_tables import DEVIATIONS, deviations_markdown
    from tryon_lab.profiles import load_profile

    section = load_profile("quick")["dtc"]
    table = deviations_markdown(section, 128)
    assert len(table.splitlines()) == 2 + len(DEVIATIONS)
    assert f"{section['train']['steps']} steps of batch {section['train']['batch_size']}" in table
    assert f"rank {section['train']['unet_lora_rank']}" in table and "{" not in table
    assert "{" not in deviations_markdown(load_profile("smoke")["dtc"], 64)  # defaults where the profile is silent


def test_the_decoder_ceiling_scores_renderings_as_drawn_and_after_the_round_trip(tiny_base):
    from tryon_lab.course.dtc.ceiling import ceiling_note
    from tryon_lab.metrics.baselines import decoder_ceiling
    from tryon_lab.metrics.judge import WorldJudge
    from tryon_lab.metrics.stats import Interval
    from tryon_lab.models.world_encoder import WorldEncoder
    from tryon_lab.training.dtc.curve import BARS

    torch.manual_seed(0)
    judge = WorldJudge(WorldEncoder.for_world())
    ceiling = decoder_ceiling(tiny_base.vae, judge, samples=6)
    assert ceiling["samples"] == 6 and ceiling["split"] == "val" and ceiling["chance"] == judge.chance_identity
    for key in ("truth", "round_trip"):
        assert 0 <= ceiling[key].lo <= ceiling[key].value <= ceiling[key].hi <= 1
    assert f"in **{ceiling['round_trip']}** after" in ceiling_note(ceiling)
    low = dict(ceiling, round_trip=Interval(0.3, 0.25, BARS["identity_acc"] - 0.01))
    assert "this decoder, not the U-Net's training, keeps identity under the bar" in ceiling_note(low)
    high = dict(ceiling, round_trip=Interval(0.9, 0.85, 0.95))
    assert "leaves room to reach the bar" in ceiling_note(high)


def test_the_latent_budget_counts_each_configs_latent_numbers():
    from tryon_lab.course.dtc.ceiling import latent_budget

    mini, mini16, sd15 = latent_budget()
    assert mini == ["mini", "128x128", "4x16x16", 1024, 48.0]
    assert mini16[2:] == ["16x16x16", 4096, 12.0]
    assert sd15[2:] == ["4x64x64", 16384, 48.0]
