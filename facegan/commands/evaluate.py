"""`facegan evaluate`: FID, KID and SWD of a checkpoint's generator against a folder of real images."""
from __future__ import annotations

import argparse
import json

from . import argtypes
from .argtypes import DefaultsFormatter, whole


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="FID, KID and SWD of a checkpoint's generator against real images",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt snapshot, e.g. runs/demo/checkpoints/latest.pt")
    p.add_argument("--data-dir", required=True, help="folder of real images (recursive jpg/png)")
    p.add_argument("--n", type=whole(2, 1_000_000), default=10000, help="real and generated images compared")
    p.add_argument("--out", help="write the scores as JSON here")
    p.add_argument("--seed", type=whole(0, 2**32 - 2), default=0, help="picks the real subset and the latent vectors")
    p.add_argument("--device", type=argtypes.device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--cache-dir", default="data/cache", help="decoded images and real features are cached here")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..data.images import cached_image_array
    from ..eval.metrics import evaluate_generator
    from ..generate.export import generator_from_checkpoint
    from ..utils.accel import resolve_device
    from ..utils.atomic import atomic_write_text

    device = resolve_device(args.device)
    G, cfg = generator_from_checkpoint(args.checkpoint, device)
    real = cached_image_array(args.data_dir, cfg.image_size, args.cache_dir, progress=True)
    if len(real) < args.n:
        print(f"note: {args.data_dir} has {len(real)} images, fewer than --n {args.n}; using {len(real)}")
    scores = evaluate_generator(G, real, args.n, cfg.z_size, args.cache_dir, seed=args.seed,
                                device=str(device), progress=True)
    print(f"{'metric':<8}{'value':>12}")
    print(f"{'fid':<8}{scores['fid']:>12.3f}")
    print(f"{'kid':<8}{scores['kid']:>12.5f}  (std {scores['kid_std']:.5f})")
    print(f"{'swd':<8}{scores['swd']:>12.2f}")
    print(f"{'n':<8}{scores['n']:>12d}")
    if args.out:
        atomic_write_text(args.out, json.dumps({**scores, "checkpoint": args.checkpoint,
                                                "data_dir": args.data_dir, "seed": args.seed}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0
