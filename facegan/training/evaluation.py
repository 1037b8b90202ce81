"""Scoring a run as it trains: FID/KID/SWD every `--eval-every` epochs, the best FID so far, `--early-stop`.

Each evaluation is a row of metrics.jsonl; a new best FID is kept as checkpoints/best.pt.
A resumed run recalls its best and its stale evaluations from metrics.jsonl, which holds
every evaluation up to its checkpoint. Only rank 0 evaluates; `plateaued` is asked on all.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..config import TrainConfig
from ..eval.runlog import read_metrics
from .distributed import Dist
from .resume import RunState
from .snapshots import best_checkpoint


class BestFID:
    """The lowest FID so far, its epoch, and how many evaluations have passed since it."""

    def __init__(self):
        self.fid, self.epoch, self.stale = math.inf, None, 0

    def observe(self, fid: float, epoch: int) -> bool:
        if fid < self.fid:
            self.fid, self.epoch, self.stale = fid, epoch, 0
            return True
        self.stale += 1
        return False

    def recall(self, rows: list[dict]) -> None:
        for row in rows:
            if "fid" in row:
                self.observe(row["fid"], row["epoch"])


class Evaluation:
    """Evaluates this run's G against `images`, the training images; `record(row)` appends
    a row to metrics.jsonl."""

    def __init__(self, cfg: TrainConfig, dist: Dist, images: np.ndarray, *, record, progress: bool = True,
                 log=print):
        self.cfg, self.dist, self.images = cfg, dist, images
        self.record, self.progress, self.log = record, progress, log
        self.best = BestFID()
        self.best_path = best_checkpoint(cfg.run_dir)

    def due(self, epoch: int) -> bool:
        return bool(self.cfg.eval_every) and epoch % self.cfg.eval_every == 0

    def recall(self) -> None:
        """A resumed run: the best FID and the stale count from metrics.jsonl (cut back to the checkpoint)."""
        self.best.recall(read_metrics(self.cfg.run_dir / "metrics.jsonl"))

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
        improved = self.best.observe(scores["fid"], state.epoch)
        if improved:
            keep_best()
        self.log(f"epoch {state.epoch}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  "
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
