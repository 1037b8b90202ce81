"""Progress bars that read well wherever a run is watched: a terminal, a notebook, a log file.

A terminal and a Jupyter/VS Code notebook redraw a tqdm bar in place (carriage returns). A
log file, a pipe or a CI console shows every redraw as a line of its own, so a bar that
redraws ten times a second buries the log; there the bar redraws at most every 30 s.
Text bars, not ipywidgets: they work in JupyterLab, the classic Notebook and VS Code alike.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


def progress_bar(iterable=None, **kwargs) -> tqdm:
    """tqdm(iterable, **kwargs), redrawn as often as where it writes allows."""
    if not redraws_in_place(kwargs.get("file") or sys.stderr):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("ascii", True)  # a log viewer may not know the block characters
    return tqdm(iterable, **kwargs)


def redraws_in_place(stream) -> bool:
    if "ipykernel" in sys.modules:  # a notebook kernel: the front end honours "\r"
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
