"""`python -m facegan <command>`: train, view, synth. A thin layer over the library.

The train options are derived from TrainConfig's fields, so every config value has a
typed flag with help, and unknown flags are rejected.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from .config import PRESETS, ConfigError, TrainConfig, preset

_TYPES = {"int": int, "float": float, "str": str}


def add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config (TrainConfig fields; defaults from --preset)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
        if f.type == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, type=_TYPES[f.type], default=None, metavar=f.type.upper(),
                               help=help_text)


def explicit_overrides(args: argparse.Namespace) -> dict:
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = explicit_overrides(args)
    if args.resume:
        # The run folder's own config is the base; only what the user typed changes it,
        # and train() refuses changes a checkpoint cannot absorb.
        run_dir = Path(overrides.get("out") or Path("runs") / overrides.get("name", "run"))
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise ConfigError(f"--resume: {saved} not found; pass --out with the folder of the run to continue")
        base = json.loads(saved.read_text())
        return TrainConfig.from_dict({**base, **overrides, "out": str(run_dir)})
    if args.preset:
        return preset(args.preset, **overrides)
    return TrainConfig(**overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    cfg = config_from_args(args)
    summary = train(cfg, resume=args.resume, progress=not args.quiet)
    print(f"done: {summary['steps']} steps, {summary['images_seen']} images in {summary['seconds']} s")
    print(f"samples:   {summary['grid']}")
    print(f"loss plot: {summary['losses']}")
    print(f"run folder: {summary['run_dir']} (resume with: python -m facegan train --out "
          f"{summary['run_dir']} --resume --epochs N)")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from .plots import save_figure, view_samples
    from .sample import load_train_samples

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


def cmd_synth(args: argparse.Namespace) -> int:
    from .synthetic import write_face_folder

    out = write_face_folder(args.out_dir, args.n, size=args.size, seed=args.seed)
    print(f"wrote {args.n} synthetic faces to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facegan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a DCGAN; writes a run folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named config to start from")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or runs/<name>) from checkpoints/latest.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("view", help="plot a run's train_samples.pkl as the course's view_samples does")
    p.add_argument("run_dir")
    p.add_argument("--epoch", type=int, default=-1, help="which epoch's samples (-1: the last)")
    p.add_argument("--out", help="PNG to write (default: RUN_DIR/view_samples.png)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("synth", help="write procedural synthetic faces to a folder of PNGs")
    p.add_argument("out_dir")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .data import DataError
    from .train import TrainingError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, CheckpointError, TrainingError, FileNotFoundError, ValueError) as e:
        print(f"facegan: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("facegan: interrupted; the last completed epoch is in checkpoints/latest.pt "
              "(continue with --resume)", file=sys.stderr)
        return 130
