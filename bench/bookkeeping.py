"""What a run's bookkeeping costs: the seconds the training loop waits on its own records.

At each epoch's end the loop writes the fixed-z grid and the checkpoint, and (now and then)
train_samples.pkl, losses.png and report.html; those three hold every epoch so far, so they
cost more as a run grows. This drives the Recorder of a `cpu`-preset run through E epochs with
no training in between: a clock that jumps EPOCH_S seconds per epoch stands for the training
(11.7 s: 62 steps of 64 at 5.3 steps/s, a 30-minute `cpu` run on this 2-core CPU), the
metrics rows are logged as in a run, and the fixed-z samples are procedural faces (so their
PNGs compress like faces; G's forward pass is left out, the same for any code). It prints
the seconds spent and their share of the run. To compare code, run it from each checkout:

    .venv/bin/python bench/bookkeeping.py --epochs 150 --epoch-seconds 11.7
    git worktree add /tmp/old HEAD~1 && .venv/bin/python /tmp/old/bench/bookkeeping.py ...
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's facegan

import torch  # noqa: E402

from facegan.config import preset  # noqa: E402
from facegan.data.synthetic import make_faces  # noqa: E402
from facegan.training import recorder as recorder_module  # noqa: E402
from facegan.training.distributed import Dist  # noqa: E402
from facegan.training.recorder import Recorder  # noqa: E402
from facegan.training.resume import RunState  # noqa: E402
from facegan.training.step import GAN  # noqa: E402


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
    recorder_module.time = clock
    with tempfile.TemporaryDirectory() as out:
        cfg = preset("cpu", out=out, n_fixed=64)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        faces, _ = make_faces(cfg.n_fixed, size=cfg.image_size, seed=0)
        recorder_module.generate = lambda G, z: faces
        device = torch.device("cpu")
        gan = GAN.build(cfg, device)
        state = RunState.fresh(cfg, device)
        rec = Recorder(cfg, Dist.from_env(), device, faces, epochs * steps_per_epoch, progress=False, log=lambda *a: None)
        parts = {**gan.parts(), "monitor": rec.monitor}
        rec.begin(state, resumed=False)
        stats = {k: torch.tensor(v) for k, v in (("d_loss", 1.8), ("g_loss", 0.3), ("d_acc", 0.6))}
        spent = 0.0
        for _ in range(epochs):
            started = time.perf_counter()
            for _ in range(steps_per_epoch):
                state.advance(cfg.batch_size)
                rec.after_step(stats, state)
            state.end_epoch()
            rec.end_epoch(state, parts, gan.sampler)
            spent += time.perf_counter() - started
            clock.jumped += epoch_seconds
        started = time.perf_counter()
        rec.close(state, gan.D, gan.G)
        return spent + time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--epoch-seconds", type=float, default=11.7, help="training seconds an epoch stands for")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the loop's writes run on one core either way
    spent = bookkeeping_seconds(args.epochs, args.epoch_seconds)
    run = args.epochs * args.epoch_seconds
    print(f"{Path(__file__).resolve().parents[1]}: {args.epochs} epochs of {args.epoch_seconds:g} s: "
          f"bookkeeping {spent:.1f} s, {100 * spent / (run + spent):.1f}% of the run")


if __name__ == "__main__":
    main()
