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
    from ..training.runfolder import is_facegan_run

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"{run_dir} has no config.json; give the folder of a run (e.g. runs/demo)")
    if not is_facegan_run(run_dir):  # its report.html, if any, is not facegan's to replace
        raise ConfigError(f"{run_dir} is not a facegan run folder (no .facegan-run marker, and not a run of "
                          f"facegan 0.1); give the folder of a facegan run")
    # A config.json that is not a JSON object costs the page its config table only, not the run's
    # losses, scores and samples; the note says so.
    print(f"wrote {write_report(run_dir, log=lambda message: print(f'note: {message}'))}")
    return 0
