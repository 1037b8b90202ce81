"""Normal vs balanced training, side by side: skin-tone shares, TV distances and FID.

Reads pairs of bench/quality.py --audit results (one normal and one --balance tone run per
seed), prints the table the README quotes, and draws the held-out faces' shares beside both
generators' (averaged over the pairs) in one chart. Run from the repo root, per seed S:
    .venv/bin/python bench/quality.py --skip-defaults --audit \\
        --out bench/results/balance-normal-sS.json --run normal-sS quality seed=S
    .venv/bin/python bench/quality.py --skip-defaults --audit \\
        --out bench/results/balance-balanced-sS.json --run balanced-sS quality seed=S balance=tone
    .venv/bin/python bench/bias_report.py --pair N0.json B0.json --pair N1.json B1.json \\
        [--chart assets/bias_audit.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_run(path: str) -> dict:
    runs = json.loads(Path(path).read_text())["runs"]
    return next(iter(runs.values()))


def mean_set(runs: list[dict], which: str) -> dict:
    """One image set's shares averaged over runs, in plot_shares' form."""
    parts = [run["audit"][which] for run in runs]
    return {"shares": np.mean([p["shares"] for p in parts], axis=0).tolist(), "n": sum(p["n"] for p in parts)}


def run_summary(run: dict, real_shares) -> dict[str, str]:
    """One generator's figures, formatted: TV to uniform and to the real shares, FID, reweighted FID."""
    from facegan.audit import total_variation
    generated = run["audit"]["generated"]
    return {"TV to uniform": f"{generated['tv_to_uniform']:.3f}",
            "TV to real": f"{total_variation(generated['shares'], real_shares):.3f}",
            "FID": f"{run['fid']:.1f}",
            "FID to tone-balanced real": f"{run['fid_reweighted']:.1f}" if "fid_reweighted" in run else "-"}


def row(name: str, values: list[str]) -> str:
    return f"{name:<26}" + "".join(f"{v:>18}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", nargs=2, action="append", metavar=("NORMAL.json", "BALANCED.json"),
                        required=True, help="a normal and a balanced run at the same seed and images seen")
    parser.add_argument("--chart", default=str(ROOT / "bench/results/bias_audit.png"))
    args = parser.parse_args()
    from facegan.audit import CATEGORIES, UNIFORM, plot_shares, total_variation
    from facegan.plots import save_figure

    pairs = [(load_run(n), load_run(b)) for n, b in args.pair]
    normal, balanced = [p[0] for p in pairs], [p[1] for p in pairs]
    sets = {"held-out real": normal[0]["audit"]["real"], "trained normally": mean_set(normal, "generated"),
            "--balance tone": mean_set(balanced, "generated")}
    print(f"mean category shares over {len(pairs)} seed(s), 2,000 faces per generator")
    print(row("ITA category", list(sets)))
    for i, category in enumerate(CATEGORIES):
        print(row(category, [f"{s['shares'][i]:.1%}" for s in sets.values()]))
    real = sets["held-out real"]["shares"]
    print(row("TV to uniform (of means)", [f"{total_variation(s['shares'], UNIFORM):.3f}" for s in sets.values()]))

    summaries = [[run_summary(run, real) for run in runs] for runs in (normal, balanced)]
    print("per seed (seed order as given):")
    for name in summaries[0][0]:
        print(row(name, [""] + [" / ".join(s[name] for s in side) for side in summaries]))
    title = (f"TV to uniform: real {total_variation(real, UNIFORM):.2f}, trained normally "
             f"{total_variation(sets['trained normally']['shares'], UNIFORM):.2f}, --balance tone "
             f"{total_variation(sets['--balance tone']['shares'], UNIFORM):.2f}"
             + (f" (means of {len(pairs)} seeds)" if len(pairs) > 1 else ""))
    save_figure(plot_shares(sets, title=title), args.chart)
    print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
