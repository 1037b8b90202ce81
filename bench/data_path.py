"""One epoch of input batches: the course's PIL DataLoader vs the uint8 cache.

Uses the real CelebA subset when ../shared/data has it, else a folder of synthetic faces.
Run from the repo root:  .venv/bin/python bench/data_path.py [--size 64] [--batch-size 128]
Prints a table and writes bench/results/data_path.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from facegan.data import FaceBatches, cached_image_array, get_dataloader  # noqa: E402

SUBSET = ROOT.parent / "shared/data/processed-celeba-small-6k.zip"


def image_folder(work: Path) -> tuple[Path, str]:
    if SUBSET.is_file():
        import helper
        return helper.download_extract(data_dir=str(work), zip_path=str(SUBSET), progress=False), \
            "CelebA subset (6,000 JPEGs)"
    from facegan.synthetic import write_face_folder
    return write_face_folder(work / "faces", 4096, size=64), "synthetic faces (4,096 PNGs)"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drain(batches) -> int:
    n = 0
    for x in batches:
        n += len(x)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facegan-bench-"))
    try:
        folder, what = image_folder(work)
        loader = get_dataloader(args.batch_size, args.size, str(folder))
        n = len(loader.dataset)
        pil = timed(lambda: drain(loader))
        build = timed(lambda: cached_image_array(folder, args.size, work / "cache", progress=False))
        images = cached_image_array(folder, args.size, work / "cache", progress=False)
        batches = FaceBatches(images, args.batch_size)
        cached = timed(lambda: drain(batches.epoch(0)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = {
        "PIL DataLoader (per-item decode), one epoch": pil,
        "cache build (decode once, write .npy)": build,
        "uint8 cache -> batches, one epoch": cached,
    }
    print(f"{what}, {args.size}px, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}")
    for name, seconds in rows.items():
        print(f"  {name:<46} {seconds:7.2f} s  {n / seconds:10.0f} img/s")
    print(f"  speed-up of later epochs: {pil / cached:.0f}x")
    out = ROOT / "bench/results/data_path.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"dataset": what, "n": n, "size": args.size, "batch_size": args.batch_size,
                               "seconds": rows, "speedup": pil / cached}, indent=2) + "\n")


if __name__ == "__main__":
    main()
