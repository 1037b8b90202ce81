"""What a run's bookkeeping costs: the seconds the training loop waits on its own records.

At each epoch's end the loop writes the fixed-z grid and the checkpoint, and (now and then)
train_samples.pkl, losses.png and report.html; those three hold every epoch so far, so they
cost more as a run grows. This makes the loop's end-of-epoch calls of a `cpu`-preset run for
E epochs with no training in between: a clock that jumps EPOCH_S seconds per epoch stands for
the training (11.7 s: 62 steps of 64 at 5.3 steps/s, a 30-minute `cpu` run on this 2-core CPU),
the metrics rows are logged as in a run, and the fixed-z samples are procedural faces (so their
PNGs compress like faces; G's forward pass is left out, the same for any code). It prints
the seconds spent and their share of the run. To compare code, run it from each checkout's
root (`-m` imports the facegan of the folder it starts in):

    .venv/bin/python -m bench.speed.bookkeeping --epochs 150 --epoch-seconds 11.7
    git worktree add /tmp/old HEAD~1 && (cd /tmp/old && "$OLDPWD/.venv/bin/python" -m bench.speed.bookkeeping ...)
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from bench.protocol import ROOT
from facegan.config import preset
from facegan.data.synthetic import make_faces
from facegan.training import steplog as steplog_module
from facegan.training import views as views_module
from facegan.training.distributed import Dist
from facegan.training.resume import RunState
from facegan.training.snapshots import Snapshots, weights_fingerprint
from facegan.training.step import GAN
from facegan.training.steplog import StepLog
from facegan.training.views import Views


class JumpingClock:
    """time.time() plus the training seconds the run has 'spent' so far."""

    def __init__(self):
        self.jumped = 0.0

    def time(self) -> float:
        return time.time() + self.jumped

    def __getattr__(self, name):
        return getattr(time, name)


def bookkeeping_seconds(epochs: int, epoch_seconds: float, steps_per_epoch: int = 62) -> float:
    clock = JumpingClock()
    steplog_module.time = views_module.time = clock
    with tempfile.TemporaryDirectory() as out:
        cfg = preset("cpu", out=out, n_fixed=64)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        faces, _ = make_faces(cfg.n_fixed, size=cfg.image_size, seed=0)
        device = torch.device("cpu")
        gan = GAN.build(cfg, device)
        state = RunState.fresh(cfg, device)
        steplog = StepLog(cfg, Dist.from_env(), total_steps=epochs * steps_per_epoch, progress=False,
                          log=lambda *a: None)
        snapshots, views = Snapshots(cfg, {**gan.parts(), "monitor": steplog.monitor}), Views(cfg.run_dir)
        steplog.open(state, device, resumed=False)
        views.write_reals(faces)
        steplog.start(state)
        stats = {k: torch.tensor(v) for k, v in (("d_loss", 1.8), ("g_loss", 0.3), ("d_acc", 0.6))}
        spent = 0.0
        for _ in range(epochs):
            started = time.perf_counter()
            for _ in range(steps_per_epoch):
                state.advance(cfg.batch_size)
                steplog.after_step(stats, state)
            state.end_epoch()
            # The end of an epoch as facegan/training/loop.py has it (the preset does not evaluate)
            steplog.flush(state)
            state.samples.append(faces)
            steplog.watch_samples(state, views.write_grid(state))
            snapshots.save(state)
            snapshots.keep_epoch(state.epoch)
            views.refresh(state)
            spent += time.perf_counter() - started
            clock.jumped += epoch_seconds
        started = time.perf_counter()
        steplog.close()
        views.finish(state)
        weights_fingerprint(gan.D, gan.G)  # the summary's
        return spent + time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--epoch-seconds", type=float, default=11.7, help="training seconds an epoch stands for")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the loop's writes run on one core either way
    spent = bookkeeping_seconds(args.epochs, args.epoch_seconds)
    run = args.epochs * args.epoch_seconds
    print(f"{ROOT}: {args.epochs} epochs of {args.epoch_seconds:g} s: "
          f"bookkeeping {spent:.1f} s, {100 * spent / (run + spent):.1f}% of the run")


if __name__ == "__main__":
    main()
