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
    mid-append) is left out; a bad line anywhere else (not JSON, nested too deep to parse, not
    an object) is a one-line RunFolderError naming the file and line, as is a file that cannot be read."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise RunFolderError(f"{path} cannot be read ({why}); restore it, or delete it (losing the loss "
                             f"history) and run again") from None
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, a number too long, or nested past the parser's depth
            row = None
        if isinstance(row, dict):
            rows.append(row)
        elif number == len(lines):  # the last line, with no newline after it: torn mid-write
            break
        else:
            raise _bad_row(path, number, "is not a metrics row")
    return rows


def read_run_rows(path: Path | str) -> list[dict]:
    """read_metrics, for a run that resumes from the rows: each row's step must be a count, and
    an evaluation row's epoch a count and its fid a number; any other row is a one-line
    RunFolderError naming the file and line (the run's order and best FID rest on them)."""
    path = Path(path)
    rows = read_metrics(path)
    numbers = _line_numbers(path)
    for index, row in enumerate(rows):
        why = _row_problem(row)
        if why:
            raise _bad_row(path, numbers[index] if index < len(numbers) else index + 1, why)
    return rows


def _row_problem(row: dict) -> str | None:
    if not _is_count(row.get("step")):
        return f"has step {_shown(row.get('step'))}, not a count"
    if "fid" in row:
        if not _is_count(row.get("epoch")):
            return f"has epoch {_shown(row.get('epoch'))}, not a count"
        fid = row["fid"]
        if isinstance(fid, bool) or not isinstance(fid, (int, float)) or fid != fid:
            return f"has fid {_shown(fid)}, not a number"
    return None


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value) -> str:
    return "missing" if value is None else repr(value)[:40]


def _line_numbers(path: Path) -> list[int]:
    """The 1-based line numbers of the rows read_metrics returns, in order."""
    numbers = []
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        if line.strip():
            numbers.append(number)
    return numbers


def _bad_row(path: Path, number: int, why: str) -> RunFolderError:
    return RunFolderError(f"{path}, line {number}, {why}; delete that line (or the file, losing the loss "
                          f"history) and run again")


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only whole rows up to `step`: a resumed run's log has no duplicates and no torn line."""
    if path.exists():
        rows = [row for row in read_run_rows(path) if row["step"] <= step]
        atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def _summary_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("tensorboard=True needs the tensorboard package: pip install tensorboard "
                          "(or drop --tensorboard)") from None
    return SummaryWriter(str(log_dir))
