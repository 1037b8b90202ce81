"""`facegan report`: (re)write a run's report.html, one self-contained page."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError


def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="(re)write RUN_DIR/report.html, one self-contained page for a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..eval.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"{run_dir} has no config.json; give the folder of a run (e.g. runs/demo)")
    print(f"wrote {write_report(run_dir)}")
    return 0
