"""The library's train() refuses, in one line and before the run folder exists, what the CLI refuses."""
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
