"""Run profiles: ``[base]`` is the schema, each profile its overrides; bad keys and values are ConfigErrors."""

import tomllib

import pytest

from tryon_lab.errors import ConfigError
from tryon_lab.profiles import PROFILE_NAMES, load_profile, profiles_from_table, read_profiles_table

TABLE = read_profiles_table()

SMALL = """
[base.train]
steps = 10
learning_rate = 1e-4
variants = ["a", "b"]
[base.train.inner]
size = 4

[tiny]
description = "a test profile"
[tiny.train]
{line}
"""


def _leaves(table: dict, prefix: str = "") -> dict:
    """{dotted key: value} of every non-table value in ``table``."""
    leaves = {}
    for key, value in table.items():
        if isinstance(value, dict):
            leaves.update(_leaves(value, f"{prefix}{key}."))
        else:
            leaves[prefix + key] = value
    return leaves


def _small(line: str):
    return profiles_from_table(tomllib.loads(SMALL.format(line=line)))


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profile_resolves_every_base_key_with_its_type(name):
    base = _leaves(TABLE["base"])
    resolved = _leaves(load_profile(name).sections)
    assert resolved.keys() == base.keys()
    assert {key: type(value) for key, value in resolved.items()} == {key: type(value) for key, value in base.items()}
    assert load_profile(name).description


def test_overrides_win_and_the_rest_comes_from_base():
    profile = _small("steps = 3\ninner = { size = 8 }")["tiny"]
    assert profile["train"] == {"steps": 3, "learning_rate": 1e-4, "variants": ["a", "b"], "inner": {"size": 8}}
    assert profile.description == "a test profile"
    assert type(_small("learning_rate = 1")["tiny"]["train"]["learning_rate"]) is float  # an int fits a float


@pytest.mark.parametrize(("line", "message"), [
    ("stpes = 3", "profile 'tiny': unknown setting 'train.stpes'"),
    ("inner = { sise = 8 }", "profile 'tiny': unknown setting 'train.inner.sise'"),
    ('steps = "3"', "profile 'tiny': setting 'train.steps' must be int"),
    ("steps = 3.0", "profile 'tiny': setting 'train.steps' must be int"),
    ("steps = true", "profile 'tiny': setting 'train.steps' must be int"),
    ("variants = [1]", "profile 'tiny': setting 'train.variants' must be list"),
    ("inner = 4", "profile 'tiny': setting 'train.inner' must be a table"),
])
def test_a_bad_override_is_a_config_error_naming_the_dotted_key(line, message):
    with pytest.raises(ConfigError, match=message):
        _small(line)


def test_reading_a_missing_section_or_key_is_a_config_error_naming_it():
    profile = load_profile("smoke")
    with pytest.raises(ConfigError, match="no section 'nope'"):
        profile["nope"]
    with pytest.raises(ConfigError, match="profile 'smoke' has no setting 'dtc.train.stpes'"):
        profile["dtc"]["train"]["stpes"]
    assert profile["dtc"]["train"].get("stpes") is None and "steps" in profile["dtc"]["train"]
    with pytest.raises(ConfigError, match="unknown profile 'base'"):
        load_profile("base")


def test_profiles_inherit_the_keys_they_do_not_set_from_base():
    quick, full, base = load_profile("quick"), load_profile("full"), TABLE["base"]
    assert quick["pretrain"]["unet"]["ema_decay"] == base["pretrain"]["unet"]["ema_decay"] == 0.999
    assert quick["dtc"]["train"]["warmup_steps"] == 50
    assert quick["pretrain"]["unet"]["milestone_every"] == 1000  # quick's own override
    assert full["pretrain"]["vae"]["polish_learning_rate"] == quick["pretrain"]["vae"]["polish_learning_rate"]
    assert "polish_learning_rate" not in TABLE["full"]["pretrain"]["vae"]


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profiles_palette_widths_are_ones_the_export_takes(name):
    """Notebook 04 palettizes at the profile's widths: a width palettize refuses would stop it midway."""
    from tryon_lab.export.mixed_bits import MIXED_BITS
    from tryon_lab.export.palettize import PALETTE_BITS

    export = load_profile(name)["export"]
    assert set(export["bits"]) <= set(PALETTE_BITS), export["bits"]
    assert set(export["mixed_bits"]) <= set(MIXED_BITS), export["mixed_bits"]


def test_with_settings_overrides_one_section_and_checks_it_like_a_profile():
    from tryon_lab.profiles import with_settings

    quick = load_profile("quick")
    longer = with_settings(quick, "pretrain", {"model": "mini16", "vae": {"steps": 12000}})
    assert (longer["pretrain"]["model"], longer["pretrain"]["vae"]["steps"]) == ("mini16", 12000)
    assert longer["pretrain"]["vae"]["crop"] == quick["pretrain"]["vae"]["crop"]
    assert quick["pretrain"]["vae"]["steps"] != 12000  # the loaded profile is left as it was
    with pytest.raises(ConfigError, match="pretrain.vae.stepz"):
        with_settings(quick, "pretrain", {"vae": {"stepz": 1}})
    with pytest.raises(ConfigError, match="pretrain.vae.steps"):
        with_settings(quick, "pretrain", {"vae": {"steps": "many"}})
