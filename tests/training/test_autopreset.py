"""--preset auto: the recipe whose measured FID is lowest at the images a budget buys here."""
import math

import pytest

from facegan.config import ConfigError, preset
from facegan.training import autopreset
from facegan.training.autopreset import choose_preset, curve, fid_at, rank

# A faked ledger: a narrow net that is good early, a wide one that is better with many images.
TABLE = {"image_size": 64, "recipes": {
    "cpu": [{"images": 100_000, "fid": 80.0, "seeds": 2, "from": "a"},
            {"images": 500_000, "fid": 40.0, "seeds": 3, "from": "b"}],
    "quality": [{"images": 60_000, "fid": 120.0, "seeds": 2, "from": "c"},
                {"images": 200_000, "fid": 60.0, "seeds": 3, "from": "d"},
                {"images": 1_600_000, "fid": 25.0, "seeds": 1, "from": "e"}],
}}


def test_a_curve_merges_measurements_at_about_the_same_images_by_their_seeds():
    points = curve([{"images": 100_000, "fid": 50.0, "seeds": 1}, {"images": 110_000, "fid": 20.0, "seeds": 2},
                    {"images": 400_000, "fid": 10.0, "seeds": 1}])
    assert points == [(pytest.approx(106_666.67), 30.0), (400_000, 10.0)]


def test_fid_is_interpolated_in_log_images_and_held_past_the_measured_ends():
    points = curve(TABLE["recipes"]["cpu"])
    middle = math.sqrt(100_000 * 500_000)  # halfway in log images
    assert fid_at(points, middle) == (pytest.approx(60.0), "measured")
    assert fid_at(points, 5_000_000) == (40.0, "most")  # no gain beyond what was measured
    assert fid_at(points, 10_000) == (80.0, "fewest")
    assert fid_at(points, 105_000) == (pytest.approx(80.0, abs=1.5), "measured")


def test_few_images_pick_the_narrow_recipe_and_many_the_wide_one():
    slow = rank({"cpu": 300, "quality": 100}, 30, TABLE)  # a CPU: 540k and 180k images
    assert [c.preset for c in slow] == ["cpu", "quality"] and slow[0].images == 540_000
    fast = rank({"cpu": 9000, "quality": 2800}, 10, TABLE)  # a GPU: 5.4M and 1.7M images
    assert [c.preset for c in fast] == ["quality", "cpu"] and fast[0].fid == 25.0


def test_choose_preset_says_why_in_one_line():
    said = []
    assert choose_preset({"minutes": 30}, rates={"cpu": 300, "quality": 100}, table=TABLE,
                         log=said.append) == "cpu"
    assert len(said) == 1 and said[0].startswith("--preset auto: on ")
    assert ", 30 min buy ~540k images with cpu (FID ~40), ~180k images with quality (FID ~65) -> the cpu " \
           "recipe" in said[0]


def test_auto_needs_a_budget_and_the_measured_image_size():
    with pytest.raises(ConfigError, match=r"--preset auto picks the recipe that is best for a time budget; "
                                          r"add --minutes M"):
        choose_preset({}, rates={}, table=TABLE)
    with pytest.raises(ConfigError, match=r"measured at 64 px; drop --image-size 32 or name a preset"):
        choose_preset({"minutes": 5, "image_size": 32}, rates={}, table=TABLE)


def test_recipes_the_users_flags_rule_out_are_not_candidates():
    table = {**TABLE, "recipes": {**TABLE["recipes"], "course": TABLE["recipes"]["cpu"]}}
    # WGAN's penalty refuses BatchNorm in D: course (BatchNorm) drops out, the spectral-norm recipes stay
    assert set(autopreset.candidates({"minutes": 5, "loss": "wgan"}, table)) == {"cpu", "quality"}
    with pytest.raises(ConfigError, match="no measured recipe accepts these flags"):
        autopreset.candidates({"minutes": 5, "loss": "wgan", "d_norm": "batch"}, table)


def test_the_train_command_picks_a_recipe_for_a_budget_without_a_preset(monkeypatch, capsys):
    from tests.training.test_budget import cli_config

    monkeypatch.setattr(autopreset, "measure_rates", lambda configs: {name: 300.0 if name == "cpu" else 100.0
                                                                     for name in configs})
    for flags in (("--minutes", "30"), ("--preset", "auto", "--minutes", "30")):
        assert cli_config(*flags) == preset("cpu", minutes=30.0, epochs=0)
        assert "-> the cpu recipe" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="add --minutes M"):
        cli_config("--preset", "auto")


def test_the_rates_are_timed_on_the_step_itself():
    cfg = preset("tiny", image_size=64, minutes=1, epochs=0)
    rates = autopreset.measure_rates({"tiny": cfg}, seconds=0.2)
    assert rates["tiny"] > 0


def test_recipes_that_differ_in_learning_rates_alone_are_timed_once(monkeypatch):
    from facegan.training import rates

    timed = []
    monkeypatch.setattr(rates, "step_rate", lambda cfg, *a, **k: (timed.append(cfg.name) or 100.0 + len(timed), 0))
    configs = {"cpu": preset("cpu"), "cpu-fast": preset("cpu-fast"), "quality": preset("quality")}
    measured = autopreset.measure_rates(configs, seconds=0.1)
    assert len(timed) == 2 and measured["cpu"] == measured["cpu-fast"] != measured["quality"]
