"""When to stop: checkpoints/best.pt keeps the lowest-FID snapshot, --early-stop ends a stale run."""
import pytest

from facegan.checkpoint import load_checkpoint
from facegan.commands.cli import main
from facegan.config import ConfigError
from facegan.eval import metrics
from facegan.training.loop import train


def test_best_pt_is_the_snapshot_of_the_lowest_fid(tiny_cfg, scripted_fids, tmp_path):
    scripted_fids(50.0, 30.0, 40.0)
    cfg = tiny_cfg(epochs=3, eval_every=1)
    summary = train(cfg, progress=False)
    best = load_checkpoint(cfg.run_dir / "checkpoints/best.pt")
    assert best["epoch"] == 2 and summary["best"]["epoch"] == 2 and summary["best"]["fid"] == 30.0
    epoch2 = load_checkpoint(cfg.run_dir / "checkpoints/epoch_002.pt")
    assert all((best["G"][k] == epoch2["G"][k]).all() for k in best["G"])
    assert load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")["epoch"] == 3
    assert "best.pt" in (cfg.run_dir / "report.html").read_text()
    out = tmp_path / "best.png"  # the sampling commands take it like any snapshot
    assert main(["sample", "--checkpoint", str(cfg.run_dir / "checkpoints/best.pt"), "--n", "4",
                 "--out", str(out)]) == 0 and out.is_file()


def test_early_stop_ends_after_n_evaluations_without_a_better_fid(tiny_cfg, scripted_fids):
    scripted_fids(50.0, 30.0, 40.0, 35.0, 20.0, 10.0)
    cfg = tiny_cfg(epochs=6, eval_every=1, early_stop=2)
    summary = train(cfg, progress=False)
    assert summary["epochs"] == 4 and summary["best"]["epoch"] == 2


def test_early_stop_counts_across_a_resume(tiny_cfg, scripted_fids):
    scripted_fids(50.0, 30.0, 40.0, 35.0, 20.0)
    cfg = tiny_cfg(epochs=6, eval_every=1, early_stop=2)
    train(cfg, progress=False, should_stop=lambda done: done == 3)  # one stale evaluation so far
    summary = train(cfg, resume=True, progress=False)
    assert summary["epochs"] == 4 and summary["best"] == {"epoch": 2, "fid": 30.0,
                                                         "checkpoint": str(cfg.run_dir / "checkpoints/best.pt")}


def test_a_fresh_run_in_the_same_folder_drops_the_old_best(tiny_cfg, scripted_fids):
    scripted_fids(50.0)
    cfg = tiny_cfg(epochs=1, eval_every=1)
    train(cfg, progress=False)
    train(tiny_cfg(epochs=1), progress=False, overwrite=True)  # no evaluation this time
    assert not (cfg.run_dir / "checkpoints/best.pt").exists()


def test_early_stop_without_evaluations_is_refused(tiny_cfg):
    with pytest.raises(ConfigError, match="add --eval-every"):
        tiny_cfg(early_stop=3)


def test_early_stop_is_decided_on_an_evaluation_a_crash_cut_short(tiny_cfg, monkeypatch):
    import json

    fids = [50.0, 30.0, 40.0]

    def crash_on_the_fourth(*args, **kwargs):
        if not fids:
            raise RuntimeError("killed mid-evaluation")  # after epoch 4's latest.pt, before its row
        return {"fid": fids.pop(0), "kid": 0.0, "kid_std": 0.0, "swd": 0.0, "n": 8}
    monkeypatch.setattr(metrics, "evaluate_generator", crash_on_the_fourth)
    cfg = tiny_cfg(epochs=6, eval_every=1, early_stop=2)
    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, progress=False)
    assert load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")["epoch"] == 4
    fids.append(35.0)  # epoch 4, evaluated by the resume: the second without a better FID
    said = []
    summary = train(cfg, resume=True, progress=False, log=said.append)
    assert summary["epochs"] == 4 and summary["best"]["epoch"] == 2  # stopped as an unbroken run would
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if "fid" in row] == [1, 2, 3, 4]
    assert any(line.startswith("early stop:") for line in said)
