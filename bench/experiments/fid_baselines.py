"""Reference numbers for the metrics, and InceptionV3 feature-extraction throughput.

Two disjoint halves of the real CelebA subset (n each) should be close; real vs the
synthetic faces and real vs noise should be far. The real faces are bench.protocol's CelebA
subset (--faces, $FACEGAN_FACES or the default path); without one, halves of a synthetic set
stand in. Run from the repo root:
    .venv/bin/python -m bench.experiments.fid_baselines [--n 2000] [--device auto] [--faces ZIP]
Prints a table and writes bench/results/fid_baselines.json.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.protocol import HELD_OUT, RESULTS, SPLIT_SEED, add_faces_option, face_images, faces_zip, machine
from facegan.data.synthetic import make_faces
from facegan.eval import metrics
from facegan.utils.accel import resolve_device


def real_faces(n_total: int, faces: Path | None) -> tuple[np.ndarray, str]:
    if faces is not None:
        return face_images(faces), "CelebA subset"
    images, _ = make_faces(n_total, 64, seed=123)
    return images, "synthetic (no CelebA zip)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=HELD_OUT)
    parser.add_argument("--device", default="auto")
    add_faces_option(parser)
    args = parser.parse_args()
    n = args.n
    real, what = real_faces(2 * n, faces_zip(args.faces, required=False))
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(real))  # the split's shuffle: at n = 2,000 half A is the held-out split
    half_a, half_b = real[order[:n]], real[order[n:2 * n]]
    synthetic, _ = make_faces(n, 64, seed=0)
    noise = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)

    start = time.perf_counter()
    fa = metrics.inception_features(half_a, device=args.device, progress=True)
    speed = n / (time.perf_counter() - start)
    fb = metrics.inception_features(half_b, device=args.device, progress=True)
    fs = metrics.inception_features(synthetic, device=args.device, progress=True)
    fn = metrics.inception_features(noise, device=args.device, progress=True)

    rows = {}
    for name, (x, fx, y, fy) in {
        f"{what}: half A vs half B": (half_a, fa, half_b, fb),
        f"{what} vs synthetic faces": (half_a, fa, synthetic, fs),
        f"{what} vs uniform noise": (half_a, fa, noise, fn),
    }.items():
        kid, kid_std = metrics.kid_from_features(fx, fy)
        rows[name] = {"fid": metrics.fid_from_features(fx, fy), "kid": kid, "kid_std": kid_std,
                      "swd": metrics.swd(x, y)}
    hw = machine(resolve_device(args.device))
    print(f"n={n} per set, 64px images, protocol {metrics.PROTOCOL}")
    print(f"{'comparison':<48}{'FID':>10}{'KID':>10}{'SWD':>9}")
    for name, r in rows.items():
        print(f"{name:<48}{r['fid']:>10.2f}{r['kid']:>10.4f}{r['swd']:>9.1f}")
    print(f"feature extraction: {speed:.1f} images/s on {hw}")
    out = RESULTS / "fid_baselines.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": n, "device": hw, "images_per_s": speed, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
