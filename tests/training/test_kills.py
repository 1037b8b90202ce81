"""A SIGKILL at any point of an epoch's end loses nothing: the resume redoes what was cut short.

A run's end of epoch draws the samples and writes their grid, saves latest.pt, keeps it as
epoch_XXX.pt, evaluates (the FID row, then best.pt for a new best) and refreshes the views. Each
test kills a run (os._exit(9) in a subprocess, which skips every finally and atexit as a SIGKILL
does) at one of those points, resumes it here, and holds the run folder to an uninterrupted
run's: the same FID rows, one per epoch; best.pt holding the weights of the best row's epoch;
train_samples.pkl and report.html holding every epoch.

The FID is scripted per epoch (so which epoch is best is known), plus a term from G's weights
(so an evaluation redone on other weights would not match).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from facegan.checkpoint import load_checkpoint
from facegan.config import preset
from facegan.eval import metrics
from facegan.generate.sample import load_train_samples
from facegan.training.loop import train, weights_fingerprint

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3
SCRIPTED = {1: 50.0, 2: 30.0, 3: 40.0}  # epoch 2 is the best; epoch 3 is not


def fake_evaluate(G, *args, **kwargs):
    """A scripted FID for the epoch Evaluation.run scores, nudged by G's weights."""
    epoch = sys._getframe(1).f_locals["state"].epoch
    nudge = int(weights_fingerprint(G)[:6], 16) / 16 ** 6 / 1000
    return {"fid": SCRIPTED[epoch] + nudge, "kid": 0.0, "kid_std": 0.0, "swd": 0.0, "n": 8}


def config(out: Path):
    return preset("tiny", out=str(out), cache_dir=str(out.parent / "cache"), epochs=EPOCHS, eval_every=1,
                  keep_checkpoints=EPOCHS)


def arm(point: str, epoch: int) -> None:
    """Make the end of `epoch` die at `point` (in this process): os._exit(9), as a SIGKILL would."""
    import facegan.eval.report as report
    from facegan.training.snapshots import Snapshots
    from facegan.training.steplog import StepLog
    from facegan.training.views import Views

    metrics.evaluate_generator = fake_evaluate
    current = {}

    def die(where: str) -> None:
        sys.stdout.flush()
        os._exit(9)

    def wrap(owner, name, before: bool, when=lambda *a, **k: True):
        original = getattr(owner, name)

        def killer(*args, **kwargs):
            if current.get("epoch") == epoch and before and when(*args, **kwargs):
                die(name)
            result = original(*args, **kwargs)
            if current.get("epoch") == epoch and not before and when(*args, **kwargs):
                die(name)
            return result
        setattr(owner, name, killer)

    original_flush = StepLog.flush

    def flush(self, state):  # the epoch whose end is under way
        current["epoch"] = state.epoch
        return original_flush(self, state)
    StepLog.flush = flush
    fid_row = lambda self, row: "fid" in row  # noqa: E731
    {
        "grid": lambda: wrap(Views, "write_grid", before=True),
        "checkpoint": lambda: wrap(Snapshots, "save", before=False),
        "keep_epoch": lambda: wrap(Snapshots, "keep_epoch", before=False),
        "evaluation": lambda: wrap(StepLog, "record", before=True, when=fid_row),
        "fid_row": lambda: wrap(StepLog, "record", before=False, when=fid_row),
        "best": lambda: wrap(Snapshots, "keep_best", before=False),
        "views": lambda: wrap(Views, "refresh", before=True),
        "report": lambda: wrap(report, "write_report", before=True),
    }[point]()


def killed_run(out: Path, point: str, epoch: int) -> subprocess.CompletedProcess:
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import torch
        torch.set_num_threads({torch.get_num_threads()})
        from pathlib import Path
        from tests.training.test_kills import arm, config
        arm({point!r}, {epoch})
        from facegan.training.loop import train
        train(config(Path({str(out)!r})), progress=False)
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run: the run folder every killed and resumed run must match."""
    patch = pytest.MonkeyPatch()
    patch.setattr(metrics, "evaluate_generator", fake_evaluate)
    try:
        cfg = config(tmp_path_factory.mktemp("straight") / "run")
        train(cfg, progress=False, log=lambda *a: None)
    finally:
        patch.undo()
    return cfg.run_dir


def rows_without_time(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "time"} for row in rows]


def weights(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    return {"epoch": ckpt["epoch"], "step": ckpt["step"], "G": ckpt["G"], "G_ema": ckpt["G_ema"]}


def assert_same(a: dict, b: dict) -> None:
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])
    for key in ("G", "G_ema"):
        if a[key] is not None or b[key] is not None:
            assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key])


def assert_matches(run_dir: Path, straight: Path) -> None:
    fid_rows = [row for row in rows_without_time(run_dir) if "fid" in row]
    assert [row["epoch"] for row in fid_rows] == list(range(1, EPOCHS + 1))  # one per epoch, none twice
    assert rows_without_time(run_dir) == rows_without_time(straight)
    best_row = min(fid_rows, key=lambda row: row["fid"])
    best = weights(run_dir / "checkpoints/best.pt")
    assert (best["epoch"], best["step"]) == (best_row["epoch"], best_row["step"]) == (2, best["step"])
    assert_same(best, weights(straight / f"checkpoints/epoch_{best_row['epoch']:03d}.pt"))
    for name in ["latest.pt", *(f"epoch_{e:03d}.pt" for e in range(1, EPOCHS + 1))]:
        assert_same(weights(run_dir / "checkpoints" / name), weights(straight / "checkpoints" / name))
    samples, expected = load_train_samples(run_dir / "train_samples.pkl"), load_train_samples(
        straight / "train_samples.pkl")
    assert len(samples) == EPOCHS and all((a == b).all() for a, b in zip(samples, expected))
    report = (run_dir / "report.html").read_text()
    assert f"{EPOCHS} epochs" in report and all(f"<figcaption>epoch {e}</figcaption>" in report
                                                 for e in range(1, EPOCHS + 1))
    assert [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("point, epoch", [
    ("grid", 3), ("checkpoint", 3), ("keep_epoch", 3),
    ("evaluation", 2), ("evaluation", 3),  # killed mid-evaluation: after latest.pt, before the FID row
    ("fid_row", 2), ("best", 2),  # after the row of a new best, before and after best.pt
    ("views", 2), ("views", 3), ("report", 3),  # report: after train_samples.pkl, before report.html
])
def test_a_kill_at_the_end_of_an_epoch_loses_nothing_on_resume(point, epoch, straight, tmp_path, monkeypatch):
    out = tmp_path / "run"
    done = killed_run(out, point, epoch)
    assert done.returncode == 9, done.stderr[-2000:]  # killed where the test meant it to be
    monkeypatch.setattr(metrics, "evaluate_generator", fake_evaluate)
    said = []
    summary = train(config(out), resume=True, progress=False, log=said.append)
    assert summary["epochs"] == EPOCHS and summary["best"]["epoch"] == 2
    assert_matches(out, straight)
    redone = [line for line in said if "evaluating it now" in line]
    assert len(redone) == (point in ("checkpoint", "keep_epoch", "evaluation"))  # killed after latest.pt, unscored
    # A second resume of the finished run changes nothing
    rows = (out / "metrics.jsonl").read_text()
    train(config(out), resume=True, progress=False, log=lambda *a: None)
    assert (out / "metrics.jsonl").read_text() == rows
    assert_matches(out, straight)


def test_a_best_pt_that_is_not_the_best_rows_is_replaced_by_the_kept_snapshot(straight, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(metrics, "evaluate_generator", fake_evaluate)
    train(config(out), progress=False, log=lambda *a: None)
    best = out / "checkpoints/best.pt"
    best.unlink()  # a hard link to epoch_002.pt: writing through it would change that too
    best.write_bytes((out / "checkpoints/epoch_001.pt").read_bytes())  # not epoch 2's weights
    train(config(out), resume=True, progress=False, log=lambda *a: None)
    assert_matches(out, straight)
    (out / "checkpoints/epoch_002.pt").unlink()
    best.unlink()
    best.write_bytes((out / "checkpoints/epoch_001.pt").read_bytes())
    said = []
    train(config(out), resume=True, progress=False, log=said.append)
    assert not best.exists() and any("no snapshot of that epoch is kept" in line for line in said)


def test_a_deleted_metrics_jsonl_is_started_again_and_the_checkpoints_epoch_scored_again(straight, tmp_path,
                                                                                           monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(metrics, "evaluate_generator", fake_evaluate)
    train(config(out), progress=False, log=lambda *a: None, should_stop=lambda done: done == 2)
    (out / "metrics.jsonl").unlink()
    said = []
    summary = train(config(out), resume=True, progress=False, log=said.append)
    assert sum("metrics.jsonl is missing" in line for line in said) == 1
    fid_rows = [row for row in rows_without_time(out) if "fid" in row]
    assert fid_rows == [row for row in rows_without_time(straight) if "fid" in row and row["epoch"] >= 2]
    assert summary["best"]["epoch"] == 2
    assert_same(weights(out / "checkpoints/best.pt"), weights(straight / "checkpoints/epoch_002.pt"))
