"""Quality at equal compute: the `course` and `quality` presets, trained and scored by FID.

Both presets train on bench.protocol's training split of the CelebA subset (4,000 faces) for
the same number of images seen, then their G (G_ema when the preset has one) is scored against
the held-out split with the project's FID/KID at --n images. Run from the repo root:
    .venv/bin/python -m bench.experiments.quality [--images 60000] [--n 2000] [--faces ZIP]
Ablations are extra runs, each a label, a preset and overrides, scored in the same call:
    .venv/bin/python -m bench.experiments.quality --run no-ema quality ema_decay=0 --run no-aug quality augment=none
Prints every FID and its ratio to the first run's (course), and writes
bench/results/quality.json (after each run) and bench/results/quality/LABEL.png (64 samples).
--record EXPERIMENT also appends each scored run to the results ledger (bench.ledger) under that name.
With --audit each run also gets the skin-tone audit (facegan/eval/audit.py) of its generated
faces against the held-out ones, e.g. normal vs balanced training:
    .venv/bin/python -m bench.experiments.quality --skip-defaults --audit --run normal quality --run balanced quality balance=tone
Continue kept runs to a longer budget and score them again (same labels):
    .venv/bin/python -m bench.experiments.quality --skip-defaults --keep K --run normal quality      # 63k images
    .venv/bin/python -m bench.experiments.quality --skip-defaults --resume K --images 120000 --run normal quality
The recipe tables of docs/results.md in one call: each recipe of RECIPES on each seed, at equal
images (--images) or at equal wall-clock time (--minutes M: each recipe's images/s is first
measured alone on all threads, one recipe after the other, and buys it M minutes of images):
    .venv/bin/python -m bench.experiments.quality --recipes --seeds 0 1 --images 63488
    .venv/bin/python -m bench.experiments.quality --recipes --seeds 0 1 --minutes 30
Each recipe's training images/s alone on all threads, and the minutes --images take at it
(the recipe table's time column; image_size=N among a run's fields for other sizes):
    .venv/bin/python -m bench.experiments.quality --skip-defaults --rates --images 63488 --run g2 course g_steps=2
The faces: --faces ZIP, else $FACEGAN_FACES, else bench.protocol's default path.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.protocol import (
    CACHE,
    GRIDS,
    HELD_OUT,
    RESULTS,
    add_faces_option,
    config_rate,
    epochs_for,
    faces_zip,
    grid_latents,
    held_out_images,
    machine,
    parse_run,
    split_folders,
)

R3GAN = dict(loss="rpgan", d_norm="none", r1_gamma=1.0, r2_gamma=1.0, arch="resnet", conv_dim=32, mbstd=True,
             lr_d=2e-4, lr_g=2e-4, beta2=0.99)
# The rows of the recipe table: label -> (preset, overrides). quality-fp32 is today's quality
# as it ran before bf16 (--no-amp); at equal images it matches bf16, at equal time it sees fewer.
# quality-c48 and cpu (c32) are quality with narrower nets, which see more images in equal time.
RECIPES = {"course": ("course", {}), "quality": ("quality", {}), "quality-fp32": ("quality", {"amp": False}),
           "r3gan": ("quality", R3GAN), "quality-c48": ("quality", {"conv_dim": 48}), "cpu": ("cpu", {})}


def train_and_score(label, name, overrides, args, train_dir, held_out, work) -> dict:
    from facegan.config import preset
    from facegan.data.tone import tone_weights
    from facegan.eval.audit import audit
    from facegan.eval.metrics import evaluate_generator
    from facegan.generate.export import generator_from_checkpoint
    from facegan.generate.sample import faces_from_seeds, generate, image_grid, save_png
    from facegan.training.loop import train
    from facegan.utils.accel import resolve_device

    probe = preset(name, image_size=args.image_size, **overrides)
    budget = args.budgets.get(label, args.images)  # --minutes: the images this recipe runs in that time
    # minutes=M among a run's fields is `facegan train --minutes M`: the budget alone ends it
    epochs = 0 if overrides.get("minutes") else epochs_for(budget, train_dir, probe.batch_size)
    step_alone = None
    if overrides.get("minutes"):  # its step's rate beside the run's own, for the loop's overhead
        from facegan.data.images import cached_image_array
        step_alone = rate_alone(probe, np.asarray(cached_image_array(train_dir, args.image_size, CACHE,
                                                                     progress=False)), steps=64, warmup=4)
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
            "seconds": summary["seconds"], "machine": machine(resolve_device(cfg.device)), "step_alone": step_alone}


def ledger_row(experiment: str, label: str, name: str, overrides: dict, scored: dict, args) -> dict:
    """One scored run as a row of the results ledger (bench.ledger)."""
    from bench.ledger import train_flags
    from facegan.config import preset
    seed = overrides.get("seed", preset(name).seed)
    python = Path(sys.executable)
    # the interpreter as typed from the repo root (.venv/bin/python), else plain python
    python = python.relative_to(Path.cwd()) if python.is_relative_to(Path.cwd()) else "python"
    note = []
    if args.minutes:
        note.append(f"equal time: {args.minutes:g} min")
    if args.resume:
        note.append(f"continued from {Path(args.resume) / label}")
    if scored.get("step_alone"):
        run_rate = scored["images_seen"] / scored["seconds"]
        note.append(f"`--minutes` run alone: {run_rate:.0f} img/s, its step alone {scored['step_alone']:.0f} img/s "
                    f"({run_rate / scored['step_alone']:.0%})")
    # recipe_runs and the documented commands label a seed's run LABEL-sSEED: the recipe is LABEL
    return {"experiment": experiment, "recipe": label.removesuffix(f"-s{seed}"), "flags": train_flags(name, overrides),
            "seed": seed, "images": scored["images_seen"], "minutes": round(scored["seconds"] / 60, 2),
            "machine": scored["machine"], "fid": scored["fid"], "kid": scored["kid"], "n": args.n,
            "date": datetime.date.today().isoformat(),
            "command": shlex.join([str(python), "-m", "bench.experiments.quality", *sys.argv[1:]]),
            "note": "; ".join(note)}


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
    parser.add_argument("--n", type=int, default=HELD_OUT, help="held-out images (and samples) for FID/KID")
    parser.add_argument("--run", nargs="+", action="append", metavar="LABEL PRESET [FIELD=VALUE]",
                        help="a run to score; default: --run course course --run quality quality")
    parser.add_argument("--skip-defaults", action="store_true", help="score only the --run runs")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--audit", action="store_true",
                        help="also compare skin-tone (ITA) shares of held-out and generated faces")
    parser.add_argument("--out", default=str(RESULTS / "quality.json"), help="JSON results file")
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
    add_faces_option(parser)
    parser.add_argument("--minutes", type=float, help="with --recipes: equal wall-clock time instead of equal "
                        "--images; each recipe's rate is measured alone first")
    parser.add_argument("--record", metavar="EXPERIMENT", help="also append each scored run to the results "
                        "ledger (bench.ledger) as a row of this experiment")
    args = parser.parse_args()
    faces = faces_zip(args.faces)
    if args.record:  # imported before any training, so a missing ledger costs nothing
        from bench.ledger import record
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
        train_dir, _ = split_folders(args.n, faces)
        held_out = held_out_images(args.n, faces, args.image_size)
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
            if args.record:
                record([ledger_row(args.record, label, name, overrides, results["runs"][label], args)])
            report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
