"""Plain-words warnings for the two GAN failure modes a loss curve hides.

- D winning outright: its accuracy pinned near 100%, so G's gradient carries almost no
  information. Seen in the metrics rows the training loop logs.
- Mode collapse: G maps every z to (nearly) the same face. Seen in the fixed-z samples
  of each epoch, whose spread shrinks far below the best spread of the run.

`CollapseMonitor` returns each warning once, when the condition starts, and again only
after the condition has cleared and come back, so a log is not flooded.
"""
from __future__ import annotations

import numpy as np


def sample_spread(samples: np.ndarray) -> float:
    """Mean pairwise distance between images, in root-mean-square pixel units on a
    [0, 1] scale (so 0 means identical, and the number does not grow with image size)."""
    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1) / 255.0
    sq = (x * x).sum(axis=1)
    # float64 keeps the Gram-matrix form exact enough for near-identical images
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    i, j = np.triu_indices(len(x), k=1)
    return float(np.sqrt(d2[i, j] / x.shape[1]).mean())


class CollapseMonitor:
    def __init__(self, window: int = 20, acc_threshold: float = 0.98, spread_drop: float = 0.5):
        self.window = window
        self.acc_threshold = acc_threshold
        self.spread_drop = spread_drop
        self._streak = 0          # consecutive rows with d_acc >= acc_threshold
        self._streak_since = None  # step of the first of them
        self._acc_warned = False
        self._max_spread = 0.0
        self._spread_warned = False

    def observe_losses(self, row: dict) -> str | None:
        """One metrics row (step, epoch, images, d_loss, d_acc, ...); evaluation rows
        without d_acc are skipped."""
        if "d_acc" not in row:
            return None
        if row["d_acc"] < self.acc_threshold:
            self._streak, self._streak_since, self._acc_warned = 0, None, False
            return None
        if self._streak == 0:
            self._streak_since = row.get("step")
        self._streak += 1
        if self._streak < self.window or self._acc_warned:
            return None
        self._acc_warned = True
        return (f"D is winning outright: its accuracy has stayed above "
                f"{self.acc_threshold * 100:g}% for the last {self.window} log rows "
                f"(since step {self._streak_since}); G gets little signal. Try "
                f"--real-target 0.9, --schedule gated, a lower --lr-d, or --loss hinge.")

    def observe_samples(self, samples: np.ndarray) -> str | None:
        """One epoch's fixed-z samples, uint8 (N, H, W, 3) with N >= 2."""
        if len(samples) < 2:
            return None
        spread = sample_spread(samples)
        self._max_spread = max(self._max_spread, spread)
        if spread >= self.spread_drop * self._max_spread:
            self._spread_warned = False
            return None
        if self._spread_warned:
            return None
        self._spread_warned = True
        return (f"the fixed-z samples are collapsing: their mean pairwise distance fell "
                f"from {self._max_spread:.3f} (the run's best) to {spread:.3f}; G may be "
                f"producing one face for every z (mode collapse). Look at the latest sample "
                f"grid; if the faces match, try a lower --lr-g, --loss ls, or "
                f"--real-target 0.9.")

    def state_dict(self) -> dict:
        return {"streak": self._streak, "streak_since": self._streak_since,
                "acc_warned": self._acc_warned, "max_spread": self._max_spread,
                "spread_warned": self._spread_warned}

    def load_state_dict(self, state: dict) -> None:
        self._streak = int(state["streak"])
        self._streak_since = state["streak_since"]
        self._acc_warned = bool(state["acc_warned"])
        self._max_spread = float(state["max_spread"])
        self._spread_warned = bool(state["spread_warned"])
