"""The step-count rule of ``benchmarks dtc-steps``: the fewest count from which up nothing differs."""

from benchmarks.dtc_steps import fewest_stable


def test_the_fewest_stable_count_needs_every_count_above_it_stable():
    differs = {10: {"kid_world"}, 15: set(), 25: {"attr_acc_all"}}
    assert fewest_stable(differs, {"kid_world", "fid_world"}, 50) == 15
    assert fewest_stable(differs, {"kid_world", "attr_acc_all"}, 50) == 50  # 25 differs: nothing below it counts
    assert fewest_stable({10: set(), 25: set()}, {"kid_world"}, 50) == 10
