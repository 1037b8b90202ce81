"""`facegan view`: a run's train_samples.pkl plotted as the course's view_samples does, saved as a PNG."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from .argtypes import whole


def add_view_parser(sub) -> None:
    p = sub.add_parser("view", help="plot a run's train_samples.pkl as the course's view_samples does")
    p.add_argument("run_dir")
    p.add_argument("--epoch", type=whole(-100_000, 100_000), default=-1, help="which epoch's samples (-1: the last)")
    p.add_argument("--out", help="PNG to write (default: RUN_DIR/view_samples.png)")
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from ..eval.plots import save_figure, view_samples
    from ..generate.sample import load_train_samples

    run_dir = Path(args.run_dir)
    samples = load_train_samples(run_dir / "train_samples.pkl")
    if not samples:
        raise ConfigError(f"{run_dir}/train_samples.pkl is empty; train at least one epoch first")
    if not -len(samples) <= args.epoch < len(samples):
        raise ConfigError(f"--epoch {args.epoch}: the run has {len(samples)} epochs of samples "
                          f"(use 0..{len(samples) - 1}, or -1 for the last)")
    n = len(samples[args.epoch])
    ncols = min(8, n)
    fig = view_samples(args.epoch, samples, nrows=-(-n // ncols), ncols=ncols)
    out = Path(args.out) if args.out else run_dir / "view_samples.png"
    save_figure(fig, out)
    print(f"wrote {out}")
    return 0
