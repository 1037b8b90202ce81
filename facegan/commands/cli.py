"""`python -m facegan <command>`: train, sample, interpolate, evaluate, export, report, serve, view, synth, sweep, exercise.

A thin layer over the library. Each command module adds its subcommand, the arguments beside
the handler that reads them (`add_NAME_parser(sub)` sets `func`). Those modules import only
argparse-level code at the top, so `facegan --help` does not load torch; a handler imports what
it needs when it runs. This module assembles the parser and turns a user's error into one line.
"""
from __future__ import annotations

import argparse
import sys

from .audit import add_audit_parser
from .evaluate import add_evaluate_parser
from .exercise import add_exercise_parser
from .export import add_export_parser
from .report import add_report_parser
from .sample import add_sample_parsers
from .serve import add_serve_parser
from .sweep import add_sweep_parser
from .synth import add_synth_parser
from .train import add_train_parser
from .view import add_view_parser

# In the order `facegan --help` lists them; each adds its subparser(s) with the handler set as `func`.
COMMANDS = (add_train_parser, add_sample_parsers, add_report_parser, add_serve_parser, add_audit_parser,
            add_view_parser, add_evaluate_parser, add_export_parser, add_synth_parser, add_exercise_parser,
            add_sweep_parser)


class OneLineErrors(argparse.ArgumentParser):
    """argparse prints a usage block before its error; one line naming the fix reads better."""

    def error(self, message: str):
        self.exit(2, f"facegan: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m facegan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help ends here, before torch is imported below
    from ..errors import FaceganError, OutputError
    from ..training.loop import RunInterrupted

    try:
        return args.func(args)
    except RunInterrupted as e:
        print(f"facegan: {e}", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for "ended by signal N"
    except OutputError as e:
        after = " (then continue the run with --resume)" if args.command == "train" else ""
        print(f"facegan: error: {e}{after}", file=sys.stderr)
        return 1
    except (FaceganError, FileNotFoundError, ValueError) as e:
        print(f"facegan: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        latest = _latest_checkpoint(args)
        saved = f"; the last completed epoch is in {latest} (continue with --resume)" if latest else ""
        print(f"facegan: interrupted{saved}", file=sys.stderr)
        return 130


def _latest_checkpoint(args: argparse.Namespace):
    """The interrupted train run's checkpoints/latest.pt, when there is one to point at."""
    from pathlib import Path

    from ..config import PRESETS

    if args.command != "train":
        return None
    name = args.name or PRESETS.get(args.preset or "", {}).get("name") or "run"
    latest = Path(args.out or Path("runs") / name) / "checkpoints" / "latest.pt"
    return latest if latest.is_file() else None
