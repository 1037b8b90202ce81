"""InceptionV3 features in bf16 on the CPU: how much faster, and how much FID moves.

The same image sets go through the protocol's feature extractor twice, in fp32 and in bf16
autocast, one after the other in this process; FID is computed from each. Sets (64 px, n each):
two disjoint halves of the CelebA subset (FID near the protocol's floor), CelebA against a
blurred copy of the other half (a middling FID, like a fair generator's), and CelebA against
the synthetic faces (a large FID).

Run from the repo root:  .venv/bin/python -m bench.speed.inception_bf16 [--n 2000] [--faces ZIP]
Prints a table and writes bench/results/inception_bf16.json. Needs the CelebA subset
(bench.protocol: --faces, $FACEGAN_FACES or the default path).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from PIL import Image, ImageFilter

from bench.protocol import HELD_OUT, RESULTS, SPLIT_SEED, add_faces_option, face_images, faces_zip
from facegan.data.synthetic import make_faces
from facegan.eval import metrics
from facegan.utils.accel import cpu_has_native_bf16


def blurred(images: np.ndarray, radius: float = 1.0) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in images])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=HELD_OUT)
    add_faces_option(parser)
    args = parser.parse_args()
    faces = faces_zip(args.faces)
    if not cpu_has_native_bf16():
        sys.exit("this CPU has no native bf16: nothing to compare")

    celeba = face_images(faces)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(celeba))
    a, b = celeba[order[:args.n]], celeba[order[args.n:2 * args.n]]
    sets = {"CelebA half B": b, "CelebA half B, blurred (r=1)": blurred(b),
            "synthetic faces": make_faces(args.n, 64, seed=0)[0]}

    features, seconds = {}, {}
    for precision in ("fp32", "bf16"):
        start = time.perf_counter()
        features[precision] = {"A": metrics.inception_features(a, device="cpu", bf16=precision == "bf16")}
        seconds[precision] = time.perf_counter() - start
        for name, images in sets.items():
            features[precision][name] = metrics.inception_features(images, device="cpu",
                                                                   bf16=precision == "bf16")
    rows = {}
    for name in sets:
        fid = {p: metrics.fid_from_features(features[p]["A"], features[p][name]) for p in ("fp32", "bf16")}
        rows[name] = {**fid, "difference": fid["bf16"] - fid["fp32"]}
    results = {"n": args.n, "images_per_s": {p: args.n / s for p, s in seconds.items()}, "fid_vs_celeba_half_a": rows}
    print(f"InceptionV3 features on this CPU: fp32 {results['images_per_s']['fp32']:.1f} img/s, "
          f"bf16 {results['images_per_s']['bf16']:.1f} img/s "
          f"({results['images_per_s']['bf16'] / results['images_per_s']['fp32']:.2f}x)")
    print(f"{'FID against CelebA half A':<34}{'fp32':>9}{'bf16':>9}{'bf16 - fp32':>13}")
    for name, r in rows.items():
        print(f"{name:<34}{r['fp32']:>9.2f}{r['bf16']:>9.2f}{r['difference']:>13.2f}")
    out = RESULTS / "inception_bf16.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
