"""G_ema's BatchNorm statistics copied from G, or measured on G_ema itself: one checkpoint, both ways.

Training never reads G_ema's statistics (every update copies G's), so the same weights can
be scored with G's copies and with statistics measured on G_ema's own samples
(EMA.measure_norms, `--ema-norm-samples`), free of seed noise. A checkpoint keeps G's
copies in its "G" entry whichever way its "G_ema" was written, so old and new ones work.
Scores on the Quality protocol (bench.protocol's 2,000 held-out faces, FID/KID at --n), or
with --synthetic against --n synthetic faces no run trained on (bench.experiments.demo's, for the demo).

Run from the repo root:
    .venv/bin/python -m bench.experiments.ema_norms --samples 256 3200 RUN/checkpoints/latest.pt [...]
    facegan train --preset demo --seed 1 --out runs/demo-s1      # then:
    .venv/bin/python -m bench.experiments.ema_norms --synthetic --n 1000 runs/demo-s1/checkpoints/latest.pt
Prints one line per checkpoint and way; writes --out (JSON) after each score.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

from bench.protocol import (
    CACHE,
    HELD_OUT,
    RESULTS,
    SYNTHETIC_HELD_OUT_SEED,
    add_faces_option,
    faces_zip,
    held_out_images,
)

STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--samples", nargs="*", type=int, default=[256],
                        help="latents to measure on (each scored); none: score G's copied statistics only")
    parser.add_argument("--n", type=int, default=HELD_OUT, help="held-out images (and samples) for FID/KID")
    parser.add_argument("--synthetic", action="store_true", help="score against synthetic faces, not CelebA")
    parser.add_argument("--out", type=Path, default=RESULTS / "ema_norms.json")
    add_faces_option(parser)
    args = parser.parse_args()
    faces = None if args.synthetic else faces_zip(args.faces)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    from facegan.checkpoint import load_checkpoint
    from facegan.data.synthetic import make_faces
    from facegan.eval.metrics import evaluate_generator
    from facegan.generate.export import config_from
    from facegan.nets.models import build_generator
    from facegan.training.ema import EMA
    from facegan.utils.seeds import stream_seed

    @functools.cache
    def held_out_faces(image_size: int) -> np.ndarray:
        if args.synthetic:
            return make_faces(args.n, image_size, seed=SYNTHETIC_HELD_OUT_SEED)[0]
        return held_out_images(args.n, faces, image_size)

    results = {}
    for path in args.checkpoints:
        saved = load_checkpoint(path)
        if saved.get("G_ema") is None:
            sys.exit(f"{path}: no G_ema (ema_decay 0); nothing to compare")
        cfg = config_from(saved["config"], path)
        held_out = held_out_faces(cfg.image_size)
        G = build_generator(cfg).eval()
        G.load_state_dict({k: saved["G"][k] if k.endswith(STATISTICS) else v for k, v in saved["G_ema"].items()})
        ways = {"copied from G": G}
        for samples in args.samples:
            ema = EMA(G, cfg.ema_decay)  # a copy: G keeps the copied statistics
            ema.measure_norms(cfg.z_size, samples, stream_seed(cfg.seed, "ema_norms"))
            ways[f"measured on {samples}"] = ema.model
        for way, net in ways.items():
            scores = evaluate_generator(net, held_out, args.n, cfg.z_size, CACHE)
            results.setdefault(str(path), {})[way] = {k: scores[k] for k in ("fid", "kid", "kid_std", "swd")}
            print(f"{path}  {way}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}", flush=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
