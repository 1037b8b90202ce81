"""Quality at equal compute: the `course` and `quality` presets, trained and scored by FID.

Both presets train on the same training split of the real CelebA subset for the same
number of images seen, then their G (G_ema when the preset has one) is scored against a
held-out split with the project's FID/KID at --n images.
Run from the repo root:  .venv/bin/python bench/quality.py [--images 60000] [--n 2000]
Ablations are extra runs, each a label, a preset and overrides, scored in the same call:
    .venv/bin/python bench/quality.py --run no-ema quality ema_decay=0 --run no-aug quality augment=none
Prints every FID and its ratio to the first run's (course), and writes
bench/results/quality.json (after each run) and bench/results/quality/LABEL.png (64 samples).
With --audit each run also gets the skin-tone audit (facegan/eval/audit.py) of its generated
faces against the held-out ones, e.g. normal vs balanced training (issue 10):
    .venv/bin/python bench/quality.py --skip-defaults --audit --run normal quality --run balanced quality balance=tone
Continue kept runs to a longer budget and score them again (same labels):
    .venv/bin/python bench/quality.py --skip-defaults --keep K --run normal quality      # 63k images
    .venv/bin/python bench/quality.py --skip-defaults --resume K --images 120000 --run normal quality
The recipe table of docs/quality.md (issue 19) in one call: each recipe of RECIPES on each seed,
at equal images (--images) or at equal wall-clock time (--minutes M: each recipe's images/s is
first measured alone on all threads, one recipe after the other, and buys it M minutes of images):
    .venv/bin/python bench/quality.py --recipes --seeds 0 1 --images 63488
    .venv/bin/python bench/quality.py --recipes --seeds 0 1 --minutes 30
Each recipe's training images/s alone on all threads, and the minutes --images take at it
(issue 20's time column; image_size=N among a run's fields for other sizes):
    .venv/bin/python bench/quality.py --skip-defaults --rates --images 63488 --run g2 course g_steps=2
Needs ../shared/data/processed-celeba-small-6k.zip (or --subset ZIP, e.g. on another machine).
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

import numpy as np
import torch

SUBSET = ROOT.parent / "shared/data/processed-celeba-small-6k.zip"
CACHE = ROOT / "bench/results/cache"  # image and feature caches, keyed by content, kept between calls
GRIDS = ROOT / "bench/results/quality"
R3GAN = dict(loss="rpgan", d_norm="none", r1_gamma=1.0, r2_gamma=1.0, arch="resnet", conv_dim=32, mbstd=True,
             lr_d=2e-4, lr_g=2e-4, beta2=0.99)
# The rows of the recipe table: label -> (preset, overrides). quality-fp32 is today's quality
# as it ran before bf16 (--no-amp); at equal images it matches bf16, at equal time it sees fewer.
# quality-c48 and cpu (c32) are quality with narrower nets, which see more images in equal time.
RECIPES = {"course": ("course", {}), "quality": ("quality", {}), "quality-fp32": ("quality", {"amp": False}),
           "r3gan": ("quality", R3GAN), "quality-c48": ("quality", {"conv_dim": 48}), "cpu": ("cpu", {})}


def split_folders(held_out: int, subset: Path = SUBSET) -> tuple[Path, Path]:
    """The subset split once, by a fixed shuffle, into train/ and held_out/ folders of links.

    The split stays under bench/results, so a kept run names the same data folder when it
    is resumed by a later call (a changed data_dir would refuse the resume)."""
    import helper
    home = ROOT / f"bench/results/split-{held_out}"
    train, test = home / "train", home / "held_out"
    if test.is_dir():
        return train, test
    home.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results yet
    building = Path(tempfile.mkdtemp(prefix="split-", dir=home.parent))
    folder = helper.download_extract(data_dir=str(home / "data"), zip_path=str(subset), progress=False)
    files = sorted(folder.glob("*.jpg"))
    order = np.random.default_rng(0).permutation(len(files))
    for dest, idx in ((building / "held_out", order[:held_out]), (building / "train", order[held_out:])):
        dest.mkdir()
        for i in idx:
            (dest / files[i].name).symlink_to(files[i])
    try:
        (building / "train").rename(train)
        (building / "held_out").rename(test)  # last: its presence means the split is complete
    except OSError:
        if not test.is_dir():  # not a twin run that built the same split first
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return train, test


def parse_run(words: list[str]) -> tuple[str, str, dict]:
    """["no-ema", "quality", "ema_decay=0"] -> ("no-ema", "quality", {"ema_decay": 0.0})."""
    from facegan.config import TrainConfig
    types = {f.name: f.type for f in TrainConfig.__dataclass_fields__.values()}
    label, name, *assignments = words
    overrides = {}
    for item in assignments:
        key, value = item.split("=", 1)
        cast = {"int": int, "float": float, "bool": lambda v: v.lower() in ("1", "true"), "str": str}[types[key]]
        overrides[key] = cast(value)
    return label, name, overrides


def epochs_for(images: int, train_dir: Path, batch_size: int) -> int:
    """The whole epochs over train_dir (last partial batch dropped) that cover `images`."""
    per_epoch = len(list(train_dir.iterdir())) // batch_size * batch_size
    return max(1, math.ceil(images / per_epoch))


def grid_latents(z_size: int) -> torch.Tensor:
    """The 64 latents every saved grid shows, so grids of different runs compare face by face."""
    return torch.randn(64, z_size, generator=torch.Generator().manual_seed(7))


def train_and_score(label, name, overrides, args, train_dir, held_out, work) -> dict:
    from facegan.config import preset
    from facegan.data.tone import tone_weights
    from facegan.eval.audit import audit
    from facegan.eval.metrics import evaluate_generator
    from facegan.generate.export import generator_from_checkpoint
    from facegan.generate.sample import faces_from_seeds, generate, image_grid, save_png
    from facegan.training.loop import train

    probe = preset(name, image_size=args.image_size, **overrides)
    budget = args.budgets.get(label, args.images)  # --minutes: the images this recipe runs in that time
    epochs = epochs_for(budget, train_dir, probe.batch_size)
    cfg = preset(name, data="folder", data_dir=str(train_dir), image_size=args.image_size, epochs=epochs,
                 out=str(work / "runs" / label), cache_dir=str(CACHE), **overrides)
    if args.resume:  # continue a --keep copy of this run to --images
        shutil.copytree(Path(args.resume) / label, cfg.run_dir)
    summary = train(cfg, resume=bool(args.resume), progress=True)
    G, _ = generator_from_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    save_png(GRIDS / f"{label}.png", image_grid(generate(G, grid_latents(cfg.z_size))), upscale=2)
    # --audit also scores against the held-out faces resampled to equal tone shares (the
    # reference balanced training aims at), so balancing's FID cost splits into intended and not.
    scores = evaluate_generator(G, held_out, args.n, cfg.z_size, CACHE, progress=True,
                                reweight=tone_weights if args.audit else None)
    if args.audit:  # skin-tone shares of the same number of generated faces as held-out ones
        scores["audit"] = audit(held_out[:args.n], faces_from_seeds(G, list(range(args.n))))
    return {**scores, "preset": name, "overrides": overrides, "images_seen": summary["images_seen"],
            "seconds": summary["seconds"]}


def recipe_runs(seeds: list[int]) -> list[tuple[str, str, dict]]:
    return [(f"{label}-s{seed}", name, {**overrides, "seed": seed})
            for label, (name, overrides) in RECIPES.items() for seed in seeds]


def images_in(minutes: float, name: str, overrides: dict, images: np.ndarray, steps: int = 32) -> int:
    """The whole epochs of `images` nearest to what this recipe processes in `minutes`, alone."""
    from facegan.config import preset
    cfg = preset(name, **overrides)
    rate = rate_alone(cfg, images, steps, warmup=4)
    per_epoch = len(images) // cfg.batch_size * cfg.batch_size
    epochs = max(1, round(rate * minutes * 60 / per_epoch))
    print(f"{name} {overrides}: {rate:.1f} img/s alone -> {epochs} epochs in {minutes:g} min")
    return epochs * per_epoch


def progress_points(cfg) -> list[tuple[float | None, float]]:
    """(progress, share of the run) at which a step's cost is measured: the steps' own progress
    (None), or for progressive growing the middle of each stable and fade segment."""
    if not cfg.grow_from:
        return [(None, 1.0)]
    segments = 2 * int(math.log2(cfg.image_size // cfg.grow_from))
    width = cfg.grow_share / segments
    return [((i + 0.5) * width, width) for i in range(segments)] + [((1 + cfg.grow_share) / 2, 1 - cfg.grow_share)]


def rate_alone(cfg, images: np.ndarray, steps: int, warmup: int) -> float:
    """A recipe's training images/s alone on all threads: the harmonic mean over its phases."""
    from bench.throughput import config_rate
    return 1 / sum(share / config_rate(cfg, images, steps, warmup, progress=p) for p, share in progress_points(cfg))


def measure_rates(runs: list, args, train_dir: Path, results: dict, out: Path) -> None:
    """--rates: each run's images/s alone and the minutes --images take at it."""
    from facegan.config import preset
    from facegan.data.images import cached_image_array
    for label, name, overrides in runs:
        cfg = preset(name, **overrides)
        images = np.asarray(cached_image_array(train_dir, cfg.image_size, CACHE, progress=False))
        rate = rate_alone(cfg, images, steps=8, warmup=2)
        results["runs"][label] = {"rate": rate, "minutes": args.images / rate / 60, "overrides": overrides}
        print(f"{label:<22}{rate:>8.1f} img/s  {args.images / rate / 60:>7.1f} min for {args.images} images")
        out.write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict) -> None:
    runs = results["runs"]
    base = next(iter(runs.values()))["fid"]
    print(f"{'run':<22}{'FID':>9}{'ratio':>8}{'KID':>9}{'images seen':>13}{'train s':>9}")
    for label, r in runs.items():
        print(f"{label:<22}{r['fid']:>9.2f}{r['fid'] / base:>8.2f}{r['kid']:>9.4f}"
              f"{r['images_seen']:>13}{r['seconds']:>9.0f}")
    print("ratio = FID / FID of the first run; the target for quality is <= 0.6")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000, help="training images seen by each run")
    parser.add_argument("--n", type=int, default=2000, help="held-out images (and samples) for FID/KID")
    parser.add_argument("--run", nargs="+", action="append", metavar="LABEL PRESET [FIELD=VALUE]",
                        help="a run to score; default: --run course course --run quality quality")
    parser.add_argument("--skip-defaults", action="store_true", help="score only the --run runs")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--audit", action="store_true",
                        help="also compare skin-tone (ITA) shares of held-out and generated faces")
    parser.add_argument("--out", default=str(ROOT / "bench/results/quality.json"), help="JSON results file")
    parser.add_argument("--keep", metavar="DIR", help="copy each run folder (checkpoints, samples, metrics) "
                        "into DIR, to sample, audit or --resume it later; by default runs are scratch")
    parser.add_argument("--resume", metavar="DIR", help="continue each run from DIR/LABEL (a --keep copy) "
                        "to --images seen, then score it: a longer budget without training again from zero")
    parser.add_argument("--recipes", action="store_true", help="run the recipe table: every recipe of RECIPES "
                        "on every --seeds seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the --recipes runs")
    parser.add_argument("--rates", action="store_true", help="only measure each --run's training images/s "
                        "alone on all threads (image_size=N among its fields for other sizes) and the "
                        "minutes --images take at that rate")
    parser.add_argument("--subset", type=Path, default=SUBSET, help="the CelebA subset zip (default: %(default)s)")
    parser.add_argument("--minutes", type=float, help="with --recipes: equal wall-clock time instead of equal "
                        "--images; each recipe's rate is measured alone first")
    args = parser.parse_args()
    if not args.subset.is_file():
        sys.exit(f"bench/quality.py needs {args.subset} (--subset)")
    from facegan.data.images import cached_image_array

    runs = ([] if args.skip_defaults or args.recipes else [["course", "course"], ["quality", "quality"]])
    runs = [parse_run(words) for words in runs + (args.run or [])]
    if args.recipes:
        runs += recipe_runs(args.seeds)
    args.budgets = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"images": args.images, "n": args.n, "runs": {}}
    work = Path(tempfile.mkdtemp(prefix="facegan-quality-"))
    try:
        train_dir, test_dir = split_folders(args.n, args.subset)
        held_out = np.asarray(cached_image_array(test_dir, args.image_size, CACHE, progress=False))
        if args.minutes:  # rates first, each alone, before any training shares the machine
            train_images = np.asarray(cached_image_array(train_dir, args.image_size, CACHE, progress=False))
            budgets = {}  # a recipe's rate does not depend on its seed
            for label, name, overrides in runs:
                recipe = json.dumps([name, {k: v for k, v in overrides.items() if k != "seed"}], sort_keys=True)
                if recipe not in budgets:
                    budgets[recipe] = images_in(args.minutes, name, overrides, train_images)
                args.budgets[label] = budgets[recipe]
        results["budgets"] = args.budgets
        if args.rates:
            return measure_rates(runs, args, train_dir, results, out)
        for label, name, overrides in runs:
            results["runs"][label] = train_and_score(label, name, overrides, args, train_dir, held_out, work)
            if args.keep:
                shutil.copytree(work / "runs" / label, Path(args.keep) / label, dirs_exist_ok=True)
            out.write_text(json.dumps(results, indent=2) + "\n")  # partial results survive a stop
            report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
