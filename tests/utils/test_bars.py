"""Progress bars: redrawn in place on a terminal or in a notebook, rarely in a log file, and
there each frame is a line of its own."""
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
    # a log reads as lines: each frame ends with a newline, none is joined to the next by "\r"
    assert "\r" not in run.stderr and "\r" not in run.stdout
    assert run.stderr.endswith("\n")
    lines = run.stderr.splitlines()
    assert [line for line in lines if "step" in line and "|" in line] == bar_frames
    assert all(line.count("|") == 2 for line in bar_frames), bar_frames  # one bar a line


def test_a_log_gets_each_frame_as_a_line_a_terminal_carriage_returns(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    log, terminal = io.StringIO(), Terminal()
    with progress_bar(total=3, file=log, mininterval=0, miniters=1, desc="epoch 1/1") as bar:
        for _ in range(3):
            bar.update()
            bar.set_postfix(d="0.5")
        bar.clear()  # tqdm.write's way of clearing: nothing to clear in a log
        bar.refresh()
    for _ in progress_bar(range(3), file=terminal, mininterval=0, miniters=1):
        pass
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines and all(line == line.rstrip() and line.startswith("epoch 1/1") for line in lines)
    assert len(lines) == len(set(lines))  # a redraw of the same state is not written twice
    assert "3/3" in lines[-1]
    assert terminal.getvalue().startswith("\r")  # a terminal still redraws in place
    assert terminal.getvalue().count("\n") == 1


def test_a_bar_that_does_not_stay_leaves_nothing_behind_in_a_log(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    log = io.StringIO()
    for _ in progress_bar(range(4), file=log, mininterval=0, miniters=1, leave=False, desc="decoding"):
        pass
    assert "\r" not in log.getvalue()
    assert all(line.startswith("decoding") for line in log.getvalue().splitlines())
