"""Where a run's time goes besides its steps, read from the run's own metrics.jsonl.

Rows are logged every `log_every` steps with the seconds since the start. An interval between
two rows of one epoch is steps alone; one that crosses an epoch's end also holds that end's
work (fixed-z samples, G_ema's statistics, the checkpoint, the views). Taking the median
seconds per step within epochs as the step's cost, the rest of each crossing interval is the
epoch's bookkeeping. Run from the repo root on a kept run folder:

    .venv/bin/python -m bench.speed.run_overhead RUN_DIR [RUN_DIR ...]

Prints, per run: images/s over the run, the step's own rate inside epochs, and the seconds and
share of the run spent at epoch ends, at the start (before the first row) and after the last row.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def overhead(run_dir: Path) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "d_loss" in r and "time" in r]
    config = json.loads((run_dir / "config.json").read_text())
    within, crossing = [], []
    for a, b in zip(rows, rows[1:]):
        steps = b["step"] - a["step"]
        if steps <= 0:
            continue
        (within if b["epoch"] == a["epoch"] else crossing).append((b["time"] - a["time"], steps))
    per_step = statistics.median(t / s for t, s in within)
    epoch_ends = sum(max(0.0, t - s * per_step) for t, s in crossing)
    total = rows[-1]["time"]
    images = rows[-1]["images"]
    return {"run": str(run_dir), "images_per_s": images / total,
            "step_images_per_s": config["batch_size"] / per_step, "seconds": total,
            "epoch_ends_s": epoch_ends, "epoch_ends_share": epoch_ends / total, "epochs": len(crossing),
            "start_s": rows[0]["time"] - rows[0]["step"] * per_step}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print(f"{'run':<40}{'img/s':>8}{'in epochs':>11}{'epoch ends':>12}{'share':>7}{'per end':>9}{'start':>7}")
    for run in args.runs:
        o = overhead(run)
        print(f"{o['run'][-40:]:<40}{o['images_per_s']:>8.0f}{o['step_images_per_s']:>11.0f}"
              f"{o['epoch_ends_s']:>11.0f}s{o['epoch_ends_share']:>7.1%}"
              f"{o['epoch_ends_s'] / max(o['epochs'], 1):>8.2f}s{o['start_s']:>6.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
