"""Normal vs balanced training, side by side: skin-tone shares, TV distances and FID.

Reads two bench/quality.py --audit results and prints the table the README quotes, and
draws the shares of the held-out faces and both generators in one chart. Run from the repo root:
    .venv/bin/python bench/quality.py --skip-defaults --audit --images 30000 \\
        --out bench/results/balance-normal.json --run normal quality
    .venv/bin/python bench/quality.py --skip-defaults --audit --images 30000 \\
        --out bench/results/balance-tone.json --run balanced quality balance=tone
    .venv/bin/python bench/bias_report.py [--chart assets/bias_audit.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_run(path: str) -> tuple[str, dict]:
    runs = json.loads(Path(path).read_text())["runs"]
    label, run = next(iter(runs.items()))
    return label, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", default=str(ROOT / "bench/results/balance-normal.json"))
    parser.add_argument("--balanced", default=str(ROOT / "bench/results/balance-tone.json"))
    parser.add_argument("--chart", default=str(ROOT / "bench/results/bias_audit.png"))
    args = parser.parse_args()
    from facegan.audit import CATEGORIES, UNIFORM, plot_shares, total_variation
    from facegan.plots import save_figure

    (_, normal), (_, balanced) = load_run(args.normal), load_run(args.balanced)
    sets = {"held-out real": normal["audit"]["real"], "trained normally": normal["audit"]["generated"],
            "--balance tone": balanced["audit"]["generated"]}
    print(f"{'ITA category':<14}" + "".join(f"{name:>18}" for name in sets))
    for i, category in enumerate(CATEGORIES):
        print(f"{category:<14}" + "".join(f"{s['shares'][i]:>18.1%}" for s in sets.values()))
    print(f"{'TV to uniform':<14}" + "".join(f"{total_variation(s['shares'], UNIFORM):>18.3f}" for s in sets.values()))
    real = sets["held-out real"]["shares"]
    print(f"{'TV to real':<14}{'':>18}" + "".join(f"{total_variation(s['shares'], real):>18.3f}"
                                                for s in list(sets.values())[1:]))
    print(f"{'FID':<14}{'':>18}{normal['fid']:>18.2f}{balanced['fid']:>18.2f}")
    title = (f"TV to uniform: real {total_variation(real, UNIFORM):.2f}, normal "
             f"{total_variation(sets['trained normally']['shares'], UNIFORM):.2f}, balanced "
             f"{total_variation(sets['--balance tone']['shares'], UNIFORM):.2f}")
    save_figure(plot_shares(sets, title=title), args.chart)
    print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
