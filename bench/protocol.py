"""What every benchmark shares: the CelebA faces, their train/held-out split, the seeds, and the
helpers more than one script needs (runs named on the command line, training-step rates).

The faces are the course's CelebA subset, 6,000 64 px JPEGs in one zip. Its path is, first found:
the script's `--faces ZIP`, the environment variable FACEGAN_FACES, else DEFAULT_FACES,
../shared/data/processed-celeba-small-6k.zip beside the checkout (where the course machines
keep it). A relative --faces or FACEGAN_FACES is taken from the current folder, the default
from the repo root.

The Quality protocol: the zip's files, sorted by name and shuffled by SPLIT_SEED, give HELD_OUT
(2,000) held-out faces and the other 4,000 to train on; a run trains on the training split and
is scored by FID/KID against the held-out one. The split depends on nothing else (not the zip's
path, not the machine), so figures reproduce wherever the same zip is.

Every script runs from the repo root as a module, which puts this checkout's facegan first:
    .venv/bin/python -m bench.speed.throughput --help
    .venv/bin/python -m bench.experiments.quality --help
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results"  # every script's JSON, charts and grids; ignored by git
CACHE = RESULTS / "cache"  # image and feature caches, keyed by content, kept between calls
GRIDS = RESULTS / "quality"  # a Quality-protocol run's 64 faces, LABEL.png

FACES_ENV = "FACEGAN_FACES"
DEFAULT_FACES = "../shared/data/processed-celeba-small-6k.zip"  # relative to ROOT

HELD_OUT = 2000  # held-out faces of the 6,000, and the images (and samples) FID/KID use
SPLIT_SEED = 0  # the shuffle behind the split; fid_baselines' and inception_bf16's halves
GRID_SEED = 7  # the 64 latents every saved grid shows, so grids of different runs compare face by face
SYNTHETIC_HELD_OUT_SEED = 1000  # synthetic faces no demo run trains on (they train on seed 0's, or --seed's)


# ---------------------------------------------------------------- the faces

def add_faces_option(parser: argparse.ArgumentParser) -> None:
    """--faces ZIP (--subset, its older name, still parses)."""
    parser.add_argument("--faces", "--subset", dest="faces", type=Path, metavar="ZIP",
                        help=f"the CelebA subset zip (default: ${FACES_ENV}, else {DEFAULT_FACES} "
                        "from the repo root)")


def faces_zip(given: Path | None = None, required: bool = True) -> Path | None:
    """The faces zip: `given` (--faces), else $FACEGAN_FACES, else the default.

    A zip named by --faces or the variable must exist; a missing default is an error when
    `required`, else None (the scripts that fall back to synthetic faces)."""
    named = given or os.environ.get(FACES_ENV)
    path = Path(named) if named else (ROOT / DEFAULT_FACES).resolve()
    if path.is_file():
        return path
    if named or required:
        sys.exit(f"no CelebA faces zip at {path}: pass --faces ZIP or set {FACES_ENV}")
    return None


def extract_faces(faces: Path, data_dir: Path) -> Path:
    """The zip's images unpacked under data_dir (once: a second call finds them); their folder."""
    from facegan.data.celeba import download_extract
    return download_extract(data_dir=str(data_dir), zip_path=str(faces), progress=False)


def face_images(faces: Path, image_size: int = 64) -> np.ndarray:
    """All the zip's faces as an (N, S, S, 3) uint8 array in memory, in file-name order (the
    unpacked files are scratch, gone when it returns)."""
    from facegan.data.images import cached_image_array
    with tempfile.TemporaryDirectory(prefix="facegan-faces-") as work:
        folder = extract_faces(faces, Path(work))
        return np.array(cached_image_array(folder, image_size, Path(work) / "cache", progress=False))


# ---------------------------------------------------------------- the split

def split_folders(held_out: int, faces: Path) -> tuple[Path, Path]:
    """The faces split once, by SPLIT_SEED's shuffle, into train/ and held_out/ folders of links.

    The split stays under bench/results, so a kept run names the same data folder when it
    is resumed by a later call (a changed data_dir would refuse the resume)."""
    home = RESULTS / f"split-{held_out}"
    train, test = home / "train", home / "held_out"
    if test.is_dir():
        return train, test
    home.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results yet
    building = Path(tempfile.mkdtemp(prefix="split-", dir=home.parent))
    folder = extract_faces(faces, home / "data")
    files = sorted(folder.glob("*.jpg"))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
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


def held_out_images(held_out: int, faces: Path, image_size: int = 64) -> np.ndarray:
    """The split's held-out faces at image_size, the reference every run's FID/KID is against
    (their Inception features are cached under CACHE by the first score)."""
    from facegan.data.images import cached_image_array
    return np.asarray(cached_image_array(split_folders(held_out, faces)[1], image_size, CACHE, progress=False))


# ---------------------------------------------------------------- runs named on the command line

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
    """The 64 latents every saved grid shows."""
    return torch.randn(64, z_size, generator=torch.Generator().manual_seed(GRID_SEED))


def machine(device: torch.device) -> str:
    """The hardware a figure was measured on, as the results files name it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from facegan.utils.accel import cpu_has_native_bf16

    # the ledger's words: the cores a run had, and whether its autocast ran in native bf16
    return f"{torch.get_num_threads()} CPU cores, {'bf16 (AVX-512)' if cpu_has_native_bf16() else 'fp32'}"


# ---------------------------------------------------------------- training-step rates

def step_rate(images: np.ndarray, case: dict, steps: int, warmup: int, device: torch.device,
              compile_mode: str = "off", amp: bool = False, progress: float | None = None) -> tuple[float, float]:
    """Images/s and peak GiB of `steps` steps of the training loop's own step (step.GAN +
    make_step: EMA, augmentation, penalties as the config `case` says); `progress` pins the
    run's progress (0..1) the step sees, e.g. a progressive run's resolution; by default it advances."""
    from facegan.config import TrainConfig
    from facegan.training import rates

    cfg = TrainConfig(**case, compile=compile_mode, amp=amp)
    return rates.step_rate(cfg, images, device, steps=steps, warmup=warmup, progress=progress)


def config_rate(cfg, images: np.ndarray, steps: int, warmup: int, progress: float | None = None) -> float:
    """Images/s of the training step the TrainConfig `cfg` describes (its precision included), on
    the CPU: what buys a recipe its images in an equal-time comparison."""
    case = {k: v for k, v in vars(cfg).items() if k not in ("compile", "amp")}
    rate, _ = step_rate(images, case, steps, warmup, torch.device("cpu"), amp=cfg.amp, progress=progress)
    return rate
