"""The library's train() refuses, in one line and before the run folder exists, what the CLI refuses;
and a signal is honoured within a batch of G_ema's statistics, however many it measures."""
import pytest

from facegan.commands.cli import main
from facegan.errors import CheckpointError, ConfigError
from facegan.training.loop import train


@pytest.mark.parametrize("device", ["mps", "cuda:7"])
def test_a_device_this_machine_lacks_is_refused_before_the_run_folder(tiny_cfg, device):
    cfg = tiny_cfg(device=device)
    with pytest.raises(ConfigError, match=device.split(":")[0]) as caught:
        train(cfg, progress=False, log=lambda *a: None)
    assert "\n" not in str(caught.value)
    assert not cfg.run_dir.exists()


def test_extending_a_growing_run_through_the_library_keeps_its_growth_span(tiny_cfg):
    cfg = tiny_cfg(grow_from=8, epochs=2)
    train(cfg, progress=False, log=lambda *a: None)
    longer = tiny_cfg(grow_from=8, epochs=4)
    with pytest.raises(CheckpointError, match="--grow-epochs 2"):
        train(longer, resume=True, progress=False, log=lambda *a: None)
    summary = train(tiny_cfg(grow_from=8, epochs=4, grow_epochs=2), resume=True, progress=False, log=lambda *a: None)
    assert summary["epochs"] == 4


def test_a_deeply_nested_config_json_on_resume_is_one_line(tiny_cfg, capsys):
    cfg = tiny_cfg()
    train(cfg, progress=False, log=lambda *a: None)
    saved = cfg.run_dir / "config.json"
    saved.write_text("[" * 100_000 + "]" * 100_000)
    before = {p: p.read_bytes() for p in cfg.run_dir.rglob("*") if p.is_file()}
    assert main(["train", "--out", str(cfg.run_dir), "--resume", "--epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "config.json" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert {p: p.read_bytes() for p in cfg.run_dir.rglob("*") if p.is_file()} == before


def test_a_signal_while_g_emas_statistics_are_measured_stops_within_a_batch_and_resumes_exactly(
        tiny_cfg, monkeypatch):
    import pickle
    import signal
    from pathlib import Path

    from facegan.training import ema
    from facegan.training.stopping import RunInterrupted

    options = dict(epochs=3, ema_decay=0.9, ema_norm_samples=64 * ema.NORM_BATCH)
    whole = train(tiny_cfg(out=str(tiny_cfg().run_dir) + "-whole", **options), progress=False, log=lambda *a: None)

    calls = {"n": 0, "after_signal": 0}
    original = ema.sample_z

    def signal_in_second_measurement(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 64 + 3:  # three batches into the end of epoch 2's measurement
            signal.raise_signal(signal.SIGTERM)
        elif calls["n"] > 64 + 3:
            calls["after_signal"] += 1
        return original(*args, **kwargs)

    cfg = tiny_cfg(**options)
    monkeypatch.setattr(ema, "sample_z", signal_in_second_measurement)
    with pytest.raises(RunInterrupted):
        train(cfg, progress=False, log=lambda *a: None)
    assert calls["after_signal"] <= 1  # not the 61 batches left
    monkeypatch.setattr(ema, "sample_z", original)
    resumed = train(cfg, resume=True, progress=False, log=lambda *a: None)

    assert resumed["weights_sha1"] == whole["weights_sha1"]
    samples = (cfg.run_dir / "train_samples.pkl").read_bytes()
    assert len(pickle.loads(samples)) == 3 and samples == (Path(whole["run_dir"]) / "train_samples.pkl").read_bytes()
