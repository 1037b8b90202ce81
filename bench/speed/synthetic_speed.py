"""Measure how fast the synthetic face dataset draws: images/s per size, serial and parallel.

Run from the repo root:  .venv/bin/python -m bench.speed.synthetic_speed [N]   (default N=2000)
"""
from __future__ import annotations

import argparse
import os
import time

from facegan.config import IMAGE_SIZES as SIZES
from facegan.data.synthetic import make_faces


def images_per_second(n: int, size: int, workers: int | None) -> float:
    start = time.perf_counter()
    make_faces(n, size=size, seed=0, workers=workers)
    return n / (time.perf_counter() - start)


def main(n: int = 2000) -> None:
    make_faces(8, size=32)  # warm imports and caches so the first row is fair
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"make_faces, n={n}, {cores} CPU cores")
    print(f"{'size':>5} {'workers=1':>12} {f'workers={cores}':>12}")
    for size in SIZES:
        serial = images_per_second(n, size, workers=1)
        parallel = images_per_second(n, size, workers=None)
        print(f"{size:>5} {serial:>10.0f}/s {parallel:>10.0f}/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="faces drawn per size and way")
    main(parser.parse_args().n)
