"""Where a run's numbers go: metrics.jsonl always, and TensorBoard when asked for.

metrics.jsonl is the record (one JSON object a line: loss rows, evaluation rows, warnings);
TensorBoard is a view on the same rows for users who live there, written to RUN_DIR/tensorboard.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, RunFolderError
from ..utils.atomic import atomic_write_text, output_error

# Row keys that are positions, not measurements: they become TensorBoard's x axis or nothing.
_NOT_SCALARS = {"step", "epoch", "images", "time", "eval_n"}


class RunLog:
    def __init__(self, run_dir: Path, tensorboard: bool = False):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.writer = _summary_writer(Path(run_dir) / "tensorboard") if tensorboard else None

    def append(self, row: dict) -> None:
        # One write of a whole line: a kill or a full disk can tear only the last line,
        # which read_metrics leaves out and a resume cuts off.
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise output_error(self.path, e) from None
        if self.writer is not None:
            self._scalars(row)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An (H, W, 3) uint8 image, e.g. the epoch's sample grid (TensorBoard only)."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step, dataformats="HWC")
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _scalars(self, row: dict) -> None:
        group = "eval" if "fid" in row else "train"
        for key, value in row.items():
            if key not in _NOT_SCALARS and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{group}/{key}", value, row["step"])
        if "warning" in row:
            self.writer.add_text("warnings", row["warning"], row["step"])
        self.writer.flush()


def read_metrics(path: Path | str) -> list[dict]:
    """The rows of a metrics.jsonl. A torn last line (the run was killed, or the disk filled,
    mid-append) is left out; a bad line anywhere else is an error naming the file and line."""
    path = Path(path)
    text = path.read_text()
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif number == len(lines):  # the last line, with no newline after it: torn mid-write
            break
        else:
            raise RunFolderError(f"{path}, line {number}, is not a metrics row; delete that line (or the "
                                 f"file, losing the loss history) and run again")
    return rows


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only whole rows up to `step`: a resumed run's log has no duplicates and no torn line."""
    if path.exists():
        rows = [row for row in read_metrics(path) if row["step"] <= step]
        atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def _summary_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                          "(or drop --tensorboard)") from None
    return SummaryWriter(str(log_dir))
