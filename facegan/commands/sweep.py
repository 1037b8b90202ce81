"""`facegan sweep`: its arguments and handler. The search is search.py's, which imports numpy
and the metrics, so it loads only when the command runs, not for `facegan --help`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import PRESETS
from .argtypes import DefaultsFormatter, whole


def add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="search hyperparameters with Optuna: trials are training runs scored by "
                                     "FID (pip install 'facegan[sweep]')", formatter_class=DefaultsFormatter,
                       description="Search TrainConfig fields with an Optuna study. Each trial trains a run "
                                   "folder OUT/trial-NNN and is scored by its lowest training-time FID; run the "
                                   "same command again to continue an interrupted sweep (docs/sweep.md).")
    p.add_argument("--out", required=True, help="the sweep folder: study.db, trial-NNN run folders, trials.csv, "
                                                "plots")
    p.add_argument("--param", action="append", metavar="FIELD=SPEC",
                   help="a searched field, repeatable: LOW:HIGH (a range), LOW:HIGH:log (log scale) or A,B,C "
                        "(choices), e.g. lr_d=1e-5:1e-3:log or batch_size=32,64,128")
    p.add_argument("--space", metavar="FILE.json", help='searched fields as JSON, e.g. {"lr_d": {"low": 1e-5, '
                                                        '"high": 1e-3, "log": true}, "beta1": {"choices": [0.0, 0.5]}}')
    p.add_argument("--preset", choices=sorted(PRESETS), help="the base config every trial starts from")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="fix a config field for every trial, repeatable, e.g. epochs=10 or eval_n=2000")
    p.add_argument("--trials", type=whole(1, 100_000), default=20,
                   help="finished trials wanted (complete, pruned or failed), counting earlier runs of the sweep")
    p.add_argument("--study", help="the study's name (default: the folder's name)")
    p.add_argument("--storage", help="an Optuna database URL, e.g. postgresql://host/db "
                                     "(default: sqlite:///OUT/study.db)")
    p.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                   help="how trials' values are drawn: TPE (guided by the trials so far) or uniformly")
    p.add_argument("--pruner", choices=("median", "none"), default="median",
                   help="median stops a trial whose FID is worse than earlier trials' median at that epoch")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0,
                   help="seeds the sampler (each trial trains with the config's seed: --set seed=N)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from .search import SweepOptions, base_config, read_space, run_sweep, summary_lines

    space = read_space(args.space, args.param or [])
    base = base_config(args.preset, args.set or [])
    options = SweepOptions(out=Path(args.out), trials=args.trials, study=args.study, storage=args.storage,
                           sampler=args.sampler, pruner=args.pruner, seed=args.seed)
    try:
        summary = run_sweep(base, space, options, progress=not args.quiet)
    except KeyboardInterrupt:  # a second Ctrl-C: the trial stops without a checkpoint of its own
        print("facegan: sweep interrupted; run the same command again to continue it", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(summary)))
    return 0
