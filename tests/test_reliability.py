"""No run, file or output is lost, and every fault ends in one line (issue 18).

Each test injects one fault a careless or unlucky user meets: training twice into one
folder, two trainings at once, a torn metrics line, a full or read-only disk (real tmpfs
mounts where this machine allows them, as root; skipped otherwise), paths that are files,
out-of-range options, and one-per-face samples written enlarged.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facegan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from facegan.commands.cli import main
from facegan.errors import OutputError, RunFolderError
from facegan.eval.runlog import RunLog, read_metrics
from facegan.training.loop import train
from tests.conftest import ROOT, one_line_error, tiny


def metrics_rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- 1. a run folder is never overwritten by default

def test_training_again_into_a_run_folder_is_refused_and_keeps_the_run(tmp_path, capsys):
    run = tmp_path / "R"
    assert main(tiny(run, "--epochs", "3")) == 0
    before = (run / "checkpoints/latest.pt").read_bytes(), metrics_rows(run)
    capsys.readouterr()
    assert main(tiny(run, "--epochs", "1", "--seed", "1")) == 1
    one_line_error(capsys, str(run), "--resume", "--out", "--overwrite")
    assert ((run / "checkpoints/latest.pt").read_bytes(), metrics_rows(run)) == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_002.pt", "epoch_003.pt", "latest.pt"]
    # Asked for explicitly, the old run is replaced whole: no snapshot of it is left to mix in.
    assert main(tiny(run, "--epochs", "1", "--seed", "1", "--overwrite")) == 0
    assert load_checkpoint(run / "checkpoints/latest.pt")["epoch"] == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_001.pt", "latest.pt"]
    assert len(metrics_rows(run)) == 4


def test_without_out_a_second_run_goes_beside_the_first(tmp_path, monkeypatch, capsys):
    # `make demo` twice: both runs are kept, and the second says where it went.
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--preset", "tiny", "--cache-dir", "cache", "--quiet"]
    assert main(argv) == 0
    first = (tmp_path / "runs/tiny/checkpoints/latest.pt").read_bytes()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "runs/tiny holds an earlier run" in out and "runs/tiny-2" in out
    assert (tmp_path / "runs/tiny/checkpoints/latest.pt").read_bytes() == first
    assert (tmp_path / "runs/tiny-2/checkpoints/latest.pt").is_file()


# ---------------------------------------------------------------- 2. one writer per run folder

HOLD_THE_FOLDER = """
import sys, time
from facegan.training.runfolder import RunFolder
with RunFolder(sys.argv[1], resume=True):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_naming_the_pid_until_the_first_dies(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_FOLDER, str(cfg.run_dir)],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(RunFolderError, match=f"in use by another facegan run \\(PID {holder.pid}\\)"):
            train(cfg, progress=False)
        assert not (cfg.run_dir / "metrics.jsonl").exists()  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel releases the lock of a killed process
        holder.wait(timeout=30)
    assert train(cfg, progress=False)["epochs"] == 1


# ---------------------------------------------------------------- 3. a torn last line of metrics.jsonl

def test_a_torn_last_metrics_line_blocks_nothing_and_resume_cuts_it(tiny_cfg, capsys):
    cfg = tiny_cfg()
    train(cfg, progress=False)
    metrics = cfg.run_dir / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"step": 5, "epoch": 2, "d_lo')  # killed mid-append
    assert read_metrics(metrics) == [json.loads(line) for line in whole.splitlines()]
    assert main(["report", str(cfg.run_dir)]) == 0
    train(tiny_cfg(epochs=2), resume=True, progress=False)
    text = metrics.read_text()
    assert text.endswith("\n") and '"d_lo\n' not in text and "d_lo{" not in text
    assert [row["step"] for row in map(json.loads, text.splitlines())] == list(range(1, 9))


def test_a_corrupt_metrics_line_elsewhere_names_the_file_and_line(tiny_cfg, capsys):
    cfg = tiny_cfg()
    train(cfg, progress=False)
    metrics = cfg.run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = "not json"
    metrics.write_text("\n".join(lines) + "\n")
    assert main(["report", str(cfg.run_dir)]) == 1
    one_line_error(capsys, f"{metrics}, line 2")
    assert main(["train", "--out", str(cfg.run_dir), "--resume", "--epochs", "2", "--quiet"]) == 1
    one_line_error(capsys, f"{metrics}, line 2")


# ---------------------------------------------------------------- 4, 5. full, read-only and blocked outputs

@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, read_only) -> a fresh tmpfs folder; skipped where mounting is not allowed."""
    mounted = []

    def mount(size: str = "400k", read_only: bool = False):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()[:80]}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder, leave_bytes: int) -> None:
    """Fill a tmpfs until about `leave_bytes` are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave_bytes))


def no_temp_files(folder) -> bool:
    return not [p for p in folder.rglob("*.tmp")]


def test_a_really_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_last(tmpfs):
    import torch

    disk = tmpfs("1m")
    path = disk / "latest.pt"
    save_checkpoint(path, {"step": 1, "weights": torch.zeros(10)})
    fill(disk, 64 * 1024)
    # torch.save's own writer reports the full disk as RuntimeError ("unexpected pos"), not OSError.
    with pytest.raises(CheckpointError) as refused:
        save_checkpoint(path, {"step": 2, "weights": torch.zeros(200_000)})
    message = str(refused.value)
    assert "\n" not in message and "No space left" in message and "previous checkpoint there is intact" in message
    assert load_checkpoint(path, require=())["step"] == 1
    assert no_temp_files(disk)


def test_training_onto_a_full_disk_ends_in_one_line(tmpfs, capsys):
    disk = tmpfs("400k")  # the first files fit; the 400 KB checkpoint does not
    assert main(tiny(disk / "run")) == 1
    one_line_error(capsys, "No space left", "--resume")
    assert no_temp_files(disk)


@pytest.mark.parametrize("writer", ["sample grid", "sample folder", "metrics row", "synth"])
def test_every_writer_says_a_full_disk_in_one_line(tmpfs, trained_checkpoint, capsys, writer):
    disk = tmpfs("256k")
    fill(disk, 2 * 1024)
    if writer == "metrics row":
        log = RunLog(disk)
        with pytest.raises(OutputError, match="the disk is full"):
            for step in range(200):
                log.append({"step": step, "d_loss": 0.5, "padding": "x" * 100})
        return
    argv = {"sample grid": ["sample", "--checkpoint", str(trained_checkpoint), "--out", str(disk / "g.png")],
            "sample folder": ["sample", "--checkpoint", str(trained_checkpoint), "--out", str(disk / "faces")],
            "synth": ["synth", str(disk / "faces"), "--n", "50"]}[writer]
    assert main(argv) == 1
    one_line_error(capsys, "the disk is full")
    assert no_temp_files(disk)


@pytest.fixture
def trained_checkpoint(tmp_path_factory):
    from facegan.config import preset

    out = tmp_path_factory.mktemp("trained")
    train(preset("tiny", out=str(out / "run"), cache_dir=str(out / "cache")), progress=False)
    return out / "run/checkpoints/latest.pt"


@pytest.mark.parametrize("command", ["train", "sample", "export", "interpolate", "synth", "cache"])
def test_a_read_only_place_is_one_line_for_every_command(tmpfs, trained_checkpoint, tmp_path, capsys, command):
    place = tmpfs("1m", read_only=True)
    faces = tmp_path / "faces"
    if command == "cache":
        assert main(["synth", str(faces), "--n", "20", "--size", "32"]) == 0
        capsys.readouterr()
    argv = {
        "train": tiny(place / "run"),
        "sample": ["sample", "--checkpoint", str(trained_checkpoint), "--out", str(place / "g.png")],
        "export": ["export", "--checkpoint", str(trained_checkpoint), "--out", str(place / "g.safetensors")],
        "interpolate": ["interpolate", "--checkpoint", str(trained_checkpoint), "--seeds", "1,2",
                        "--steps", "3", "--out", str(place / "walk")],
        "synth": ["synth", str(place / "faces"), "--n", "5"],
        "cache": ["train", "--preset", "tiny", "--data", "folder", "--data-dir", str(faces), "--batch-size", "4",
                  "--out", str(tmp_path / "run"), "--cache-dir", str(place / "cache"), "--quiet"],
    }[command]
    assert main(argv) == 1
    one_line_error(capsys, str(place), "read-only")


@pytest.mark.parametrize("command", ["train --out", "sample --out", "cache-dir", "data-dir", "helper --data-dir"])
def test_an_output_path_that_is_a_file_is_one_line(trained_checkpoint, tmp_path, capsys, command):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    if command == "helper --data-dir":
        done = subprocess.run([sys.executable, "helper.py", "download", "--data-dir", str(a_file)],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert "is a file, not a folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert a_file.read_text() == "keep me"
        return
    argv = {
        "train --out": tiny(a_file),
        "sample --out": ["sample", "--checkpoint", str(trained_checkpoint), "--out", str(a_file / "faces")],
        "cache-dir": ["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--data", "folder",
                      "--data-dir", str(tmp_path), "--cache-dir", str(a_file), "--quiet"],
        "data-dir": ["train", "--preset", "tiny", "--out", str(tmp_path / "run"), "--data", "folder",
                     "--data-dir", str(a_file), "--quiet"],
    }[command]
    if command == "cache-dir":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "face.png")
    assert main(argv) == 1
    one_line_error(capsys, "is a file")
    assert a_file.read_text() == "keep me"


def test_sample_to_a_jpg_name_is_refused_not_made_a_folder(trained_checkpoint, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(trained_checkpoint), "--out", str(tmp_path / "g.jpg")]) == 1
    one_line_error(capsys, "g.png")
    assert not (tmp_path / "g.jpg").exists()


# ---------------------------------------------------------------- 10, 11. options and messages

@pytest.mark.parametrize("argv, option", [
    (["serve", "--checkpoint", "x.pt", "--port", "70000"], "--port"),
    (["serve", "--checkpoint", "x.pt", "--port", "-1"], "--port"),
    (["interpolate", "--checkpoint", "x.pt", "--seeds", "1,2", "--out", "w", "--frame-seconds", "-1"],
     "--frame-seconds"),
    (["interpolate", "--checkpoint", "x.pt", "--seeds", "1,2", "--out", "w", "--frame-seconds", "nan"],
     "--frame-seconds"),
    (["sample", "--checkpoint", "x.pt", "--out", "g.png", "--upscale", "1000"], "--upscale"),
    (["synth", "faces", "--size", "100000"], "--size"),
    (["sample", "--checkpoint", "x.pt", "--out", "g.png", "--seed", str(2**64)], "--seed"),
    (["evaluate", "--checkpoint", "x.pt", "--data-dir", "d", "--n", "0"], "--n"),
    (["evaluate", "--checkpoint", "x.pt", "--data-dir", "d", "--device", "gpu"], "--device"),
    (["sample", "--checkpoint", "x.pt", "--out", "g.png", "--truncation", "inf"], "--truncation"),
])
def test_out_of_range_options_are_refused_while_parsing(capsys, argv, option):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"facegan: error: argument {option}") and "\n" not in err


def test_a_seed_range_past_64_bits_and_a_missing_device_are_one_line(trained_checkpoint, tmp_path, capsys):
    import torch

    argv = ["sample", "--checkpoint", str(trained_checkpoint), "--out", str(tmp_path / "g.png"),
            "--seed", str(2**63 - 2), "--n", "5"]
    assert main(argv) == 1
    one_line_error(capsys, "--seed")
    if not torch.cuda.is_available():
        assert main(["evaluate", "--checkpoint", str(trained_checkpoint), "--data-dir", str(tmp_path),
                     "--device", "cuda"]) == 1
        one_line_error(capsys, "CUDA is not available")


def test_resume_with_a_preset_says_the_preset_would_be_ignored(tiny_cfg, capsys):
    cfg = tiny_cfg()
    train(cfg, progress=False)
    assert main(["train", "--preset", "quality", "--out", str(cfg.run_dir), "--resume", "--epochs", "2"]) == 1
    one_line_error(capsys, "--preset quality would be ignored")


# ---------------------------------------------------------------- 12. one face per file at the generator's size

def test_faces_written_one_per_file_keep_the_generators_resolution(trained_checkpoint, tmp_path, capsys):
    from facegan.generate.export import load_generator

    size = load_generator(trained_checkpoint).image_size
    assert main(["sample", "--checkpoint", str(trained_checkpoint), "--n", "3", "--out", str(tmp_path / "f")]) == 0
    assert {Image.open(p).size for p in (tmp_path / "f").glob("*.png")} == {(size, size)}
    assert main(["sample", "--checkpoint", str(trained_checkpoint), "--n", "3", "--upscale", "3",
                 "--out", str(tmp_path / "big")]) == 0
    assert {Image.open(p).size for p in (tmp_path / "big").glob("*.png")} == {(3 * size, 3 * size)}
    assert main(["sample", "--checkpoint", str(trained_checkpoint), "--n", "1", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > size  # grids are for viewing: enlarged 2x


def test_the_lock_is_released_at_the_end_of_a_run(tiny_cfg):
    cfg = tiny_cfg()
    train(cfg, progress=False)
    # flock locks belong to an open file: had the first run kept its own, this one would be refused.
    assert train(tiny_cfg(epochs=2), resume=True, progress=False)["epochs"] == 2
