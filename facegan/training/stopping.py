"""Stopping a run mid-epoch: on SIGINT/SIGTERM, or when the `--minutes` budget is spent.

The loop asks `Stopping.requested` after each step; when it says yes, the loop saves a
checkpoint at that batch, then raises RunInterrupted after a signal or ends the run when
the budget is spent. Under DDP every rank must stop at the same step, so the ranks agree
on both questions.
"""
from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from ..config import TrainConfig
from .distributed import Dist
from .resume import RunState


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after writing a checkpoint; `signum` says which."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopOnSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so it can checkpoint.

    A second signal raises KeyboardInterrupt at once (checkpoint writes are atomic, so
    that is still safe). Handlers are installed only from the main thread, where Python
    delivers signals, and the previous ones are restored on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


class Stopping:
    """Whether this run stops before its last epoch, and what it says when it does."""

    def __init__(self, cfg: TrainConfig, dist: Dist):
        self.cfg, self.dist = cfg, dist
        self.deadline = time.time() + 60 * cfg.minutes if cfg.minutes else None

    def requested(self, signum: int | None, step: int) -> bool:
        """A signal arrived (`signum`, on any rank) or the time budget is spent."""
        # Under DDP every rank must stop at the same step, so they agree only at log steps.
        if self.dist.enabled and step % self.cfg.log_every:
            return False
        return self.dist.any(signum is not None or self.out_of_time())

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def signalled(self, signum: int | None) -> bool:
        """Whether a signal stops the run, rather than the budget: true on every rank when any got one."""
        return self.dist.any(signum is not None)

    def interrupted(self, signum: int | None, state: RunState, checkpoint: Path) -> RunInterrupted:
        signum = signum or signal.SIGTERM  # another rank got the signal
        return RunInterrupted(signum, f"{signal.Signals(signum).name}: stopped at {_where(state, checkpoint)}; "
                                      f"continue with --resume")

    def budget_spent(self, state: RunState, checkpoint: Path) -> str:
        return (f"time budget of {self.cfg.minutes:g} min spent: stopped at {_where(state, checkpoint)}; "
                f"continue with --resume")


def _where(state: RunState, checkpoint: Path) -> str:
    return f"epoch {state.epoch + 1}, batch {state.batch} (step {state.step}); checkpoint saved to {checkpoint}"
