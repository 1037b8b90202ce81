"""What a run says while it trains: its start, the progress bar, the metrics rows, the collapse warnings.

The run's record is config.json plus metrics.jsonl (and TensorBoard, when asked for): one row
per `log_every` steps, evaluation rows and warnings. Every rank sums its step statistics and
averages them over ranks at each log step, so all ranks see the same row and the NaN guard
raises on all of them alike; only rank 0 writes and speaks.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import TrainingError
from ..eval.runlog import RunLog, truncate_metrics
from ..utils.accel import precision_note
from .distributed import Dist
from .monitor import CollapseMonitor
from .resume import RunState


class RunningStats:
    """Sums step statistics on the device; `.read()` syncs once per logging interval."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def read(self) -> dict:
        out = {k: (v / self.counts[k]).item() for k, v in self.sums.items()}
        self.sums.clear()
        self.counts.clear()
        return out


class StepLog:
    """This rank's log of the run. `total_steps` (None: no limit) sizes the progress bar; with a
    `deadline` (a time.time(), or None) the bar's total and time left follow the budget, and the
    log says, once the step rate is known, whether the budget or the epochs will end the run."""

    def __init__(self, cfg: TrainConfig, dist: Dist, *, total_steps: int | None, deadline: float | None = None,
                 progress: bool = True, log=print):
        self.cfg, self.dist, self.total_steps, self.deadline = cfg, dist, total_steps, deadline
        self.progress, self.log = progress, log
        self.metrics = cfg.run_dir / "metrics.jsonl"
        self.monitor = CollapseMonitor()
        self.running = RunningStats()
        self.runlog: RunLog | None = None  # rank 0's writer of metrics.jsonl
        self.bar = None
        self.started = time.time()
        self.first_step: tuple[float, int] | None = None  # (time, step) of this call's first step: the rate's origin
        self.forecast_told = False

    def open(self, state: RunState, device: torch.device, resumed: bool) -> None:
        """Say how the run trains; on rank 0 drop an old metrics.jsonl, or cut a resumed
        run's back to its checkpoint."""
        self.log(precision_note(device, self.cfg.amp))
        if self.dist.enabled:
            self.log(f"DDP over {self.dist.world_size} processes ({self.dist.backend}): {self.cfg.batch_size} "
                     f"images a rank, {self.cfg.batch_size * self.dist.world_size} a step; learning rates as given")
        if resumed:
            self._say_resumed(state)
        if self.dist.is_main and resumed and not self.metrics.exists() and state.step:
            # Only a record is lost: the checkpoint holds the run, so it trains on and the log restarts
            self.log(f"note: {self.metrics} is missing: the rows before step {state.step} (losses and "
                     f"evaluations) are lost; the log starts again from there")
        elif self.dist.is_main and resumed:
            truncate_metrics(self.metrics, state.step)
        elif self.dist.is_main:
            self.metrics.unlink(missing_ok=True)

    def start(self, state: RunState) -> None:
        """Write config.json and open the writer of metrics.jsonl (rank 0), then the progress bar."""
        from ..utils.bars import progress_bar

        if self.dist.is_main:
            self.cfg.save(self.cfg.run_dir / "config.json")
            self.runlog = RunLog(self.cfg.run_dir, self.cfg.tensorboard)
        self.bar = progress_bar(total=self.total_steps, initial=state.step, disable=not self.progress, unit="step",
                                dynamic_ncols=True)

    def _say_resumed(self, state: RunState) -> None:
        if state.reseeded and not self.dist.enabled:
            self.log("note: resuming on a different device; the latent stream is reseeded, so this run "
                     "will not match an uninterrupted one bit for bit")
        self.log(f"resuming {self.cfg.run_dir} after epoch {state.epoch}"
                 + (f" and {state.batch} batches" if state.batch else "")
                 + f" (step {state.step}, {state.images_seen} images)")

    def begin_epoch(self, epoch: int) -> None:
        text = f"epoch {epoch + 1}" + (f"/{self.cfg.epochs}" if self.cfg.epochs else "")
        # tqdm writes "desc: n" for a bar without a total, so a desc of its own must not end in ": "
        (self.bar.set_description if self.bar.total else self.bar.set_description_str)(text)

    def after_step(self, stats: dict, state: RunState) -> None:
        self.running.add(stats)
        self.bar.update()
        if self.first_step is None:  # the first step carries start-up costs the rest do not
            self.first_step = (time.time(), state.step)
        if state.step % self.cfg.log_every == 0:
            self._log_row(state)
            self._follow_budget(state)

    def _follow_budget(self, state: RunState) -> None:
        """Size the bar by the steps the budget buys at the rate so far; say once which limit ends the run."""
        t0, step0 = self.first_step
        now = time.time()
        if self.deadline is None or now - t0 < FORECAST_AFTER_S or state.step == step0:
            return
        steps_per_s = (state.step - step0) / (now - t0)
        in_budget = state.step + round(steps_per_s * max(0.0, self.deadline - now))
        self.bar.total = min(in_budget, self.total_steps or in_budget)
        if not self.forecast_told:
            self.forecast_told = True
            self.log(forecast(self.cfg, step=state.step, total_steps=self.total_steps, steps_per_s=steps_per_s,
                              seconds_left=self.deadline - now,
                              images_per_step=self.cfg.batch_size * self.dist.world_size))

    def flush(self, state: RunState) -> None:
        """Log a partial interval too, so that every epoch is in the log."""
        if self.running.counts:
            self._log_row(state)

    def stop(self, state: RunState) -> None:
        """The run stops mid-epoch: close the bar, log the steps since the last row."""
        self.bar.close()
        self.flush(state)

    def record(self, row: dict) -> None:
        """Append a row of rank 0's own (an evaluation) to metrics.jsonl."""
        self.runlog.append(row)

    def watch_samples(self, state: RunState, grid: np.ndarray) -> None:
        """Rank 0, after drawing the epoch's fixed-z samples: TensorBoard's copy of their grid,
        and the collapse monitor's look at them."""
        self.runlog.image("samples", grid, state.step)
        self._warn(self.monitor.observe_samples(state.samples[-1]), state.step)

    def close(self) -> None:
        self.bar.close()
        if self.runlog is not None:
            self.runlog.close()

    def seconds(self) -> float:
        return round(time.time() - self.started, 1)

    def _log_row(self, state: RunState) -> None:
        """Average the interval's statistics over ranks into a metrics row; watch it for collapse."""
        stats = self.dist.mean(self.running.read())
        bad = [k for k in ("d_loss", "g_loss") if k in stats and not math.isfinite(stats[k])]
        if bad:
            raise TrainingError(f"{' and '.join(bad)} became {stats[bad[0]]} at step {state.step}; the last "
                                f"good checkpoint is kept in checkpoints/latest.pt. Lower the learning "
                                f"rates or try --loss ls, then start again or resume")
        row = {"step": state.step, "epoch": state.epoch_of_last_step, "images": state.images_seen,
               "time": round(time.time() - self.started, 2), **{k: round(v, 5) for k, v in stats.items()}}
        left = {} if self.deadline is None else {"left": _clock(self.deadline - time.time())}
        # refresh=False: the next step redraws it; forcing a redraw would add a line to a log file
        self.bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row.get('g_loss', float('nan')):.3f}",
                             acc=f"{row['d_acc']:.2f}", **left, refresh=False)
        if self.dist.is_main:
            self.runlog.append(row)
            self._warn(self.monitor.observe_losses(row), state.step)

    def _warn(self, warning: str | None, step: int) -> None:
        if warning:
            self.log(f"warning: {warning}")
            self.runlog.append({"step": step, "warning": warning})


FORECAST_AFTER_S = 5.0  # seconds of steps before the rate is trusted for a forecast


def forecast(cfg: TrainConfig, *, step: int, total_steps: int | None, steps_per_s: float, seconds_left: float,
             images_per_step: int) -> str:
    """Which of the time budget and the epochs will end the run, at `steps_per_s`."""
    rate = f"at {steps_per_s * images_per_step:,.0f} img/s"
    budget = f"the {cfg.minutes:g}-min budget"
    in_budget = step + steps_per_s * max(0.0, seconds_left)
    if total_steps is None:
        return (f"{rate}, {budget} ends this run after about {in_budget * images_per_step:,.0f} images "
                f"({in_budget:,.0f} steps)")
    needed = (total_steps - step) / steps_per_s
    if needed <= seconds_left:
        return f"{rate}, the {cfg.epochs} epochs end this run in about {_clock(needed)}, within {budget}"
    return (f"{rate}, {budget} ends this run at about step {in_budget:,.0f} of the {cfg.epochs} epochs' "
            f"{total_steps:,}")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"
