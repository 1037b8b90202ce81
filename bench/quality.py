"""Quality at equal compute: the `course` and `quality` presets, trained and scored by FID.

Both presets train on the same training split of the real CelebA subset for the same
number of images seen, then their G (G_ema when the preset has one) is scored against a
held-out split with the project's FID/KID at --n images.
Run from the repo root:  .venv/bin/python bench/quality.py [--images 60000] [--n 2000] [--extra quality:r1_gamma=1]
Prints both scores and their ratio, and writes bench/results/quality.json.
Needs ../shared/data/processed-celeba-small-6k.zip.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SUBSET = ROOT.parent / "shared/data/processed-celeba-small-6k.zip"


def split_folders(work: Path, held_out: int) -> tuple[Path, Path]:
    """The subset split once, by a fixed shuffle, into train/ and held_out/ folders of links."""
    import helper
    folder = helper.download_extract(data_dir=str(work / "data"), zip_path=str(SUBSET), progress=False)
    files = sorted(folder.glob("*.jpg"))
    order = np.random.default_rng(0).permutation(len(files))
    train, test = work / "train", work / "held_out"
    for dest, idx in ((test, order[:held_out]), (train, order[held_out:])):
        dest.mkdir()
        for i in idx:
            (dest / files[i].name).symlink_to(files[i])
    return train, test


def parse_extra(items: list[str]) -> dict[str, dict]:
    """--extra quality:r1_gamma=1 -> {"quality": {"r1_gamma": 1.0}} (for ablations)."""
    from facegan.config import TrainConfig
    types = {f.name: f.type for f in TrainConfig.__dataclass_fields__.values()}
    out: dict[str, dict] = {}
    for item in items:
        name, assignment = item.split(":", 1)
        key, value = assignment.split("=", 1)
        cast = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true"), "str": str}[types[key]]
        out.setdefault(name, {})[key] = cast(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000, help="training images seen by each preset")
    parser.add_argument("--n", type=int, default=2000, help="held-out images (and samples) for FID/KID")
    parser.add_argument("--presets", default="course,quality")
    parser.add_argument("--extra", action="append", default=[], help="PRESET:field=value overrides")
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    if not SUBSET.is_file():
        sys.exit(f"bench/quality.py needs {SUBSET}")

    from facegan.config import preset
    from facegan.data import cached_image_array
    from facegan.export import generator_from_checkpoint
    from facegan.metrics import evaluate_generator
    from facegan.train import train

    extra = parse_extra(args.extra)
    work = Path(tempfile.mkdtemp(prefix="facegan-quality-"))
    results = {"images": args.images, "n": args.n, "presets": {}}
    try:
        train_dir, test_dir = split_folders(work, args.n)
        held_out = np.asarray(cached_image_array(test_dir, args.image_size, work / "cache", progress=False))
        n_train = len(list(train_dir.iterdir()))
        for name in args.presets.split(","):
            probe = preset(name, image_size=args.image_size, **extra.get(name, {}))
            epochs = max(1, math.ceil(args.images / (n_train // probe.batch_size * probe.batch_size)))
            cfg = preset(name, data="folder", data_dir=str(train_dir), image_size=args.image_size,
                         epochs=epochs, out=str(work / "runs" / name), cache_dir=str(work / "cache"),
                         **extra.get(name, {}))
            summary = train(cfg, progress=True)
            G, _ = generator_from_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
            scores = evaluate_generator(G, held_out, args.n, cfg.z_size, work / "cache", progress=True)
            results["presets"][name] = {**scores, "images_seen": summary["images_seen"],
                                        "seconds": summary["seconds"], "overrides": extra.get(name, {})}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'preset':<12}{'FID':>10}{'KID':>10}{'images seen':>14}{'train s':>10}")
    for name, r in results["presets"].items():
        print(f"{name:<12}{r['fid']:>10.2f}{r['kid']:>10.4f}{r['images_seen']:>14}{r['seconds']:>10.0f}")
    names = list(results["presets"])
    if len(names) == 2:
        a, b = (results["presets"][k]["fid"] for k in names)
        results["ratio"] = b / a
        print(f"FID ratio {names[1]} / {names[0]}: {b / a:.2f} (target <= 0.6)")
    out = ROOT / "bench/results/quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
