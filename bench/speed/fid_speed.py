"""The FID computation's own cost, past feature extraction: the covariance route against the
few-images route that metrics.fid_from_features takes below 2,048 images, on the same features.

Features are random (Inception-like: non-negative, 2048-d); both routes run one after the other
in this process, best of --repeat, and their values are compared.
Run from the repo root:  .venv/bin/python -m bench.speed.fid_speed [--n 64 500 2000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from facegan.eval import metrics


def covariance_route(a: np.ndarray, b: np.ndarray) -> float:
    return metrics.frechet_distance(*metrics.feature_stats(a), *metrics.feature_stats(b))


def best_seconds(fn, a: np.ndarray, b: np.ndarray, repeat: int) -> tuple[float, float]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn(a, b)
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[64, 500, 2000], help="images a set")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'n':>6} {'covariances':>12} {'few images':>11} {'speed-up':>9} {'relative gap':>13}")
    for n in args.n:
        a = rng.gamma(1.0, size=(n, 2048)).astype(np.float32)
        b = rng.gamma(1.2, size=(n, 2048)).astype(np.float32)
        slow, expected = best_seconds(covariance_route, a, b, args.repeat)
        fast, got = best_seconds(metrics.fid_from_features, a, b, args.repeat)
        print(f"{n:>6} {slow:>11.3f}s {fast:>10.3f}s {slow / fast:>8.1f}x {abs(got - expected) / expected:>13.1e}")


if __name__ == "__main__":
    main()
