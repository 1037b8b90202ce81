"""Claiming a run folder: facegan replaces only what it made, and a run killed before its
first checkpoint is started again, never sent back and forth between --resume and a rerun."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facegan.commands.cli import main
from facegan.errors import RunFolderError
from facegan.training.runfolder import MARKER, RunFolder, is_facegan_run
from tests.conftest import ROOT, one_line_error, tiny

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "v0.1.0" / "run"


def resume(out, *extra) -> list[str]:
    return ["train", "--out", str(out), "--resume", "--quiet", *extra]


def snapshot(folder: Path) -> dict:
    """Every file under folder, by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def other_project(folder: Path) -> dict:
    """A project of the user's own that happens to use a run's names."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model": "resnet50", "lr": 0.1}))
    (folder / "checkpoints" / "latest.pt").write_bytes(b"my own weights, not facegan's")
    (folder / "checkpoints" / "model-epoch3.ckpt").write_bytes(os.urandom(256))
    (folder / "metrics.jsonl").write_text('{"acc": 0.9}\n')
    (folder / "notes.txt").write_text("three weeks of work\n")
    return snapshot(folder)


# ---------------------------------------------------------------- the marker

def test_a_fresh_run_carries_the_marker_and_overwrite_replaces_it(tmp_path, capsys):
    run = tmp_path / "R"
    assert main(tiny(run)) == 0
    assert (run / MARKER).is_file() and is_facegan_run(run)
    (run / "mine.txt").write_text("kept")  # not a name a run writes: --overwrite leaves it
    assert main(tiny(run, "--overwrite", "--seed", "1")) == 0
    assert (run / MARKER).is_file() and (run / "checkpoints/latest.pt").is_file()
    assert (run / "mine.txt").read_text() == "kept"


@pytest.mark.parametrize("flags", [(), ("--overwrite",)], ids=["plain", "overwrite"])
def test_a_folder_that_is_not_a_facegan_run_is_refused_and_left_byte_for_byte(tmp_path, capsys, flags):
    project = tmp_path / "project"
    before = other_project(project)
    capsys.readouterr()
    assert main(tiny(project, *flags)) == 1
    one_line_error(capsys, str(project), "not a facegan run folder", "--out")
    assert snapshot(project) == before  # nothing added, nothing removed, nothing changed
    assert not (project / MARKER).exists()


def test_resume_of_a_folder_that_is_not_a_facegan_run_is_refused(tmp_path):
    project = tmp_path / "project"
    before = other_project(project)
    with pytest.raises(RunFolderError, match="not a facegan run folder"):
        with RunFolder(project, resume=True):
            pass
    assert snapshot(project) == before


@pytest.mark.parametrize("spoil", ["bad-json", "deep-json", "unknown-key", "foreign-checkpoint", "foreign-file"])
def test_a_0_1_run_is_recognised_strictly(tmp_path, spoil):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    assert is_facegan_run(run)  # 0.1 wrote no marker
    config = run / "config.json"
    if spoil == "bad-json":
        config.write_text("{not json")
    elif spoil == "deep-json":
        config.write_text("[" * 100_000 + "]" * 100_000)
    elif spoil == "unknown-key":
        config.write_text(json.dumps({**json.loads(config.read_text()), "model": "resnet50"}))
    elif spoil == "foreign-checkpoint":
        (run / "checkpoints/latest.pt").write_bytes(b"PK\x03\x04 someone else's zip")
    else:
        (run / "checkpoints/model.ckpt").write_bytes(b"x")
    assert not is_facegan_run(run)


def test_a_0_1_run_is_replaced_with_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    assert main(tiny(run)) == 1
    one_line_error(capsys, "already holds a run", "--resume", "--overwrite")
    assert main(tiny(run, "--overwrite")) == 0
    assert (run / MARKER).is_file()
    assert (run / "checkpoints/latest.pt").read_bytes() != (FIXTURE_RUN / "checkpoints/latest.pt").read_bytes()


# ---------------------------------------------------------------- killed before the first checkpoint

KILL_AT_FIRST_CHECKPOINT = """
import os, signal, sys
from facegan.training import snapshots
snapshots.save_checkpoint = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from facegan.commands.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_before_its_first_checkpoint_is_started_again_with_overwrite(tmp_path, capsys):
    run = tmp_path / "R"
    killed = subprocess.run([sys.executable, "-c", KILL_AT_FIRST_CHECKPOINT, *tiny(run)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert (run / MARKER).is_file() and (run / "config.json").is_file()
    assert not (run / "checkpoints/latest.pt").exists()
    before = snapshot(run)

    assert main(resume(run)) == 1
    err = one_line_error(capsys, str(run), "no checkpoint yet", "--overwrite")
    assert "--resume" not in err
    assert main(tiny(run)) == 1
    err = one_line_error(capsys, str(run), "never saved a checkpoint", "--overwrite")
    assert "--resume" not in err and "resume" not in err
    assert snapshot(run) == {**before, ".lock": snapshot(run)[".lock"]}  # only the lock's PID changed

    assert main(tiny(run, "--overwrite")) == 0
    assert (run / "checkpoints/latest.pt").is_file()
    assert main(resume(run, "--epochs", "2")) == 0
