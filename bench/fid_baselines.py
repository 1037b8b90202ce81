"""Reference numbers for the metrics, and InceptionV3 feature-extraction throughput.

Two disjoint halves of the real CelebA subset (n each) should be close; real vs the
synthetic faces and real vs noise should be far. Needs ../shared/data for the real
subset; without it, halves of the synthetic set stand in.
Run from the repo root:  .venv/bin/python bench/fid_baselines.py [--n 2000] [--device auto]
Prints a table and writes bench/results/fid_baselines.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from facegan.data.synthetic import make_faces  # noqa: E402
from facegan.eval import metrics  # noqa: E402
from facegan.utils.accel import resolve_device  # noqa: E402

SUBSET = ROOT.parent / "shared/data/processed-celeba-small-6k.zip"


def real_faces(n_total: int) -> tuple[np.ndarray, str]:
    if SUBSET.is_file():
        import helper
        from facegan.data.images import cached_image_array
        work = Path(tempfile.mkdtemp(prefix="facegan-fid-"))
        folder = helper.download_extract(data_dir=str(work), zip_path=str(SUBSET), progress=False)
        return np.asarray(cached_image_array(folder, 64, work / "cache", progress=False)), "CelebA subset"
    faces, _ = make_faces(n_total, 64, seed=123)
    return faces, "synthetic (no ../shared)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    n = args.n
    real, what = real_faces(2 * n)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
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
    device = str(resolve_device(args.device))
    hw = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    print(f"n={n} per set, 64px images, protocol {metrics.PROTOCOL}")
    print(f"{'comparison':<48}{'FID':>10}{'KID':>10}{'SWD':>9}")
    for name, r in rows.items():
        print(f"{name:<48}{r['fid']:>10.2f}{r['kid']:>10.4f}{r['swd']:>9.1f}")
    print(f"feature extraction: {speed:.1f} images/s on {hw}")
    out = ROOT / "bench/results/fid_baselines.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"n": n, "device": hw, "images_per_s": speed, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
