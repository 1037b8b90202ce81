"""Claiming a run folder: one writer at a time, and never over another run by accident.

`RunFolder(run_dir, resume, overwrite)` is held for the length of a training run:
- an OS lock on RUN_DIR/.lock (flock), so a second process training into the same folder
  is refused in one line naming the PID that holds it. The kernel releases the lock when
  the process ends, however it ends (SIGKILL included), so a crash never leaves it stuck;
- a folder that already holds a run is continued only with resume=True and replaced only
  with overwrite=True (which removes that run's outputs, nothing else); otherwise refused.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import RunFolderError
from ..utils.atomic import make_folder, output_error

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there go unlocked
    fcntl = None

LOCK_NAME = ".lock"
# What a run writes into its folder: what --overwrite removes, and what says "a run is here".
RUN_FILES = ("config.json", "metrics.jsonl", "train_samples.pkl", "losses.png", "report.html")
RUN_FOLDERS = ("checkpoints", "samples", "tensorboard")


def holds_run(run_dir: Path) -> bool:
    run_dir = Path(run_dir)
    return any((run_dir / name).exists() for name in (*RUN_FILES, "checkpoints"))


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
        make_folder(self.run_dir)
        self._lock()
        try:
            if holds_run(self.run_dir) and not self.resume:
                if not self.overwrite:
                    raise RunFolderError(f"{self.run_dir} already holds a run; continue it with --resume, "
                                         f"choose another --out, or pass --overwrite to replace it")
                self._clear()
        except BaseException:
            self.__exit__()  # a refused claim releases the lock: __exit__ is not called for it
            raise
        return self

    def __exit__(self, *exc) -> bool:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        return False

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
