"""`facegan sweep` (facegan/commands/search.py): an Optuna study whose trials are tiny training runs scored by FID.

Inception features cost seconds per evaluation on one CPU thread, so most tests score
trials with a stand-in for `metrics.evaluate_generator` (a pixel-mean gap, cheap and
deterministic); one test runs the real FID path end to end.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from facegan.commands import search
from facegan.commands.cli import main
from facegan.eval import metrics

optuna = pytest.importorskip("optuna", reason="facegan sweep needs optuna (pip install -r requirements.txt)")


@pytest.fixture
def quick_fid(monkeypatch):
    """Training-time evaluation without Inception: same row keys, a score that depends on G."""
    def scores(G, real_images, n, z_size, cache_dir, seed=0, **kwargs):
        fake = metrics.generated_images(G, 8, z_size, seed + 1)
        gap = abs(float(fake.mean()) - float(np.asarray(real_images[:8]).mean()))
        return {"fid": gap, "kid": 0.0, "kid_std": 0.0, "swd": 0.0, "n": n}
    monkeypatch.setattr(metrics, "evaluate_generator", scores)


def sweep_args(tmp_path, *extra, epochs=2, trials=3):
    return ["sweep", "--out", str(tmp_path / "sweep"), "--preset", "tiny", "--quiet", "--trials", str(trials),
            "--set", f"cache_dir={tmp_path / 'cache'}", "--set", f"epochs={epochs}", "--set", "eval_n=16",
            "--set", "device=cpu", "--param", "lr_d=1e-4:1e-3:log", "--param", "beta1=0.0,0.5", *extra]


def load(tmp_path):
    folder = tmp_path / "sweep"
    return optuna.load_study(study_name="sweep", storage=f"sqlite:///{folder / 'study.db'}")


def fid_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "fid" in r]


def test_a_three_trial_study(tmp_path, quick_fid, capsys):
    assert main(sweep_args(tmp_path, "--pruner", "none")) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "sweep"
    study = load(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    for t in study.trials:
        run_dir = folder / f"trial-{t.number:03d}"
        cfg = json.loads((run_dir / "config.json").read_text())
        assert (cfg["lr_d"], cfg["beta1"], cfg["eval_every"]) == (t.params["lr_d"], t.params["beta1"], 1)
        assert t.value == min(r["fid"] for r in fid_rows(run_dir))  # the lowest FID, not the last
    lines = (folder / "trials.csv").read_text().splitlines()
    assert lines[0].startswith("number,state,fid,best_epoch,") and "lr_d" in lines[0] and len(lines) == 4
    for png in ("optimization_history.png", "param_importances.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = study.best_trial
    assert f"best: trial {best.number}, FID {best.value:.2f}" in out
    assert f"python -m facegan sample --checkpoint {folder / f'trial-{best.number:03d}' / 'checkpoints'}" in out


def test_a_sweep_at_a_fixed_time_budget_scores_each_trial_once_at_its_end(tmp_path, quick_fid, capsys):
    assert main(sweep_args(tmp_path, "--set", "minutes=0.01", "--pruner", "none", epochs=0, trials=2)) == 0
    out = capsys.readouterr().out
    assert "each trial trains 0.01 minutes and is scored once, on the weights it ends with" in out
    for t in load(tmp_path).trials:
        run_dir = tmp_path / "sweep" / f"trial-{t.number:03d}"
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        (scored,) = [r for r in rows if "fid" in r]
        assert t.state.name == "COMPLETE" and t.value == scored["fid"]
        assert scored["step"] == max(r["step"] for r in rows)  # the weights the budget ended with


def test_a_pruned_trial_stops_its_run_early(tmp_path, quick_fid, monkeypatch):
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)
    assert main(sweep_args(tmp_path, epochs=3, trials=1)) == 0
    (trial,) = load(tmp_path).trials
    assert trial.state.name == "PRUNED" and list(trial.intermediate_values) == [1]
    run_dir = tmp_path / "sweep" / "trial-000"
    assert [r["epoch"] for r in fid_rows(run_dir)] == [1]  # stopped after epoch 1 of 3
    assert not (run_dir / "samples" / "epoch_002.png").exists()
    assert "pruned after epoch 1" in (tmp_path / "sweep" / "trials.csv").read_text()


def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(tmp_path, quick_fid, monkeypatch, capsys):
    real_train = search.train

    def ctrl_c_in_trial_1(cfg, should_stop=None, **kwargs):
        def stop(epochs_done):
            verdict = should_stop(epochs_done)
            if cfg.name == "trial-001":
                raise KeyboardInterrupt  # after epoch 1's checkpoint and FID
            return verdict
        return real_train(cfg, should_stop=stop, **kwargs)

    monkeypatch.setattr(search, "train", ctrl_c_in_trial_1)
    assert main(sweep_args(tmp_path, "--pruner", "none")) == 130
    assert "run the same command again" in capsys.readouterr().err
    monkeypatch.setattr(search, "train", real_train)
    folder = tmp_path / "sweep"
    finished = (folder / "trial-000" / "checkpoints" / "latest.pt").stat().st_mtime_ns
    first_try = fid_rows(folder / "trial-001")
    load(tmp_path).ask()  # and a trial left RUNNING, as by a killed process

    assert main(sweep_args(tmp_path, "--pruner", "none")) == 0
    study = load(tmp_path)
    states = [(t.state.name, t.user_attrs.get("retry_of"), t.user_attrs.get("run_dir")) for t in study.trials]
    assert states == [("COMPLETE", None, "trial-000"), ("FAIL", None, "trial-001"), ("FAIL", None, None),
                      ("COMPLETE", 1, "trial-001"), ("COMPLETE", 2, "trial-002")]
    assert study.trials[3].params == study.trials[1].params  # the retry keeps its values...
    retried = fid_rows(folder / "trial-001")
    assert retried[0] == first_try[0] and [r["epoch"] for r in retried] == [1, 2]  # ...and continues its run
    assert (folder / "trial-000" / "checkpoints" / "latest.pt").stat().st_mtime_ns == finished

    assert main(sweep_args(tmp_path)) == 0  # nothing left to do
    assert len(load(tmp_path).trials) == 5
    capsys.readouterr()
    assert main(sweep_args(tmp_path, epochs=3)) == 1  # trials of another length would not compare
    assert "another base config (epochs: 2 then, 3 now)" in capsys.readouterr().err


def test_two_machines_share_one_study_through_the_storage(tmp_path, quick_fid):
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    def worker(folder, trials):
        argv = sweep_args(tmp_path, "--pruner", "none", "--study", "shared", "--storage", url, trials=trials)
        argv[argv.index("--out") + 1] = str(tmp_path / folder)
        return main(argv)

    assert worker("a", 1) == 0
    busy = optuna.load_study(study_name="shared", storage=url).ask()  # another machine's trial, at work
    busy.set_user_attr("worker", "elsewhere:/sweeps/c")
    assert worker("b", 2) == 0  # the study's count: one more finished trial is needed
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert trials[busy.number].state.name == "RUNNING"  # not failed and retried by this machine
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == 2 and (tmp_path / "b" / done[1].user_attrs["run_dir"] / "config.json").is_file()


def test_a_sweep_of_real_fids(tmp_path):
    assert main(sweep_args(tmp_path, epochs=1, trials=1)) == 0
    (trial,) = load(tmp_path).trials
    (row,) = fid_rows(tmp_path / "sweep" / "trial-000")
    assert trial.state.name == "COMPLETE" and trial.value == row["fid"] > 0 and row["eval_n"] == 16


@pytest.mark.parametrize("argv,says", [
    (["--param", "no_such_field=0.1:0.3"], "'no_such_field' is not a TrainConfig field"),
    (["--param", "lr_g=1e-3:1e-5"], "is empty"),
    (["--param", "beta2=0:0.9:log"], "log-scale range needs LOW > 0"),
    (["--param", "beta2=0.9:1"], "beta2=1.0: must lie in [0, 1)"),
    (["--param", "conv_dim=8.5:16"], "not a whole number"),
    (["--param", "image_size=32:64"], "takes a list of choices"),
    (["--param", "lr_g=1e-3"], "two or more different choices"),
    (["--param", "eval_n=16,32"], "eval_n cannot be searched"),
    (["--param", "lr_g"], "write FIELD=LOW:HIGH"),
    (["--param", "lr_d=1e-4:1e-3:log"], "lr_d is searched twice"),
    (["--set", "lerning_rate=1"], "not a TrainConfig field"),
    (["--set", "epochs=0"], "epochs=0"),
    (["--space", "missing.json"], "cannot read it"),
    (["--space", "{bad"], "is not JSON"),
    (["--space", '{"lr_g": [1, 2]}'], '{"low": L, "high": H}'),
    (["--set", "eval_every=3"], "would never be scored"),
])
def test_bad_specs_are_refused_in_one_line(tmp_path, capsys, argv, says):
    if argv[0] == "--space" and argv[1] != "missing.json":
        (tmp_path / "space.json").write_text(argv[1])
        argv = ["--space", str(tmp_path / "space.json")]
    assert main(sweep_args(tmp_path, *argv)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err and says in err, err
    assert not (tmp_path / "sweep" / "study.db").exists()


def test_the_space_file_and_flags_combine(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"lr_g": {"low": 1e-5, "high": 1e-3, "log": True}, "loss": "bce,ls",
                                "d_steps": {"choices": [1, 2]}, "hflip": "true,false"}))
    space = {p.name: p for p in search.read_space(path, ["batch_size=8:32"])}
    assert space["lr_g"] == search.Param("lr_g", low=1e-5, high=1e-3, log=True)
    assert space["loss"].choices == ("bce", "ls") and space["d_steps"].choices == (1, 2)
    assert space["hflip"].choices == (True, False) and space["batch_size"] == search.Param("batch_size", 8, 32)


def test_without_optuna_the_sweep_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "optuna", None)
    assert main(sweep_args(tmp_path)) == 1
    err = capsys.readouterr().err.strip()
    assert "pip install 'facegan[sweep]'" in err and "\n" not in err


# ---------------------------------------------------------------- a read-only or immutable study database

def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def read_only_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: ") and "Traceback" not in err, err
    assert "it is read-only" in err and "nothing was lost" in err and "run the same command again" in err, err
    return err


@pytest.fixture
def one_trial_sweep(tmp_path, quick_fid, capsys):
    assert main(sweep_args(tmp_path, "--pruner", "none", epochs=1, trials=1)) == 0
    capsys.readouterr()
    return tmp_path / "sweep"


def test_a_read_only_study_database_is_one_line_and_left_as_it_was(tmp_path, one_trial_sweep, capsys):
    """SQLite's own read-only mode: what a chmod 0o444 or chattr +i file gives a user who is not root."""
    before = snapshot(one_trial_sweep)
    url = f"sqlite:///file:{one_trial_sweep / 'study.db'}?mode=ro&uri=true"
    assert main(sweep_args(tmp_path, "--pruner", "none", "--storage", url, epochs=1, trials=2)) == 1
    err = read_only_error(capsys)
    assert url in err and "attempt to write a readonly database" in err
    after = snapshot(one_trial_sweep)
    assert {k: v for k, v in after.items() if k.name != ".lock"} == {k: v for k, v in before.items()
                                                                     if k.name != ".lock"}


def _writes_refused(when=lambda: True):
    """Every write SQLite is asked for fails as on a read-only file or folder, while `when()`;
    returns the function that ends it."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if when() and statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            raise sqlite3.OperationalError("attempt to write a readonly database")

    event.listen(Engine, "before_cursor_execute", refuse)
    return lambda: event.remove(Engine, "before_cursor_execute", refuse)


def test_a_database_that_turns_read_only_mid_sweep_loses_nothing(tmp_path, quick_fid, monkeypatch, capsys):
    """Trial 0 completes, then every write fails: one line; the study keeps trial 0, and the
    same command, once the database is writable again, runs trial 1 only."""
    done = []
    real_after = search._after_trial
    monkeypatch.setattr(search, "_after_trial", lambda *a: done.append(1) or real_after(*a))
    stop_refusing = _writes_refused(when=lambda: bool(done))
    try:
        assert main(sweep_args(tmp_path, "--pruner", "none", epochs=1, trials=2)) == 1
    finally:
        stop_refusing()
    read_only_error(capsys)
    folder = tmp_path / "sweep"
    assert [t.state.name for t in load(tmp_path).trials] == ["COMPLETE"]
    trial_0 = snapshot(folder / "trial-000")
    assert main(sweep_args(tmp_path, "--pruner", "none", epochs=1, trials=2)) == 0
    assert [t.state.name for t in load(tmp_path).trials] == ["COMPLETE", "COMPLETE"]
    assert snapshot(folder / "trial-000") == trial_0  # not trained again


def test_a_read_only_sweep_folder_names_the_database_not_trials_csv(tmp_path, one_trial_sweep, monkeypatch, capsys):
    """A read-only folder: SQLite cannot write its journal there, and trials.csv cannot be
    replaced either; the line says why the sweep stopped (the database)."""
    import errno

    from facegan.utils.atomic import output_error

    before = snapshot(one_trial_sweep)

    def read_only_place(path, text):
        raise output_error(path, PermissionError(errno.EACCES, "Permission denied"))

    monkeypatch.setattr(search, "atomic_write_text", read_only_place)
    stop_refusing = _writes_refused()
    try:
        assert main(sweep_args(tmp_path, "--pruner", "none", epochs=1, trials=2)) == 1
    finally:
        stop_refusing()
    err = read_only_error(capsys)
    assert str(one_trial_sweep / "study.db") in err and "trials.csv" not in err
    assert snapshot(one_trial_sweep) == before


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes through chmod 0o444 and 0o555: the tests above emulate them")
@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_chmod_read_only_database_or_folder_is_one_line(tmp_path, one_trial_sweep, capsys, what):
    import os

    db = one_trial_sweep / "study.db"
    target, mode = (db, 0o444) if what == "file" else (one_trial_sweep, 0o555)
    before = snapshot(one_trial_sweep)
    os.chmod(target, mode)
    try:
        assert main(sweep_args(tmp_path, "--pruner", "none", epochs=1, trials=2)) == 1
    finally:
        os.chmod(target, 0o644 if what == "file" else 0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: "), err
    kept = lambda snap: {k: v for k, v in snap.items() if k.name != ".lock"}  # noqa: E731
    assert kept(snapshot(one_trial_sweep)) == kept(before)
