"""`facegan train`: its flags, derived from TrainConfig's fields, and the handler that trains a run.

Every config value has a typed flag with help, in the argument group its field declares,
and unknown flags are rejected. `--data` takes a dataset name or a folder of images
(`--data faces/` is `--data folder --data-dir faces/`).
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from ..config import DATASETS, GROUPS, IMAGE_EXTENSIONS, PRESETS, RENAMED_KEYS, TrainConfig, preset, upgrade_keys
from ..errors import ConfigError
from ..utils import jsonfile
from .argtypes import DefaultsFormatter

_TYPES = {"int": int, "float": float, "str": str}
NAMED_DATASETS = [name for name in DATASETS if name != "folder"]  # the ones a bare --data NAME trains on
IMAGE_KINDS = "/".join(ext for ext in IMAGE_EXTENSIONS if ext != ".jpeg")  # .jpg/.png

# Flags whose help says more than their field's: --data also takes a folder, which only the CLI maps.
FLAG_HELP = {
    "data": f"synthetic (offline default), celeba, or a folder of {IMAGE_KINDS} images: --data DIR, the same "
            f"as --data folder --data-dir DIR; a dataset name wins over a folder of that name (write ./celeba "
            f"for such a folder)",
}
METAVARS = {"data": "NAME|DIR"}


# What ended a run, as its summary says it.
ENDINGS = {"budget": "the {cfg.minutes:g}-min time budget is spent", "epochs": "{cfg.epochs} epochs trained",
           "early_stop": "--early-stop: no better FID in {cfg.early_stop} evaluations", "caller": "stopped early"}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a DCGAN; writes a run folder", formatter_class=DefaultsFormatter,
                       description="Train a DCGAN and write a run folder. The grouped options are "
                                   "TrainConfig's fields: --preset sets their defaults, a flag overrides it. "
                                   "Train on your own images with --data DIR.")
    p.add_argument("--preset", choices=["auto", *sorted(PRESETS)],
                   help="a named config to start from; auto (the default with --minutes): the recipe that "
                        "measured best at the images the budget buys on this machine")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (or runs/<name>) from checkpoints/latest.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it, such a folder is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.loop import train

    cfg = config_from_args(args)
    cfg = beside_earlier_runs(cfg, args)
    summary = train(cfg, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    print(f"done ({ENDINGS[summary['ended_by']].format(cfg=cfg)}): {summary['steps']} steps, "
          f"{summary['images_seen']} images in {summary['seconds']} s")
    print(f"samples:   {summary['grid']}")
    print(f"loss plot: {summary['losses']}")
    more = "--minutes M" if summary["ended_by"] == "budget" else "--epochs N"
    print(f"run folder: {summary['run_dir']} (train on with: python -m facegan train --out "
          f"{summary['run_dir']} --resume {more})")
    return 0


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """A typed flag per TrainConfig field, in the argument group the field declares."""
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    for f in fields(TrainConfig):
        flags = ["--" + name.replace("_", "-") for name in (f.name, *_old_names(f.name))]
        default = f.default if f.default is not MISSING else None
        help_text = f"{FLAG_HELP.get(f.name, f.metadata['help'])} (default: {default!r})"
        group = groups[f.metadata["group"]]
        if f.type == "bool":
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(*flags, dest=f.name, type=_TYPES[f.type], default=None,
                               metavar=METAVARS.get(f.name, f.type.upper()), help=help_text)


def _old_names(name: str) -> list[str]:
    """Names a field had before, still accepted as flags (old commands keep working)."""
    return [old for old, new in RENAMED_KEYS.items() if new == name]


def explicit_overrides(args: argparse.Namespace) -> dict:
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def data_folder(overrides: dict) -> dict:
    """--data DIR as data="folder", data_dir=DIR; a dataset name is left as it is."""
    data = overrides.get("data")
    if data is None or data in DATASETS:
        return overrides
    if "data_dir" in overrides:
        raise ConfigError(f"--data {data} --data-dir {overrides['data_dir']}: give the folder once, as "
                          f"--data DIR or as --data folder --data-dir DIR")
    if not data or not Path(data).is_dir():
        what = "not a folder" if data and Path(data).exists() else "no such folder"
        raise ConfigError(f"--data {data}: {what}; give a folder of {IMAGE_KINDS} images, or one of "
                          f"{', '.join(NAMED_DATASETS)}")
    return {**overrides, "data": "folder", "data_dir": data}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = data_folder(explicit_overrides(args))
    if args.resume and args.preset:
        raise ConfigError(f"--resume continues the run with its own config.json, so --preset {args.preset} "
                          f"would be ignored; drop --preset (options a resume may change still apply)")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it; choose one")
    if args.resume:
        return resumed_config(overrides)
    if overrides.get("minutes") and "epochs" not in overrides:  # a time budget alone: it, not epochs, ends the run
        overrides["epochs"] = 0
    if args.preset == "auto" or (args.preset is None and overrides.get("minutes")):
        from ..training.autopreset import choose_preset
        return preset(choose_preset(overrides), **overrides)
    if args.preset:
        return preset(args.preset, **overrides)
    return TrainConfig(**overrides)


def resumed_config(overrides: dict) -> TrainConfig:
    """The run folder's own config is the base; only what the user typed changes it,
    and train() refuses changes a checkpoint cannot absorb."""
    run_dir = Path(overrides.get("out") or Path("runs") / overrides.get("name", "run"))
    saved = run_dir / "config.json"
    if not saved.is_file():
        raise ConfigError(f"--resume: {saved} not found; pass --out with the folder of the run to continue")
    try:
        base = jsonfile.read_json(saved)
        if not isinstance(base, dict):
            raise ConfigError(f"it holds a JSON {type(base).__name__}, not an object of config fields")
        before = TrainConfig.from_dict({**upgrade_keys(base), "out": str(run_dir)})  # the file alone must be valid
    except (OSError, UnicodeDecodeError, ValueError) as e:  # ValueError: bad JSON, ConfigError
        raise ConfigError(f"--resume: {saved} is not a usable run config ({e}); restore it (the run's "
                          f"checkpoints/latest.pt holds its config) or start a new run with another --out") from None
    return TrainConfig.from_dict({**upgrade_keys(base), **grown_over(before, overrides), "out": str(run_dir)})


def grown_over(before: TrainConfig, overrides: dict) -> dict:
    """A growing run resumed to more epochs keeps the epochs its growth spans (grow_epochs),
    so the extra epochs train at full size instead of stretching the growth (which would
    shrink the samples); that span cannot change mid-run."""
    if not before.grow_from:
        return overrides
    span = before.grow_epochs or before.epochs
    asked = overrides.get("grow_epochs")
    if asked is not None and asked != span:
        raise ConfigError(f"--grow-epochs {asked}: this run grows over {span} epochs, which a resume cannot "
                          f"change; drop --grow-epochs (more --epochs train at full size)")
    if overrides.get("epochs", before.epochs) > before.epochs:
        return {**overrides, "grow_epochs": span}
    return overrides


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
