"""The pictures of a run: sample grids, train_samples.pkl, the loss plot and report.html.

samples/reals.png and each epoch's samples/epoch_XXX.png are written once. The views that
hold every epoch so far (train_samples.pkl, losses.png, report.html) cost more to write as a
run grows, so they are rewritten only now and then, and always at its end, a resumed run's
included even with no epoch left to train (a kill may have cut the last write short). Only
rank 0 calls these.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..eval.runlog import read_metrics
from ..generate.sample import image_grid, save_png, save_train_samples
from .resume import RunState

# After 150 epochs the views take about 2 s on one CPU core, which the training loop waits
# for. They are rewritten at most every VIEWS_EVERY_S, further apart once that would spend
# more than VIEWS_SHARE of the run on them (the checkpoint carries the samples since the
# last write, so nothing is lost in between).
VIEWS_EVERY_S = 30.0
VIEWS_SHARE = 0.02


class Views:
    """Writes the pictures of the run in `run_dir`."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.drawn_at = 0.0  # when the views were last written (0: never, so the first epoch writes them)
        self.every = VIEWS_EVERY_S
        self.stale = False

    def write_reals(self, images: np.ndarray) -> None:
        save_png(self.run_dir / "samples" / "reals.png", image_grid(np.asarray(images[:64])), upscale=2)

    def write_grid(self, state: RunState) -> np.ndarray:
        """samples/epoch_XXX.png from the epoch's fixed-z samples; returns the grid."""
        grid = image_grid(state.samples[-1], nrow=8)
        save_png(self.run_dir / "samples" / f"epoch_{state.epoch:03d}.png", grid,
                 upscale=max(1, 128 // state.samples[-1].shape[1]))
        return grid

    def save_samples(self, state: RunState) -> None:
        """train_samples.pkl, when it lacks some epochs' samples."""
        if state.samples_saved < len(state.samples):
            save_train_samples(self.run_dir / "train_samples.pkl", state.samples)
            state.samples_saved = len(state.samples)

    def refresh(self, state: RunState) -> None:
        """After an epoch: rewrite the views when they are due."""
        self.stale = True
        if time.time() - self.drawn_at >= self.every:
            self._write(state)

    def finish(self, state: RunState) -> None:
        """At the run's end: bring the views up to date."""
        if self.stale:
            self._write(state)

    def paths(self, state: RunState) -> dict:
        return {"grid": str(self.run_dir / "samples" / f"epoch_{len(state.samples):03d}.png"),
                "losses": str(self.run_dir / "losses.png"), "report": str(self.run_dir / "report.html")}

    def _write(self, state: RunState) -> None:
        """train_samples.pkl, the loss plot and report.html, from the run so far; the time they
        took sets how long until the next write."""
        from ..eval.plots import plot_losses, save_figure  # matplotlib: only the writing side of a run needs it
        from ..eval.report import write_report

        started = time.time()
        self.save_samples(state)
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists() and metrics.stat().st_size:
            save_figure(plot_losses(read_metrics(metrics)), self.run_dir / "losses.png")
        write_report(self.run_dir)
        self.drawn_at, self.stale = time.time(), False
        self.every = max(VIEWS_EVERY_S, (self.drawn_at - started) / VIEWS_SHARE)
