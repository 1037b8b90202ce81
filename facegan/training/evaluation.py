"""Scoring a run as it trains: FID/KID/SWD every `--eval-every` epochs, the best FID so far, `--early-stop`.

Each evaluation is a row of metrics.jsonl; a new best FID is kept as checkpoints/best.pt.
A resumed run recalls its best and its stale evaluations from metrics.jsonl, which holds
every evaluation up to its checkpoint. Only rank 0 evaluates; `plateaued` is asked on all.

What best.pt holds: metrics.jsonl's FID rows are the record and best.pt follows them. The
rule: best.pt is the snapshot whose (epoch, step), read from the snapshot itself, are those of
the lowest-FID row; with no FID row (no evaluation yet, or metrics.jsonl deleted) the record
names no best and best.pt is left as it is, until the next evaluation, a new best by
definition, replaces it. An evaluation appends its row and then, for a new best, links
latest.pt (the weights just scored) as best.pt, each write whole (atomic), so the rule holds
at every instant but one window: a kill between that row and that link leaves the previous
best in best.pt. A resume closes it before training on (`Evaluation.keep_best_true`): a
best.pt that breaks the rule is replaced by the snapshot that keeps it (latest.pt, or a kept
epoch_XXX.pt), or, when none is kept, removed with a warning, never left holding weights the
record does not call best. An evaluation a kill cut short is redone first (`catch_up`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..config import TrainConfig
from ..errors import FaceganError
from ..eval.runlog import read_run_rows
from .distributed import Dist
from .resume import RunState
from .snapshots import Snapshots, best_checkpoint, link_or_copy


class BestFID:
    """The lowest FID so far, its epoch and step, and how many evaluations have passed since it."""

    def __init__(self):
        self.fid, self.epoch, self.step, self.stale = math.inf, None, None, 0
        self.scored: set[int] = set()  # the epochs evaluated

    def observe(self, fid: float, epoch: int, step: int | None = None) -> bool:
        self.scored.add(epoch)
        if fid < self.fid:
            self.fid, self.epoch, self.step, self.stale = fid, epoch, step, 0
            return True
        self.stale += 1
        return False

    def recall(self, rows: list[dict]) -> None:
        for row in rows:
            if "fid" in row:
                self.observe(row["fid"], row["epoch"], row["step"])


class Evaluation:
    """Evaluates this run's G against `images`, the training images; `record(row)` appends
    a row to metrics.jsonl."""

    def __init__(self, cfg: TrainConfig, dist: Dist, images: np.ndarray, *, record, progress: bool = True,
                 log=print):
        self.cfg, self.dist, self.images = cfg, dist, images
        self.record, self.progress, self.log = record, progress, log
        self.best = BestFID()
        self.best_path = best_checkpoint(cfg.run_dir)

    @property
    def enabled(self) -> bool:
        """Whether this run evaluates at all (--eval-every E): every E epochs, and at the end of a
        spent --minutes budget, mid-epoch, so that a budget run is scored on the weights it ends with."""
        return bool(self.cfg.eval_every)

    def due(self, epoch: int) -> bool:
        return bool(self.cfg.eval_every) and epoch % self.cfg.eval_every == 0

    def recall(self) -> None:
        """A resumed run: the best FID and the stale count from metrics.jsonl (cut back to the
        checkpoint; a missing one recalls none)."""
        metrics = self.cfg.run_dir / "metrics.jsonl"
        if metrics.exists():
            self.best.recall(read_run_rows(metrics))

    def catch_up(self, G: torch.nn.Module, state: RunState, snapshots: Snapshots) -> None:
        """A resumed run whose checkpoint closed a due epoch that metrics.jsonl has no FID row
        for (a kill came mid-evaluation): evaluate it now, on the weights the checkpoint holds,
        as the run would have. Then best.pt is made true to the record."""
        if state.batch == 0 and state.epoch > 0 and self.due(state.epoch) and state.epoch not in self.best.scored:
            self.log(f"epoch {state.epoch} was not evaluated before the run stopped; evaluating it now")
            self.run(G, state, keep_best=snapshots.keep_best)
        self.keep_best_true(snapshots, state)

    def keep_best_true(self, snapshots: Snapshots, state: RunState) -> None:
        """Make best.pt the snapshot of the best FID row (see the module docstring)."""
        if self.best.epoch is None:
            return
        wanted = (self.best.epoch, self.best.step)
        if _position(snapshots.best) == wanted:
            return
        kept = snapshots.latest.with_name(f"epoch_{self.best.epoch:03d}.pt")
        if (state.epoch, state.batch, state.step) == (self.best.epoch, 0, self.best.step):
            source = snapshots.latest
        else:
            source = kept if _position(kept) == wanted else None
        if source is not None:
            link_or_copy(source, snapshots.best)
        elif snapshots.best.exists():
            snapshots.drop_best()
            self.log(f"warning: {snapshots.best} did not hold epoch {self.best.epoch}, which metrics.jsonl "
                     f"names as the best FID, and no snapshot of that epoch is kept; removed it (the next "
                     f"better FID writes it again)")

    def run(self, G: torch.nn.Module, state: RunState, keep_best) -> None:
        """FID/KID/SWD of G against the training images, as a metrics.jsonl row; `keep_best()`
        is called when the FID is the best so far."""
        # Imported here: the metrics load Inception and matplotlib, which training does not need.
        from ..eval.metrics import evaluate_generator

        cfg = self.cfg
        scores = evaluate_generator(G, self.images, cfg.eval_n, cfg.z_size, cfg.cache_dir, seed=cfg.seed,
                                    device=cfg.device, progress=self.progress)
        self.record({"step": state.step, "epoch": state.epoch, "images": state.images_seen,
                     "eval_n": scores["n"], **{k: round(scores[k], 6) for k in ("fid", "kid", "kid_std", "swd")}})
        improved = self.best.observe(scores["fid"], state.epoch, state.step)
        if improved:
            keep_best()
        where = f"epoch {state.epoch}" if state.batch == 0 else f"step {state.step} (epoch {state.epoch + 1})"
        self.log(f"{where}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  "
                 f"SWD {scores['swd']:.1f}  (n={scores['n']})" + ("  new best: checkpoints/best.pt" if improved else ""))

    def plateaued(self) -> bool:
        """--early-stop: true on every rank once that many evaluations brought no new best FID."""
        done = bool(self.cfg.early_stop) and self.best.stale >= self.cfg.early_stop
        if done and self.dist.is_main:
            self.log(f"early stop: no better FID in {self.best.stale} evaluations; the best, {self.best.fid:.2f} "
                     f"at epoch {self.best.epoch}, is in {self.best_path}")
        return self.dist.any(done)

    def summary(self) -> dict:
        """The summary's "best" entry, when the run has evaluated."""
        if self.best.epoch is None:
            return {}
        return {"best": {"epoch": self.best.epoch, "fid": self.best.fid, "checkpoint": str(self.best_path)}}


def _position(path) -> tuple | None:
    """A snapshot's (epoch, step), or None when there is none to read."""
    if not path.exists():
        return None
    try:
        ckpt = load_checkpoint(path)
    except FaceganError:
        return None
    return (ckpt.get("epoch"), ckpt.get("step")) if isinstance(ckpt, dict) else None
