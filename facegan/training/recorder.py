"""Everything a training run writes or says, in one object the loop calls.

The loop trains; the `Recorder` keeps the run folder (config.json, metrics.jsonl, sample
grids, train_samples.pkl, losses.png, report.html, checkpoints), the progress bar and the
log, the collapse monitor, evaluations and interruptions. Under DDP every rank calls it
alike, and it decides here which work is collective and which only rank 0 does.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import save_checkpoint, unwrap
from ..config import TrainConfig
from ..errors import TrainingError
from ..eval.runlog import RunLog, read_metrics, truncate_metrics
from ..generate.sample import generate, image_grid, save_png, save_train_samples
from ..utils.accel import precision_note
from .distributed import Dist
from .monitor import CollapseMonitor
from .resume import RunState, latest_checkpoint

# The views of a run (train_samples.pkl, losses.png, report.html) hold every epoch so far, so
# writing them costs more as a run grows: after 150 epochs about 2 s on one CPU core, which
# the training loop waits for. They are rewritten at most every VIEWS_EVERY_S, further apart
# once that would spend more than VIEWS_SHARE of the run on them, and always at its end (the
# checkpoint carries the samples since the last write, so nothing is lost in between).
VIEWS_EVERY_S = 30.0
VIEWS_SHARE = 0.02


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


class Recorder:
    """The run's side effects on this rank's `device`. `images` are the training images (the
    reals grid and the evaluation's reference); `total_steps` sizes the progress bar."""

    def __init__(self, cfg: TrainConfig, dist: Dist, device: torch.device, images: np.ndarray, total_steps: int,
                 progress: bool = True, log=print):
        self.cfg, self.dist, self.device, self.images, self.total_steps = cfg, dist, device, images, total_steps
        self.run_dir = cfg.run_dir
        self.progress, self.log = progress, log
        self.monitor = CollapseMonitor()
        self.running = RunningStats()
        self.runlog = None
        self.bar = None
        self.started = time.time()
        self.deadline = self.started + 60 * cfg.minutes if cfg.minutes else None
        self.best = BestSnapshot(self.run_dir / "checkpoints")
        self.views_drawn_at = 0.0  # when the views were last written (0: never, so the first epoch writes them)
        self.views_every = VIEWS_EVERY_S
        self.views_stale = False

    # ------------------------------------------------------------ start and end

    def begin(self, state: RunState, resumed: bool) -> None:
        """Set up the run folder (a fresh one, or the resumed one cut back to the checkpoint)."""
        from ..utils.bars import progress_bar

        self.log(precision_note(self.device, self.cfg.amp))
        if self.dist.enabled:
            self.log(f"DDP over {self.dist.world_size} processes ({self.dist.backend}): {self.cfg.batch_size} "
                     f"images a rank, {self.cfg.batch_size * self.dist.world_size} a step; learning rates as given")
        if resumed:
            self._say_resumed(state)
        if self.dist.is_main:
            if resumed:
                truncate_metrics(self.run_dir / "metrics.jsonl", state.step)
                self.best.recall(read_metrics(self.run_dir / "metrics.jsonl"))
            else:
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
                self.best.path.unlink(missing_ok=True)
                save_png(self.run_dir / "samples" / "reals.png", image_grid(np.asarray(self.images[:64])), upscale=2)
            self.cfg.save(self.run_dir / "config.json")
            self.runlog = RunLog(self.run_dir, self.cfg.tensorboard)
        self.bar = progress_bar(total=self.total_steps, initial=state.step, disable=not self.progress, unit="step",
                        dynamic_ncols=True)

    def _say_resumed(self, state: RunState) -> None:
        if state.reseeded and not self.dist.enabled:
            self.log("note: resuming on a different device; the latent stream is reseeded, so this run "
                     "will not match an uninterrupted one bit for bit")
        self.log(f"resuming {self.run_dir} after epoch {state.epoch}"
                 + (f" and {state.batch} batches" if state.batch else "")
                 + f" (step {state.step}, {state.images_seen} images)")

    def begin_epoch(self, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch + 1}/{self.cfg.epochs}")

    def close(self, state: RunState, *models: torch.nn.Module) -> dict:
        """Close the bar and logs; the run's summary."""
        self.bar.close()
        if self.dist.is_main and self.views_stale:
            self._write_views(state)
        if self.runlog is not None:
            self.runlog.close()
        best = {} if self.best.epoch is None else {"best": {"epoch": self.best.epoch, "fid": self.best.fid,
                                                             "checkpoint": str(self.best.path)}}
        return {"run_dir": str(self.run_dir), "epochs": state.epoch, "steps": state.step, **best,
                "weights_sha1": weights_fingerprint(*models),
                "images_seen": state.images_seen, "seconds": round(time.time() - self.started, 1),
                "grid": str(self.run_dir / "samples" / f"epoch_{len(state.samples):03d}.png"),
                "losses": str(self.run_dir / "losses.png"), "report": str(self.run_dir / "report.html")}

    # ------------------------------------------------------------ every step

    def after_step(self, stats: dict, state: RunState) -> None:
        self.running.add(stats)
        self.bar.update()
        if state.step % self.cfg.log_every == 0:
            self._log_row(state)

    def stop_requested(self, stop: StopOnSignal, state: RunState) -> bool:
        """A signal arrived or the time budget is spent."""
        # Under DDP every rank must stop at the same step, so they agree only at log steps.
        if self.dist.enabled and state.step % self.cfg.log_every:
            return False
        return self.dist.any(stop.signum is not None or self._out_of_time())

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    def stop_early(self, signum: int | None, state: RunState, parts: dict, *models: torch.nn.Module) -> dict:
        """Checkpoint mid-epoch, so a resume continues from the very next batch. After a signal
        raise RunInterrupted; when the time budget is spent, end the run and return its summary."""
        self.bar.close()
        if self.running.counts:
            self._log_row(state)
        path = latest_checkpoint(self.run_dir)
        if self.dist.is_main:
            self._save_samples(state)  # train_samples.pkl is current for whoever reads it next
            save_checkpoint(path, state.snapshot(self.cfg, parts))
        self.dist.barrier()
        where = f"epoch {state.epoch + 1}, batch {state.batch} (step {state.step}); checkpoint saved to {path}"
        if self.dist.any(signum is not None):
            signum = signum or signal.SIGTERM  # another rank got the signal
            raise RunInterrupted(signum, f"{signal.Signals(signum).name}: stopped at {where}; continue with --resume")
        self.log(f"time budget of {self.cfg.minutes:g} min spent: stopped at {where}; continue with --resume")
        return {**self.close(state, *models), "budget_spent": True}

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

    # ------------------------------------------------------------ every epoch

    def end_epoch(self, state: RunState, parts: dict, sampler: torch.nn.Module) -> None:
        """After epoch `state.epoch`: log the rest, draw the fixed-z samples, write them, the
        loss plot and the checkpoint, evaluate when due, and refresh the report."""
        if self.running.counts:  # flush a partial interval so every epoch is in the log
            self._log_row(state)
        if self.dist.is_main:
            state.samples.append(generate(sampler, state.fixed_z))
            self._write_grid(state)
            self._warn(self.monitor.observe_samples(state.samples[-1]), state.step)
            save_checkpoint(latest_checkpoint(self.run_dir), state.snapshot(self.cfg, parts))
            _keep_epoch_snapshot(latest_checkpoint(self.run_dir), state.epoch, self.cfg.keep_checkpoints)
            if self.cfg.eval_every and state.epoch % self.cfg.eval_every == 0:
                self._evaluate(sampler, state)
            self.views_stale = True
            if time.time() - self.views_drawn_at >= self.views_every:
                self._write_views(state)
        self.dist.barrier()

    def _save_samples(self, state: RunState) -> None:
        if state.samples_saved < len(state.samples):
            save_train_samples(self.run_dir / "train_samples.pkl", state.samples)
            state.samples_saved = len(state.samples)

    def _write_views(self, state: RunState) -> None:
        """train_samples.pkl, the loss plot and report.html, from the run so far; the time they
        took sets how long until the next write."""
        from ..eval.plots import plot_losses, save_figure  # matplotlib: only the writing side of a run needs it
        from ..eval.report import write_report

        started = time.time()
        self._save_samples(state)
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists() and metrics.stat().st_size:
            save_figure(plot_losses(read_metrics(metrics)), self.run_dir / "losses.png")
        write_report(self.run_dir)
        self.views_drawn_at, self.views_stale = time.time(), False
        self.views_every = max(VIEWS_EVERY_S, (self.views_drawn_at - started) / VIEWS_SHARE)

    def plateaued(self) -> bool:
        """--early-stop: true on every rank once that many evaluations brought no new best FID."""
        done = bool(self.cfg.early_stop) and self.best.stale >= self.cfg.early_stop
        if done and self.dist.is_main:
            self.log(f"early stop: no better FID in {self.best.stale} evaluations; the best, {self.best.fid:.2f} "
                     f"at epoch {self.best.epoch}, is in {self.best.path}")
        return self.dist.any(done)

    def _write_grid(self, state: RunState) -> None:
        grid = image_grid(state.samples[-1], nrow=8)
        save_png(self.run_dir / "samples" / f"epoch_{state.epoch:03d}.png", grid,
                 upscale=max(1, 128 // state.samples[-1].shape[1]))
        if self.cfg.tensorboard:
            self.runlog.image("samples", grid, state.step)

    def _evaluate(self, G: torch.nn.Module, state: RunState) -> None:
        """FID/KID/SWD of the current G against the training images, as a metrics.jsonl row."""
        from ..eval.metrics import evaluate_generator

        cfg = self.cfg
        scores = evaluate_generator(G, self.images, cfg.eval_n, cfg.z_size, cfg.cache_dir, seed=cfg.seed,
                                    device=cfg.device, progress=self.progress)
        self.runlog.append({"step": state.step, "epoch": state.epoch, "images": state.images_seen,
                            "eval_n": scores["n"], **{k: round(scores[k], 6) for k in ("fid", "kid", "kid_std", "swd")}})
        improved = self.best.observe(scores["fid"], state.epoch)
        if improved:  # latest.pt holds exactly the weights just scored
            self.best.keep(latest_checkpoint(self.run_dir))
        self.log(f"epoch {state.epoch}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  "
                 f"SWD {scores['swd']:.1f}  (n={scores['n']})" + ("  new best: checkpoints/best.pt" if improved else ""))


class BestSnapshot:
    """The snapshot with the lowest FID so far, kept as checkpoints/best.pt, and how many
    evaluations have passed since it (for --early-stop). A resumed run recalls both from
    metrics.jsonl, which holds every evaluation up to its checkpoint."""

    def __init__(self, folder: Path):
        self.path = folder / "best.pt"
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

    def keep(self, latest: Path) -> None:
        """best.pt becomes a copy of `latest`, swapped in whole (a link when the disk allows)."""
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        partial.unlink(missing_ok=True)
        try:
            os.link(latest, partial)
        except OSError:
            shutil.copyfile(latest, partial)
        os.replace(partial, self.path)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def weights_fingerprint(*models: torch.nn.Module) -> str:
    """A hash of the parameters: equal across DDP ranks, and across identical runs.

    BatchNorm's running statistics are left out: each rank updates them from its own
    batches (rank 0's are saved), unless sync_bn shares the batch statistics.
    """
    import hashlib

    h = hashlib.sha1()
    for model in models:
        for name, t in unwrap(model).named_parameters():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _keep_epoch_snapshot(latest: Path, epoch: int, keep: int) -> None:
    """Keep latest.pt as epoch_XXX.pt too, and only the newest `keep` of those."""
    if keep <= 0:
        return
    target = latest.parent / f"epoch_{epoch:03d}.pt"
    target.unlink(missing_ok=True)
    try:
        os.link(latest, target)  # same bytes, no second write
    except OSError:
        shutil.copyfile(latest, target)
    for old in sorted(latest.parent.glob("epoch_*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
