"""`python -m facegan <command>`: train, sample, interpolate, evaluate, export, report, serve, view, synth, sweep, exercise.

A thin layer over the library.

The train options are derived from TrainConfig's fields, so every config value has a
typed flag with help, and unknown flags are rejected.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from ..config import GROUPS, PRESETS, RENAMED_KEYS, TONE_CATEGORIES, TrainConfig, preset, upgrade_keys
from ..errors import ConfigError
from . import argtypes
from .argtypes import FACES, MAX_FACES, PORT, SEED, SEED_MAX, TRUNCATION, UPSCALE, number, seed_list, whole

_TYPES = {"int": int, "float": float, "str": str}


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None: config flags default to None (meaning "not given"),
    and their help already names the TrainConfig default."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """A typed flag per TrainConfig field, in the argument group the field declares."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for f in fields(TrainConfig):
        flags = ["--" + name.replace("_", "-") for name in (f.name, *_old_names(f.name))]
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata['help']} (default: {default!r})"
        group = groups[f.metadata["group"]]
        if f.type == "bool":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(*flags, dest=f.name, type=_TYPES[f.type], default=None, metavar=f.type.upper(),
                               help=help_text)


def _old_names(name: str) -> list[str]:
    """Names a field had before, still accepted as flags (old commands keep working)."""
    return [old for old, new in RENAMED_KEYS.items() if new == name]


def explicit_overrides(args: argparse.Namespace) -> dict:
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = explicit_overrides(args)
    if args.resume and args.preset:
        raise ConfigError(f"--resume continues the run with its own config.json, so --preset {args.preset} "
                          f"would be ignored; drop --preset (options a resume may change still apply)")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it; choose one")
    if args.resume:
        # The run folder's own config is the base; only what the user typed changes it,
        # and train() refuses changes a checkpoint cannot absorb.
        run_dir = Path(overrides.get("out") or Path("runs") / overrides.get("name", "run"))
        saved = run_dir / "config.json"
        if not saved.is_file():
            raise ConfigError(f"--resume: {saved} not found; pass --out with the folder of the run to continue")
        try:
            base = json.loads(saved.read_text())
            if not isinstance(base, dict):
                raise ConfigError(f"it holds a JSON {type(base).__name__}, not an object of config fields")
            TrainConfig.from_dict({**upgrade_keys(base), "out": str(run_dir)})  # the file alone must be valid
        except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: bad JSON, ConfigError
            raise ConfigError(f"--resume: {saved} is not a usable run config ({e}); restore it (the run's "
                              f"checkpoints/latest.pt holds its config) or start a new run with another --out") from None
        return TrainConfig.from_dict({**upgrade_keys(base), **overrides, "out": str(run_dir)})
    if args.preset:
        return preset(args.preset, **overrides)
    return TrainConfig(**overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.loop import train

    cfg = config_from_args(args)
    cfg = beside_earlier_runs(cfg, args)
    summary = train(cfg, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    spent = " (the time budget is spent)" if summary.get("budget_spent") else ""
    print(f"done{spent}: {summary['steps']} steps, {summary['images_seen']} images in {summary['seconds']} s")
    print(f"samples:   {summary['grid']}")
    print(f"loss plot: {summary['losses']}")
    print(f"run folder: {summary['run_dir']} (resume with: python -m facegan train --out "
          f"{summary['run_dir']} --resume --epochs N)")
    return 0


def beside_earlier_runs(cfg: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """Without --out, a new run never lands on an earlier one: runs/demo holding a run, this
    one goes to runs/demo-2 (and says so). An explicit --out holding a run is refused by train()."""
    from ..training.runfolder import next_free_run_dir

    if args.resume or args.overwrite or cfg.out:
        return cfg
    free = next_free_run_dir(cfg.run_dir)
    if free == cfg.run_dir:
        return cfg
    print(f"{cfg.run_dir} holds an earlier run (continue it with: python -m facegan train --out {cfg.run_dir} "
          f"--resume); this run goes to {free}")
    return TrainConfig.from_dict({**cfg.to_dict(), "out": str(free)})


def cmd_view(args: argparse.Namespace) -> int:
    from ..eval.plots import save_figure, view_samples
    from ..generate.sample import load_train_samples

    run_dir = Path(args.run_dir)
    samples = load_train_samples(run_dir / "train_samples.pkl")
    if not samples:
        raise ConfigError(f"{run_dir}/train_samples.pkl is empty; train at least one epoch first")
    if not -len(samples) <= args.epoch < len(samples):
        raise ConfigError(f"--epoch {args.epoch}: the run has {len(samples)} epochs of samples "
                          f"(use 0..{len(samples) - 1}, or -1 for the last)")
    n = len(samples[args.epoch])
    ncols = min(8, n)
    fig = view_samples(args.epoch, samples, nrows=-(-n // ncols), ncols=ncols)
    out = Path(args.out) if args.out else run_dir / "view_samples.png"
    save_figure(fig, out)
    print(f"wrote {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..data.images import cached_image_array
    from ..eval.metrics import evaluate_generator
    from ..generate.export import generator_from_checkpoint
    from ..utils.accel import resolve_device
    from ..utils.atomic import atomic_write_text

    device = resolve_device(args.device)
    G, cfg = generator_from_checkpoint(args.checkpoint, device)
    real = cached_image_array(args.data_dir, cfg.image_size, args.cache_dir, progress=True)
    if len(real) < args.n:
        print(f"note: {args.data_dir} has {len(real)} images, fewer than --n {args.n}; using {len(real)}")
    scores = evaluate_generator(G, real, args.n, cfg.z_size, args.cache_dir, seed=args.seed,
                                device=str(device), progress=True)
    print(f"{'metric':<8}{'value':>12}")
    print(f"{'fid':<8}{scores['fid']:>12.3f}")
    print(f"{'kid':<8}{scores['kid']:>12.5f}  (std {scores['kid_std']:.5f})")
    print(f"{'swd':<8}{scores['swd']:>12.2f}")
    print(f"{'n':<8}{scores['n']:>12d}")
    if args.out:
        atomic_write_text(args.out, json.dumps({**scores, "checkpoint": args.checkpoint,
                                                "data_dir": args.data_dir, "seed": args.seed}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..generate.export import export_generator

    out = export_generator(args.checkpoint, args.out)
    print(f"wrote {out}, {out.with_suffix('.json')} and {out.with_suffix('.pt2')}")
    print(f"sample it with torch alone:  G = torch.export.load({str(out.with_suffix('.pt2'))!r}).module(); "
          f"faces = G(torch.randn(16, {json.loads(out.with_suffix('.json').read_text())['z_size']}))")
    return 0


def tone_class(G, tone: str | None) -> int | None:
    """--tone as G's class index (None for all); refused for a generator trained without tones."""
    if tone is None:
        return None
    if not getattr(G, "n_classes", 0):
        raise ConfigError(f"--tone {tone.replace(' ', '-')} needs a generator trained with --condition tone; "
                          f"this one was not, so drop --tone")
    return None if tone == "all" else TONE_CATEGORIES.index(tone)


# Image names that are not PNG: `sample --out g.jpg` once made a folder called g.jpg/.
OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def sample_layout(out: Path) -> str:
    """"grid" for --out NAME.png, "folder" for one PNG per face; anything ambiguous refused."""
    if out.suffix.lower() == ".png" and not out.is_dir():
        return "grid"
    if out.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise ConfigError(f"--out {out}: grids are written as PNG; use {out.with_suffix('.png')}, or a "
                          f"folder name for one PNG per face")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give NAME.png for a grid, or a folder for one PNG per face")
    return "folder"


def seed_range(seed: int, n: int) -> list[int]:
    if seed + n - 1 > SEED_MAX:
        raise ConfigError(f"--seed {seed} --n {n}: the last seed would pass {SEED_MAX} (2**63 - 1); "
                          f"choose a smaller --seed")
    return list(range(seed, seed + n))


def cmd_sample(args: argparse.Namespace) -> int:
    from ..generate.export import load_generator
    from ..generate.sample import faces_from_seeds, image_grid, save_png

    seeds, out = seed_range(args.seed, args.n), Path(args.out)
    layout = sample_layout(out)  # refused before the generator loads, not after the work
    # Grids are for looking at; one PNG per face feeds FID tools and the like, at G's own size.
    upscale = args.upscale or (2 if layout == "grid" else 1)
    G = load_generator(args.checkpoint)
    label = tone_class(G, args.tone)  # refuses --tone for a generator trained without tones
    if args.tone == "all":
        return sample_every_tone(G, seeds, args, out, layout, upscale)
    faces = faces_from_seeds(G, seeds, args.truncation, label)
    if layout == "grid":
        save_png(out, image_grid(faces, nrow=args.nrow), upscale=upscale)
        print(f"wrote a grid of {args.n} faces (seeds {seeds[0]}..{seeds[-1]}, row by row, {upscale}x) to {out}")
    else:
        for seed, face in zip(seeds, faces):
            save_png(out / f"seed{seed:06d}.png", face, upscale=upscale)
        print(f"wrote {args.n} faces ({face.shape[0]} px) to {out}/seed{seeds[0]:06d}.png .. seed{seeds[-1]:06d}.png")
    return 0


def sample_every_tone(G, seeds: list[int], args: argparse.Namespace, out: Path, layout: str, upscale: int) -> int:
    """--tone all: each seed in every tone category, a grid row per tone (lightest first)."""
    import numpy as np

    from ..generate.sample import faces_from_seeds, image_grid, save_png

    rows = [faces_from_seeds(G, seeds, args.truncation, k) for k in range(G.n_classes)]
    if layout == "grid":
        save_png(out, image_grid(np.concatenate(rows), nrow=len(seeds)), upscale=upscale)
        print(f"wrote {out}: a row per tone ({', '.join(TONE_CATEGORIES)}), a column per seed "
              f"({seeds[0]}..{seeds[-1]})")
        return 0
    for tone, faces in zip(TONE_CATEGORIES, rows):
        for seed, face in zip(seeds, faces):
            save_png(out / f"seed{seed:06d}-{tone.replace(' ', '-')}.png", face, upscale=upscale)
    print(f"wrote {len(seeds) * len(rows)} faces to {out}/seedNNNNNN-TONE.png")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from ..generate.export import load_generator
    from ..generate.sample import image_grid, save_gif, save_png, walk_faces

    G = load_generator(args.checkpoint)
    seeds = args.seeds
    out = Path(args.out)
    out = out.with_suffix("") if out.suffix.lower() in (".png", ".gif") else out
    grid_path, gif_path = out.parent / (out.name + ".png"), out.parent / (out.name + ".gif")
    rows = walk_faces(G, seeds, args.steps, args.truncation)
    save_png(grid_path, image_grid(rows.reshape(-1, *rows.shape[2:]), nrow=args.steps), upscale=args.upscale)
    # The animation returns to the first face, so it loops without a jump.
    cycle = walk_faces(G, seeds, args.steps, args.truncation, loop=True)[:, :-1]
    save_gif(gif_path, cycle.reshape(-1, *cycle.shape[2:]), seconds_per_frame=args.frame_seconds,
             upscale=args.upscale)
    print(f"wrote {grid_path} (one row per pair of seeds) and {gif_path} ({cycle.shape[0] * cycle.shape[1]} frames)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..eval.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"{run_dir} has no config.json; give the folder of a run (e.g. runs/demo)")
    print(f"wrote {write_report(run_dir)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    try:
        serve(args.checkpoint, args.host, args.port, open_browser=args.open)
    except OSError as e:  # raised by bind(): the port is taken or the address is not this machine's
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({e.strerror}); pick another "
                          f"--port, or --port 0 for any free one") from None
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from ..data.tone import CATEGORIES
    from ..eval.audit import run_audit, summary_line

    seed_range(args.seed, args.n)
    result = run_audit(args.data_dir, args.checkpoint, args.n, args.out, args.cache_dir, seed=args.seed)
    sets = [name for name in ("real", "generated") if name in result]
    print(f"{'ITA category':<14}" + "".join(f"{name:>11}" for name in sets))
    for i, category in enumerate(CATEGORIES):
        print(f"{category:<14}" + "".join(f"{result[name]['shares'][i]:>11.1%}" for name in sets))
    print(summary_line(result))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_face_folder

    out = write_face_folder(args.out_dir, args.n, size=args.size, seed=args.seed)
    print(f"wrote {args.n} synthetic faces to {out}")
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    from .exercise import write_exercise

    out, stubbed = write_exercise(args.out, args.notebook)
    print(f"wrote {out}: the course notebook with its {stubbed} solutions replaced by TODO stubs and hints, "
          f"outputs cleared")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import SweepOptions, base_config, read_space, run_sweep, summary_lines

    space = read_space(args.space, args.param or [])
    base = base_config(args.preset, args.set or [])
    options = SweepOptions(out=Path(args.out), trials=args.trials, study=args.study, storage=args.storage,
                           sampler=args.sampler, pruner=args.pruner, seed=args.seed)
    try:
        summary = run_sweep(base, space, options, progress=not args.quiet)
    except KeyboardInterrupt:  # a second Ctrl-C: the trial stops without a checkpoint of its own
        print("facegan: sweep interrupted; run the same command again to continue it", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(summary)))
    return 0


class OneLineErrors(argparse.ArgumentParser):
    """argparse prints a usage block before its error; one line naming the fix reads better."""

    def error(self, message: str):
        self.exit(2, f"facegan: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m facegan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a DCGAN; writes a run folder", formatter_class=DefaultsFormatter,
                       description="Train a DCGAN and write a run folder. The grouped options are "
                                   "TrainConfig's fields: --preset sets their defaults, a flag overrides it.")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named config to start from")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or runs/<name>) from checkpoints/latest.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it, such a folder is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="faces from a checkpoint or export: a grid PNG or a folder of PNGs",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint (EMA weights when present) or a "
                                                       ".safetensors export")
    p.add_argument("--n", type=FACES, default=64, help="how many faces")
    p.add_argument("--seed", type=SEED, default=0, help="face i is seed+i, the same face every time")
    p.add_argument("--truncation", type=TRUNCATION, default=None,
                   help="redraw latent coordinates beyond this (e.g. 1.5): less variety, fewer failures")
    p.add_argument("--tone", choices=(*TONE_CATEGORIES, "all"), default=None, type=lambda s: s.replace("-", " "),
                   help="only for a generator trained with --condition tone: every face in this skin-tone "
                        "category (each seed keeps the rest of its face), or all: a grid row per category; "
                        "default: the six categories in equal shares, drawn from each seed")
    p.add_argument("--out", required=True, help="grid.png for a grid, or a folder for one PNG per face")
    p.add_argument("--nrow", type=whole(1, MAX_FACES), default=8, help="faces per grid row")
    p.add_argument("--upscale", type=UPSCALE, default=None,
                   help="nearest-neighbour enlargement, for viewing (default: 2 for a grid; one PNG per face "
                        "stays at the generator's own resolution, as FID tools and other uses want)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="a latent walk between seeds: a grid PNG and a looping GIF",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a .safetensors export")
    p.add_argument("--seeds", required=True, type=seed_list, help="faces to walk through, e.g. 1,2,3 (the faces "
                                                  "`sample --seed 1` puts first)")
    p.add_argument("--steps", type=whole(2, 1000), default=30, help="frames from one face to the next, both included")
    p.add_argument("--truncation", type=TRUNCATION, default=None)
    p.add_argument("--out", required=True, help="walk writes walk.png and walk.gif")
    p.add_argument("--frame-seconds", type=number(0.01, 60, "seconds"), default=0.08, help="GIF frame duration")
    p.add_argument("--upscale", type=UPSCALE, default=2, help="nearest-neighbour enlargement of the grid and GIF")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("report", help="(re)write RUN_DIR/report.html, one self-contained page for a run")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="a local web page to explore a generator: seeds, truncation, walks",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt checkpoint or a .safetensors export")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 shares it on your network (no authentication)")
    p.add_argument("--port", type=PORT, default=8000, help="0 picks any free port")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("audit", help="skin-tone (ITA) shares of real and/or generated faces, and their "
                                     "distance", formatter_class=DefaultsFormatter)
    p.add_argument("--data-dir", help="a folder of real faces")
    p.add_argument("--checkpoint", help="a .pt checkpoint or .safetensors export whose faces to audit")
    p.add_argument("--n", type=FACES, default=2000, help="generated faces (seeds seed..seed+n-1)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default="audit.json", help="JSON results; the bar chart is written beside it (.png)")
    p.add_argument("--cache-dir", default="data/cache")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("view", help="plot a run's train_samples.pkl as the course's view_samples does")
    p.add_argument("run_dir")
    p.add_argument("--epoch", type=whole(-100_000, 100_000), default=-1, help="which epoch's samples (-1: the last)")
    p.add_argument("--out", help="PNG to write (default: RUN_DIR/view_samples.png)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("evaluate", help="FID, KID and SWD of a checkpoint's generator against real images",
                       formatter_class=DefaultsFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt snapshot, e.g. runs/demo/checkpoints/latest.pt")
    p.add_argument("--data-dir", required=True, help="folder of real images (recursive jpg/png)")
    p.add_argument("--n", type=whole(2, 1_000_000), default=10000, help="real and generated images compared")
    p.add_argument("--out", help="write the scores as JSON here")
    p.add_argument("--seed", type=whole(0, 2**32 - 2), default=0, help="picks the real subset and the latent vectors")
    p.add_argument("--device", type=argtypes.device, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--cache-dir", default="data/cache", help="decoded images and real features are cached here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write a checkpoint's generator as safetensors plus its config, "
                                      "and as a torch.export program (.pt2) that needs only torch")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="e.g. g.safetensors (g.json and g.pt2 are written beside it)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("synth", help="write procedural synthetic faces to a folder of PNGs")
    p.add_argument("out_dir")
    p.add_argument("--n", type=FACES, default=1000)
    p.add_argument("--size", type=whole(8, 1024), default=64, help="side in pixels")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("exercise", help="write the learner's copy of the course notebook: each solution "
                                        "replaced by a TODO and its hint", formatter_class=DefaultsFormatter)
    p.add_argument("--out", default="dlnd_face_generation_exercise.ipynb",
                   help="the exercise notebook to write (never the solution notebook)")
    p.add_argument("--notebook", help="the solution notebook (default: dlnd_face_generation.ipynb in this "
                                      "folder, else at the root of the repository facegan runs from)")
    p.set_defaults(func=cmd_exercise)

    p = sub.add_parser("sweep", help="search hyperparameters with Optuna: trials are training runs scored by "
                                     "FID (pip install 'facegan[sweep]')", formatter_class=DefaultsFormatter,
                       description="Search TrainConfig fields with an Optuna study. Each trial trains a run "
                                   "folder OUT/trial-NNN and is scored by its lowest training-time FID; run the "
                                   "same command again to continue an interrupted sweep (docs/sweep.md).")
    p.add_argument("--out", required=True, help="the sweep folder: study.db, trial-NNN run folders, trials.csv, "
                                                "plots")
    p.add_argument("--param", action="append", metavar="FIELD=SPEC",
                   help="a searched field, repeatable: LOW:HIGH (a range), LOW:HIGH:log (log scale) or A,B,C "
                        "(choices), e.g. lr_d=1e-5:1e-3:log or batch_size=32,64,128")
    p.add_argument("--space", metavar="FILE.json", help='searched fields as JSON, e.g. {"lr_d": {"low": 1e-5, '
                                                        '"high": 1e-3, "log": true}, "beta1": {"choices": [0.0, 0.5]}}')
    p.add_argument("--preset", choices=sorted(PRESETS), help="the base config every trial starts from")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="fix a config field for every trial, repeatable, e.g. epochs=10 or eval_n=2000")
    p.add_argument("--trials", type=whole(1, 100_000), default=20,
                   help="finished trials wanted (complete, pruned or failed), counting earlier runs of the sweep")
    p.add_argument("--study", help="the study's name (default: the folder's name)")
    p.add_argument("--storage", help="an Optuna database URL, e.g. postgresql://host/db "
                                     "(default: sqlite:///OUT/study.db)")
    p.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                   help="how trials' values are drawn: TPE (guided by the trials so far) or uniformly")
    p.add_argument("--pruner", choices=("median", "none"), default="median",
                   help="median stops a trial whose FID is worse than earlier trials' median at that epoch")
    p.add_argument("--seed", type=whole(0, 2**32 - 1), default=0,
                   help="seeds the sampler (each trial trains with the config's seed: --set seed=N)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..errors import FaceganError, OutputError
    from ..training.loop import RunInterrupted

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RunInterrupted as e:
        print(f"facegan: {e}", file=sys.stderr)
        return 128 + e.signum  # the shell's convention for "ended by signal N"
    except OutputError as e:
        after = " (then continue the run with --resume)" if args.command == "train" else ""
        print(f"facegan: error: {e}{after}", file=sys.stderr)
        return 1
    except (FaceganError, FileNotFoundError, ValueError) as e:
        print(f"facegan: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("facegan: interrupted; the last completed epoch is in checkpoints/latest.pt "
              "(continue with --resume)", file=sys.stderr)
        return 130
