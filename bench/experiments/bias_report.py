"""Generators side by side: skin-tone shares, TV distances and FID, e.g. normal vs balanced training.

Reads bench.experiments.quality --audit results, one file per seed for each way of training,
prints the table the README quotes and draws the held-out faces' shares beside each
generator's (averaged over its seeds) in one chart. Run from the repo root, per seed S:
    .venv/bin/python -m bench.experiments.quality --skip-defaults --audit \\
        --out bench/results/balance-normal-sS.json --run normal-sS quality seed=S
    .venv/bin/python -m bench.experiments.quality --skip-defaults --audit \\
        --out bench/results/balance-balanced-sS.json --run balanced-sS quality seed=S balance=tone
    .venv/bin/python -m bench.experiments.quality --skip-defaults --audit \\
        --out bench/results/balance-tm4-sS.json --run tm4-sS quality seed=S balance=tone tone_match=4
    .venv/bin/python -m bench.experiments.quality --skip-defaults --audit --keep K \\
        --out bench/results/cond-sS-60k.json --run cond-sS quality seed=S balance=tone condition=tone
    .venv/bin/python -m bench.experiments.bias_report --set "trained normally" N0.json N1.json \\
        --set "--balance tone" B0.json B1.json --set "+ --tone-match 4" T0.json T1.json \\
        --set "+ --condition tone" C0.json C1.json [--chart assets/bias_audit.png]
Give each --set its seeds in the same order.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.protocol import RESULTS


def load_run(path: str) -> dict:
    runs = json.loads(Path(path).read_text())["runs"]
    return next(iter(runs.values()))


def mean_set(runs: list[dict], which: str) -> dict:
    """One image set's shares averaged over runs, in plot_shares' form."""
    parts = [run["audit"][which] for run in runs]
    return {"shares": np.mean([p["shares"] for p in parts], axis=0).tolist(), "n": sum(p["n"] for p in parts)}


def run_summary(run: dict, real_shares) -> dict[str, str]:
    """One generator's figures, formatted: median ITA, TV to uniform and to the real shares,
    FID, reweighted FID."""
    from facegan.data.tone import total_variation
    generated = run["audit"]["generated"]
    return {"median ITA": f"{generated['ita_median']:.1f}",
            "TV to uniform": f"{generated['tv_to_uniform']:.3f}",
            "TV to real": f"{total_variation(generated['shares'], real_shares):.3f}",
            "FID": f"{run['fid']:.1f}",
            "FID to tone-balanced real": f"{run['fid_reweighted']:.1f}" if "fid_reweighted" in run else "-",
            # results written before audit.occluded existed lack the count
            "occluded faces": str(sum(generated["occluded_counts"])) if "occluded_counts" in generated else "-"}


def row(name: str, values: list[str]) -> str:
    return f"{name:<26}" + "".join(f"  {v:>18}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs="+", action="append", metavar=("LABEL", "RUN.json"), required=True,
                        dest="sets", help="a way of training: its label, then one result file per seed")
    parser.add_argument("--chart", default=str(RESULTS / "bias_audit.png"))
    args = parser.parse_args()
    if any(len(given) < 2 for given in args.sets):
        parser.error("each --set needs a label and at least one result file")
    from facegan.data.tone import CATEGORIES, UNIFORM, total_variation
    from facegan.eval.audit import plot_shares
    from facegan.eval.plots import save_figure

    groups = {given[0]: [load_run(path) for path in given[1:]] for given in args.sets}
    first = next(iter(groups.values()))
    sets = {"held-out real": first[0]["audit"]["real"],
            **{label: mean_set(runs, "generated") for label, runs in groups.items()}}
    seeds = max(len(runs) for runs in groups.values())
    print(f"mean category shares over {seeds} seed(s), {first[0]['audit']['generated']['n']:,} faces per generator")
    print(row("ITA category", list(sets)))
    for i, category in enumerate(CATEGORIES):
        print(row(category, [f"{s['shares'][i]:.1%}" for s in sets.values()]))
    real = sets["held-out real"]["shares"]
    to_uniform = {label: total_variation(s["shares"], UNIFORM) for label, s in sets.items()}
    print(row("TV to uniform (of means)", [f"{v:.3f}" for v in to_uniform.values()]))

    summaries = [[run_summary(run, real) for run in runs] for runs in groups.values()]
    print("per seed (seed order as given):")
    for name in summaries[0][0]:
        print(row(name, [""] + [" / ".join(s[name] for s in side) for side in summaries]))
    title = "TV to uniform: " + ", ".join(f"{label} {v:.2f}" for label, v in to_uniform.items()) \
            + (f" (means of {seeds} seeds)" if seeds > 1 else "")
    save_figure(plot_shares(sets, title=title), args.chart)
    print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
