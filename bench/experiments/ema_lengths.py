"""G_ema's length, measured on one training trajectory: paired, free of seed noise.

G_ema never feeds back into training, so one run can carry several averages of G's
weights at once, and their FIDs then differ by the averaging alone, not by the run (two
seeds of one recipe differ by ~5 FID; two averages of one run by what the average does).
This trains one run on the Quality protocol (bench.protocol's 4,000/2,000 split) with
extra averages beside the config's own, then scores each at --n images.

An average is DECAY[:RAMP]: facegan's EMA uses min(DECAY, (1 + step) / (RAMP + step)) with
RAMP 10, and below ~9,000 steps (a 30-minute CPU run has ~8,000) that ramp, not the decay,
sets the length: at step s the newest weights count (RAMP - 1) / (RAMP + s), so the average
spans about s / (RAMP - 1) steps, a ninth of the run. A smaller RAMP averages a larger share
(RAMP 2: the plain mean of every step's weights); a DECAY below the ramp caps the length.

Run from the repo root:
    .venv/bin/python -m bench.experiments.ema_lengths --images 515840 --decays 0.998 0.9999:5 0.9999:3 --run cpu-s0 cpu seed=0
Writes --out (JSON, after each score) with every decay's FID/KID, and each average's 64 faces
(bench.protocol's grid latents) to bench/results/quality/LABEL-emaDECAY.png; the config's own
decay is scored too, so it can be checked against bench.experiments.quality's figure for the same run.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.protocol import (
    CACHE,
    GRIDS,
    HELD_OUT,
    RESULTS,
    add_faces_option,
    epochs_for,
    faces_zip,
    grid_latents,
    held_out_images,
    parse_run,
    split_folders,
)
from facegan.training import step as step_module
from facegan.training.ema import EMA


class RampedEMA(EMA):
    """EMA with its own ramp constant (facegan's is 10)."""
    def __init__(self, model, decay: float, ramp: float):
        super().__init__(model, decay)
        self.ramp = ramp

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (self.ramp + step))


class ShadowedEMA(EMA):
    """The config's EMA, plus one shadow average per extra decay, updated in the same call.

    Shadows use EMA's own update and measure_norms (BatchNorm statistics copied from G,
    then measured on each average before it is saved or scored), so the config's decay
    listed among them (ramp 10) reproduces its G_ema exactly."""
    extra: tuple[str, ...] = ()  # DECAY[:RAMP] specs
    built: list[ShadowedEMA] = []

    def __init__(self, model, decay: float):
        super().__init__(model, decay)
        self.shadows = {spec: RampedEMA(model, *parse_average(spec)) for spec in self.extra}
        ShadowedEMA.built.append(self)

    def update(self, model, step: int) -> None:
        super().update(model, step)
        for shadow in self.shadows.values():
            shadow.update(model, step)

    def measure_norms(self, z_size: int, samples: int, seed: int) -> None:
        super().measure_norms(z_size, samples, seed)
        for shadow in self.shadows.values():
            shadow.measure_norms(z_size, samples, seed)


def parse_average(spec: str) -> tuple[float, float]:
    """"0.9999:3" -> (0.9999, 3.0); "0.998" -> (0.998, 10.0)."""
    decay, _, ramp = spec.partition(":")
    return float(decay), float(ramp or 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, required=True, help="training images seen (whole epochs, rounded up)")
    parser.add_argument("--decays", nargs="+", required=True, metavar="DECAY[:RAMP]",
                        help="extra averages to score (see above)")
    parser.add_argument("--run", nargs="+", required=True, metavar="LABEL PRESET [FIELD=VALUE]")
    parser.add_argument("--n", type=int, default=HELD_OUT, help="held-out images (and samples) for FID/KID")
    parser.add_argument("--out", type=Path, help="JSON results (default: bench/results/ema-LABEL.json)")
    add_faces_option(parser)
    args = parser.parse_args()
    faces = faces_zip(args.faces)
    label, name, overrides = parse_run(args.run)
    out = args.out or RESULTS / f"ema-{label}.json"

    from facegan.config import preset
    from facegan.eval.metrics import evaluate_generator
    from facegan.generate.sample import generate, image_grid, save_png
    from facegan.training.loop import train

    train_dir, _ = split_folders(args.n, faces)
    held_out = held_out_images(args.n, faces)
    probe = preset(name, **overrides)
    if probe.ema_decay <= 0:
        sys.exit(f"{name} {overrides}: ema_decay is 0; the shadows ride on the config's EMA, so set one")
    epochs = epochs_for(args.images, train_dir, probe.batch_size)
    ShadowedEMA.extra = tuple(args.decays)
    step_module.EMA = ShadowedEMA  # GAN.build makes the config's EMA through this name
    with tempfile.TemporaryDirectory(prefix="facegan-ema-") as work:
        cfg = preset(name, data="folder", data_dir=str(train_dir), image_size=64, epochs=epochs,
                     out=str(Path(work) / label), cache_dir=str(CACHE), **overrides)
        summary = train(cfg, progress=True)
    ema = ShadowedEMA.built[-1]
    averages = {f"{probe.ema_decay} (the config's)": ema.model, **{d: s.model for d, s in ema.shadows.items()}}
    results = {"label": label, "preset": name, "overrides": overrides, "images_seen": summary["images_seen"],
               "n": args.n, "decays": {}}
    z = grid_latents(cfg.z_size)
    for decay, G in averages.items():
        save_png(GRIDS / f"{label}-ema{decay.split()[0]}.png", image_grid(generate(G.eval(), z)), upscale=2)
        scores = evaluate_generator(G, held_out, args.n, cfg.z_size, CACHE, progress=False)
        results["decays"][decay] = scores
        print(f"{label} ema_decay={decay}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}", flush=True)
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
