"""The demo's recipe at equal wall-clock time: which variant of `make demo` draws the best faces?

`make demo` has about 2.5 minutes of a 2-core CPU to show a learner faces. Each variant is
the `demo` preset plus overrides. Two steps, so that timing and training never share cores:
    # 1. images/s of each variant, alone, one after the other in this process (all threads)
    .venv/bin/python -m bench.experiments.demo --rates --run no-ema demo ema_decay=0 --run demo demo --run b32 demo batch_size=32
    # 2. train each to the images its rate buys in --seconds, score it, draw its grid;
    #    these runs may share the machine (their results do not depend on time)
    .venv/bin/python -m bench.experiments.demo --seconds 136 --run no-ema demo ema_decay=0 --run demo demo --run b32 demo batch_size=32
Scores are FID/KID against --n synthetic faces of another seed than the training set's
(bench.protocol.SYNTHETIC_HELD_OUT_SEED: faces no run trained on). A run given epochs=N
trains N epochs whatever its rate.
Writes bench/results/demo.json (rates and scores) and, per run, bench/results/demo/LABEL.png:
the 16 faces of the fixed z every demo run shows, at 4x.
--side-by-side PNG stacks those grids, one labelled row per run, as docs/training.md shows them.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.protocol import CACHE, RESULTS, SYNTHETIC_HELD_OUT_SEED, config_rate, parse_run

GRIDS = RESULTS / "demo"


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"rates": {}, "runs": {}}


def save_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def measure_rate(name: str, overrides: dict, steps: int, warmup: int) -> float:
    from facegan.config import preset
    from facegan.data.synthetic import make_faces
    cfg = preset(name, **overrides)
    images, _ = make_faces(cfg.synthetic_n, cfg.image_size, seed=cfg.seed)
    return config_rate(cfg, images, steps, warmup)


def train_and_score(label: str, name: str, overrides: dict, epochs: int, n: int, work: Path) -> dict:
    from facegan.config import preset
    from facegan.data.synthetic import make_faces
    from facegan.eval.metrics import evaluate_generator
    from facegan.generate.export import generator_from_checkpoint
    from facegan.generate.sample import generate, image_grid, save_png
    from facegan.training.loop import train

    cfg = preset(name, **{**overrides, "epochs": epochs, "out": str(work / label), "cache_dir": str(CACHE)})
    summary = train(cfg, progress=True)
    G, _ = generator_from_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    # The same 16 latents the run's own sample grids use (sample_z of the fixed-z seed).
    z = torch.load(cfg.run_dir / "checkpoints/latest.pt", map_location="cpu", weights_only=False)["fixed_z"][:16]
    save_png(GRIDS / f"{label}.png", image_grid(generate(G, z), nrow=8), upscale=4)
    held_out, _ = make_faces(n, cfg.image_size, seed=SYNTHETIC_HELD_OUT_SEED)
    scores = evaluate_generator(G, held_out, n, cfg.z_size, CACHE, progress=True)
    return {**scores, "preset": name, "overrides": overrides, "epochs": epochs,
            "images_seen": summary["images_seen"], "seconds": summary["seconds"]}


def side_by_side(labels: list[str], out: Path, runs: dict) -> None:
    """One row per run: its label (and FID when scored), then its 16-face grid."""
    from PIL import Image, ImageDraw
    grids = [Image.open(GRIDS / f"{label}.png").convert("RGB") for label in labels]
    margin = 24
    sheet = Image.new("RGB", (max(g.width for g in grids), sum(g.height + margin for g in grids)), "white")
    y = 0
    for label, grid in zip(labels, grids):
        caption = f"{label}: FID {runs[label]['fid']:.1f}" if label in runs else label
        ImageDraw.Draw(sheet).text((4, y + 6), caption, fill="black")
        sheet.paste(grid, (0, y + margin))
        y += grid.height + margin
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def budget_epochs(label: str, name: str, overrides: dict, results: dict, seconds: float) -> int:
    from facegan.config import preset
    if label not in results["rates"]:
        sys.exit(f"no rate for {label}: measure it first with --rates --run {label} ...")
    cfg = preset(name, **overrides)
    per_epoch = cfg.synthetic_n // cfg.batch_size * cfg.batch_size
    return max(1, round(results["rates"][label] * seconds / per_epoch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", action="append", required=True, metavar="LABEL PRESET [FIELD=VALUE]")
    parser.add_argument("--rates", action="store_true", help="measure each run's images/s alone; train nothing")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per rate (after 5 warm-up steps)")
    parser.add_argument("--seconds", type=float, default=136.0, help="wall-clock budget each run's images stand for")
    parser.add_argument("--n", type=int, default=1000, help="held-out synthetic faces (and samples) for FID/KID")
    parser.add_argument("--out", type=Path, default=RESULTS / "demo.json", help="JSON file of rates and scores, "
                        "read and extended (two calls at once need two files)")
    parser.add_argument("--side-by-side", metavar="PNG", help="stack the runs' grids into one labelled image")
    parser.add_argument("--draw-only", action="store_true", help="with --side-by-side: train nothing, stack the "
                        "grids of runs scored before")
    args = parser.parse_args()
    runs = [parse_run(words) for words in args.run]
    results = load_results(args.out)
    if args.rates:
        for label, name, overrides in runs:
            start = time.perf_counter()
            results["rates"][label] = measure_rate(name, overrides, args.steps, warmup=5)
            print(f"{label:<24}{results['rates'][label]:>8.0f} img/s  ({time.perf_counter() - start:.0f} s)")
            save_results(results, args.out)
        return
    if args.draw_only:
        side_by_side([label for label, _, _ in runs], Path(args.side_by_side), results["runs"])
        return
    with tempfile.TemporaryDirectory(prefix="facegan-demo-") as work:
        for label, name, overrides in runs:
            # epochs=N among the overrides (today's demo as it ships) wins over the time budget.
            epochs = overrides.pop("epochs", None) or budget_epochs(label, name, overrides, results, args.seconds)
            results["runs"][label] = train_and_score(label, name, overrides, epochs, args.n, Path(work))
            save_results(results, args.out)
            r = results["runs"][label]
            print(f"{label:<24} epochs {epochs:>3}  FID {r['fid']:7.2f}  KID {r['kid']:.4f}")
    if args.side_by_side:
        side_by_side([label for label, _, _ in runs], Path(args.side_by_side), results["runs"])


if __name__ == "__main__":
    main()
