"""--minutes M trains for M minutes: the budget alone, the epochs alone, or whichever comes first."""
import json
import re
import time

import pytest

from facegan.checkpoint import load_checkpoint
from facegan.commands.cli import main
from facegan.config import ConfigError, TrainConfig, preset
from facegan.training import steplog
from facegan.training.loop import train
from facegan.training.steplog import forecast

SECONDS = 2.0  # the budget of the runs below


def run_cli(tmp_path, capsys, *flags):
    out = tmp_path / "run"
    started = time.time()
    assert main(["train", "--preset", "tiny", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                 *flags]) == 0
    said = capsys.readouterr()
    return json.loads((out / "config.json").read_text()), said.out, said.err, time.time() - started


@pytest.fixture
def quick_forecast(monkeypatch):
    monkeypatch.setattr(steplog, "FORECAST_AFTER_S", 0.2)


def test_a_budget_alone_trains_until_it_is_spent(tmp_path, capsys, quick_forecast):
    cfg, out, err, took = run_cli(tmp_path, capsys, "--minutes", str(SECONDS / 60))
    assert cfg["epochs"] == 0  # the preset's 1 epoch yields to the budget
    assert took >= SECONDS
    assert re.search(r"the 0.0333\d*-min budget ends this run after about [\d,]+ images", out)
    done = re.search(r"done \(the 0.0333\d*-min time budget is spent\): (\d+) steps", out)
    assert done and int(done.group(1)) > 4  # more than the preset's epoch of 4 steps
    # The bar's total is the budget's steps, not open-ended: its last frame reads n/total with total near n
    last = re.findall(r"(\d+)/(\d+) \[", err)[-1]
    assert abs(int(last[1]) - int(last[0])) <= 0.15 * int(last[0])


def test_epochs_alone_end_the_run(tmp_path, capsys):
    cfg, out, _, _ = run_cli(tmp_path, capsys, "--epochs", "2")
    assert (cfg["epochs"], cfg["minutes"]) == (2, 0.0)
    assert "done (2 epochs trained): 8 steps" in out and "budget" not in out


def test_with_both_the_epochs_end_a_short_run_and_it_says_so(tmp_path, capsys, quick_forecast, monkeypatch):
    monkeypatch.setattr(steplog, "FORECAST_AFTER_S", 0.0)
    cfg, out, _, took = run_cli(tmp_path, capsys, "--epochs", "3", "--minutes", "5")
    assert (cfg["epochs"], cfg["minutes"]) == (3, 5.0)
    assert re.search(r"img/s, the 3 epochs end this run in about 0:\d\d, within the 5-min budget", out)
    assert "done (3 epochs trained): 12 steps" in out and took < 60


def test_with_both_the_budget_ends_a_long_run_and_it_says_so(tmp_path, capsys, quick_forecast):
    cfg, out, _, took = run_cli(tmp_path, capsys, "--epochs", "100000", "--minutes", str(SECONDS / 60))
    assert cfg["epochs"] == 100000 and took >= SECONDS
    assert re.search(r"budget ends this run at about step [\d,]+ of the 100000 epochs' 400,000", out)
    assert "time budget is spent)" in out


def test_a_budget_run_resumed_with_a_budget_trains_on(tiny_cfg):
    cfg = tiny_cfg(epochs=0, minutes=0.01)
    first = train(cfg, progress=False)
    again = train(tiny_cfg(epochs=0, minutes=0.01), resume=True, progress=False)
    assert first["ended_by"] == again["ended_by"] == "budget" and again["steps"] > first["steps"]


def test_forecast_names_what_ends_the_run():
    cfg = preset("tiny", epochs=5, minutes=30)
    # 10 steps/s of 16 images: 5 epochs of 100 steps take 50 s, well within 30 minutes
    assert forecast(cfg, step=0, total_steps=500, steps_per_s=10, seconds_left=1800, images_per_step=16) == (
        "at 160 img/s, the 5 epochs end this run in about 0:50, within the 30-min budget")
    # at 0.1 steps/s the 30 minutes buy 180 more steps
    assert forecast(cfg, step=20, total_steps=500, steps_per_s=0.1, seconds_left=1800, images_per_step=16) == (
        "at 2 img/s, the 30-min budget ends this run at about step 200 of the 5 epochs' 500")
    unbounded = preset("tiny", epochs=0, minutes=30)
    assert forecast(unbounded, step=0, total_steps=None, steps_per_s=10, seconds_left=1800,
                    images_per_step=16) == "at 160 img/s, the 30-min budget ends this run after about 288,000 " \
                                           "images (18,000 steps)"


def cli_config(*flags):
    from facegan.commands.cli import build_parser
    from facegan.commands.train import config_from_args

    return config_from_args(build_parser().parse_args(["train", *flags]))


def test_the_cli_reads_a_budget_without_epochs_as_the_budget_alone():
    assert cli_config("--preset", "demo", "--minutes", "30").epochs == 0  # a preset's epochs are a default, too
    assert cli_config("--preset", "cpu", "--minutes", "30", "--epochs", "7").epochs == 7
    assert cli_config("--preset", "demo").epochs == 16 and cli_config().epochs == 5


def test_epochs_zero_needs_a_budget_and_no_schedule_over_the_run():
    with pytest.raises(ConfigError, match=r"epochs=0 trains until the time budget is spent; give --minutes M"):
        TrainConfig(epochs=0)
    for option in (dict(lr_decay="linear"), dict(instance_noise=0.1), dict(schedule="decay"),
                   dict(grow_from=16, image_size=32)):
        with pytest.raises(ConfigError, match=r"is scheduled over the run's length, .* give --epochs N"):
            TrainConfig(epochs=0, minutes=1, **option)
    TrainConfig(epochs=0, minutes=1, schedule="gated")  # gated reads D's accuracy, not the run's length


def test_a_spent_budget_is_scored_on_the_weights_it_ends_with(tiny_cfg, scripted_fids):
    scripted_fids(50.0)
    cfg = tiny_cfg(epochs=0, minutes=0.02, eval_every=1000)  # no epoch is due: only the end is scored
    summary = train(cfg, progress=False)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in rows if "fid" in r]
    assert len(scored) == 1 and scored[0]["step"] == summary["steps"]
    best = load_checkpoint(cfg.run_dir / "checkpoints/best.pt")
    assert best["step"] == summary["steps"] and summary["best"]["fid"] == 50.0
