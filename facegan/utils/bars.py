"""Progress bars that read well wherever a run is watched: a terminal, a notebook, a log file.

A terminal and a Jupyter/VS Code notebook redraw a tqdm bar in place (carriage returns). A
log file, a pipe or a CI console shows every redraw as a line of its own, so a bar that
redraws ten times a second buries the log; there the bar redraws at most every 30 s, and each
frame is written as a line of its own (ending in "\\n", never joined to the next by "\\r").
Text bars, not ipywidgets: they work in JupyterLab, the classic Notebook and VS Code alike.
"""
from __future__ import annotations

import re
import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0

# tqdm moves the cursor up to redraw a bar at a position other than 0; a log has no cursor
_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs), redrawn as often as where it writes allows."""
    stream = kwargs.get("file") or sys.stderr
    if not redraws_in_place(stream):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("ascii", True)  # a log viewer may not know the block characters
        kwargs["file"] = LogLines(stream)
    return tqdm(iterable, **kwargs)


def redraws_in_place(stream) -> bool:
    if isinstance(stream, LogLines):
        return False
    if "ipykernel" in sys.modules:  # a notebook kernel: the front end honours "\r"
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class LogLines:
    """A stream for tqdm that writes each frame as a line: tqdm's "\\r" (go back and redraw)
    becomes the end of a line, padding and cursor moves are dropped, and a frame that only
    repeats the line before it (a close redrawing the final state) is not written again."""

    def __init__(self, stream):
        self.stream = stream
        self.last = None

    def write(self, text: str) -> int:
        text = str(text)
        for frame in _CURSOR_MOVES.sub("", text).replace("\n", "\r").split("\r"):
            frame = frame.rstrip()
            if frame and frame != self.last:
                self.stream.write(frame + "\n")
                self.last = frame
        return len(text)

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):  # encoding, fileno, closed...: the wrapped stream's
        if name == "stream":  # not set yet (a copy): no recursion
            raise AttributeError(name)
        return getattr(self.stream, name)
