"""`facegan synth`: procedural synthetic faces written to a folder of PNGs."""
from __future__ import annotations

import argparse

from .argtypes import FACES, whole


def add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write procedural synthetic faces to a folder of PNGs")
    p.add_argument("out_dir")
    p.add_argument("--n", type=FACES, default=1000)
    p.add_argument("--size", type=whole(8, 1024), default=64, help="side in pixels")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_face_folder

    out = write_face_folder(args.out_dir, args.n, size=args.size, seed=args.seed)
    print(f"wrote {args.n} synthetic faces to {out}")
    return 0
