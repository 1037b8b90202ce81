"""`facegan audit`: skin-tone (ITA) shares of real and/or generated faces, and their distance."""
from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import FACES, SEED, DefaultsFormatter, seed_range


def add_audit_parser(sub) -> None:
    p = sub.add_parser("audit", help="skin-tone (ITA) shares of real and/or generated faces, and their "
                                     "distance", formatter_class=DefaultsFormatter)
    p.add_argument("--data-dir", help="a folder of real faces")
    p.add_argument("--checkpoint", help="a .pt checkpoint or .safetensors export whose faces to audit")
    p.add_argument("--n", type=FACES, default=2000, help="generated faces (seeds seed..seed+n-1)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default="audit.json", help="JSON results; the bar chart is written beside it (.png)")
    p.add_argument("--cache-dir", default="data/cache")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from ..data.tone import CATEGORIES
    from ..eval.audit import run_audit, summary_line

    seed_range(args.seed, args.n)
    result = run_audit(args.data_dir, args.checkpoint, args.n, args.out, args.cache_dir, seed=args.seed)
    sets = [name for name in ("real", "generated") if name in result]
    print(f"{'ITA category':<14}" + "".join(f"{name:>11}" for name in sets))
    for i, category in enumerate(CATEGORIES):
        print(f"{category:<14}" + "".join(f"{result[name]['shares'][i]:>11.1%}" for name in sets))
    print(summary_line(result))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0
