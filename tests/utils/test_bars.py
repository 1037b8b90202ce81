"""Progress bars: redrawn in place on a terminal or in a notebook, rarely in a log file."""
import io
import os
import subprocess
import sys

from facegan.utils.bars import progress_bar, redraws_in_place
from tests.conftest import ROOT


class Terminal(io.StringIO):
    def isatty(self):
        return True


def frames(text: str) -> list[str]:
    return [f for f in text.replace("\n", "\r").split("\r") if f.strip()]


def test_a_log_file_gets_a_few_frames_a_terminal_every_redraw(monkeypatch):
    # Outside a notebook kernel: nbclient imports ipykernel into this process when an earlier
    # test (tests/test_notebook.py) starts one, and a kernel redraws any stream in place.
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    log, terminal = io.StringIO(), Terminal()
    for _ in progress_bar(range(500), file=log, miniters=1):
        pass
    for _ in progress_bar(range(500), file=terminal, mininterval=0, miniters=1):
        pass
    assert len(frames(log.getvalue())) <= 3  # the first and the final state
    assert len(frames(terminal.getvalue())) > 100
    assert not redraws_in_place(log) and redraws_in_place(terminal)


def test_a_piped_training_run_writes_a_few_lines_not_one_per_step(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "facegan", "train", "--preset", "tiny", "--epochs", "3",
                          "--log-every", "1", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    bar_frames = [f for f in frames(run.stderr) if "step" in f]
    assert 1 <= len(bar_frames) <= 3 * 2 + 3, bar_frames  # about one per epoch, not 12 steps' worth
    assert all(ord(c) < 128 for f in bar_frames for c in f)  # ASCII bars in a log
