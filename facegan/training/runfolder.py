"""Claiming a run folder: one writer at a time, and never over another run by accident.

`RunFolder(run_dir, resume, overwrite)` is held for the length of a training run:
- an OS lock on RUN_DIR/.lock (flock), so a second process training into the same folder
  is refused in one line naming the PID that holds it. The kernel releases the lock when
  the process ends, however it ends (SIGKILL included), so a crash never leaves it stuck;
- a folder that already holds a run is continued only with resume=True and replaced only
  with overwrite=True (which removes that run's outputs, nothing else); otherwise refused;
- only a facegan run folder is ever replaced: one carrying the marker RUN_DIR/.facegan-run,
  written when facegan claims a fresh folder, or a run of facegan 0.1 (no marker) recognised
  strictly by its config.json and checkpoints. Another project's config.json and checkpoints/
  are refused, untouched;
- a run killed before its first checkpoint cannot be resumed: both --resume and a plain rerun
  point to --overwrite, never to each other.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..config import TrainConfig, upgrade_keys
from ..errors import ConfigError, RunFolderError
from ..utils.atomic import atomic_write_text, make_folder, output_error

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there go unlocked
    fcntl = None

LOCK_NAME = ".lock"
# What a run writes into its folder: what --overwrite removes, and what says "a run is here".
RUN_FILES = ("config.json", "metrics.jsonl", "train_samples.pkl", "losses.png", "report.html")
RUN_FOLDERS = ("checkpoints", "samples", "tensorboard")
MARKER = ".facegan-run"
MARKER_TEXT = "This folder is a facegan training run; `train --overwrite` may replace its outputs.\n"
# What facegan (0.1 included) names inside checkpoints/: checkpoints and their write temporaries.
_CHECKPOINT_NAME = re.compile(r"(latest|best|epoch_\d+)\.pt|\..+\.tmp")
_CONFIG_MAX_BYTES = 1 << 20  # a run's config.json is a few KiB; a larger one is not facegan's


def holds_run(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return any((run_dir / name).exists() for name in (*RUN_FILES, "checkpoints"))


def has_marker(run_dir: Path) -> bool:
    marker = Path(run_dir) / MARKER
    return marker.is_file() and not marker.is_symlink()


def is_facegan_run(run_dir: Path) -> bool:
    """True for a folder facegan wrote: its marker, or the files of a facegan 0.1 run (no marker)."""
    return has_marker(run_dir) or _looks_like_0_1_run(Path(run_dir))


def _looks_like_0_1_run(run_dir: Path) -> bool:
    """Strict: config.json is a TrainConfig, and checkpoints/ holds only facegan checkpoints."""
    config = run_dir / "config.json"
    try:
        if not config.is_file() or config.is_symlink() or config.stat().st_size > _CONFIG_MAX_BYTES:
            return False
        saved = json.loads(config.read_text())
        if not isinstance(saved, dict):
            return False
        TrainConfig.from_dict({**upgrade_keys(saved), "out": str(run_dir)})
    except (OSError, UnicodeDecodeError, ValueError, TypeError, RecursionError, ConfigError):
        return False  # ValueError: bad JSON; RecursionError: JSON nested too deep
    checkpoints = run_dir / "checkpoints"
    if not checkpoints.exists():
        return True
    if checkpoints.is_symlink() or not checkpoints.is_dir():
        return False
    try:
        entries = list(checkpoints.iterdir())
    except OSError:
        return False
    for entry in entries:
        if not _CHECKPOINT_NAME.fullmatch(entry.name) or entry.is_symlink() or not entry.is_file():
            return False
        if entry.suffix == ".pt" and not _starts_like_checkpoint(entry):
            return False
    return True


def _starts_like_checkpoint(path: Path) -> bool:
    """A cheap look at the head: torch.save's zip, whose pickled dict opens with facegan's "format" key."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") and b"format" in head


def next_free_run_dir(run_dir: Path) -> Path:
    """run_dir itself if it holds no run, else the first of run_dir-2, run_dir-3, ... that holds none."""
    run_dir = Path(run_dir)
    candidate, n = run_dir, 1
    while holds_run(candidate) or (candidate.exists() and not candidate.is_dir()):
        n += 1
        candidate = run_dir.with_name(f"{run_dir.name}-{n}")
    return candidate


class RunFolder:
    """The claim on a run folder; `main=False` (DDP ranks > 0) claims nothing."""

    def __init__(self, run_dir: Path, resume: bool = False, overwrite: bool = False, main: bool = True):
        self.run_dir, self.resume, self.overwrite, self.main = Path(run_dir), resume, overwrite, main
        self._fd = None

    def __enter__(self) -> "RunFolder":
        if not self.main:
            return self
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunFolderError(f"{self.run_dir} is a file, not a folder; give --out a folder for the run")
        self._refuse_foreign()  # before the lock file, so another project's folder gains nothing
        make_folder(self.run_dir)
        self._lock()
        try:
            self._claim()
        except BaseException:
            self.__exit__()  # a refused claim releases the lock: __exit__ is not called for it
            raise
        return self

    def __exit__(self, *exc) -> bool:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        return False

    def _refuse_foreign(self) -> None:
        if holds_run(self.run_dir) and not is_facegan_run(self.run_dir):
            raise RunFolderError(f"{self.run_dir} is not a facegan run folder (its files were not written by "
                                 f"facegan, and were left untouched); choose another --out")

    def _claim(self) -> None:
        run_dir = self.run_dir
        if holds_run(run_dir):
            self._refuse_foreign()  # again under the lock
            saved = (run_dir / "checkpoints" / "latest.pt").is_file()
            if self.resume and not saved:
                raise RunFolderError(f"cannot resume {run_dir}: no checkpoint yet (the run stopped before "
                                     f"checkpoints/latest.pt was written); start it again with --overwrite")
            if self.resume:
                return
            if not self.overwrite:
                if not saved:
                    raise RunFolderError(f"{run_dir} holds a run that never saved a checkpoint; pass "
                                         f"--overwrite to start it again, or choose another --out")
                raise RunFolderError(f"{run_dir} already holds a run; continue it with --resume, "
                                     f"choose another --out, or pass --overwrite to replace it")
            self._clear()
        elif self.resume:
            return  # nothing to resume here: a lock-only claim (a sweep folder), or train() says so
        if not has_marker(run_dir):  # before any output, so a run killed at any instant is facegan's
            atomic_write_text(run_dir / MARKER, MARKER_TEXT)

    def _lock(self) -> None:
        if fcntl is None:
            return
        path = self.run_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise output_error(path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderError(f"{self.run_dir} is in use by another facegan run (PID {holder}); wait for "
                                 f"it to finish, stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _clear(self) -> None:
        """Remove the previous run's outputs (only the names a run writes)."""
        for name in RUN_FILES:
            (self.run_dir / name).unlink(missing_ok=True)
        for name in RUN_FOLDERS:
            shutil.rmtree(self.run_dir / name, ignore_errors=True)
