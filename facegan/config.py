"""One typed config for a training run, shared by the CLI, the notebook and the tests.

Defaults are the DCGAN paper's (Radford et al. 2015): Adam 2e-4, betas (0.5, 0.999),
batch 128, z of 100, N(0, 0.02) init. Presets are just named sets of overrides.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

IMAGE_SIZES = (32, 64, 128)
DATASETS = ("synthetic", "celeba", "folder")
LOSSES = ("bce", "ls", "hinge", "wgan")
D_NORMS = ("batch", "spectral", "none")
LR_DECAYS = ("none", "linear", "cosine")
AUGMENTS = ("color", "translation", "cutout")  # DiffAugment's policies (facegan/augment.py)
SCHEDULES = ("fixed", "decay", "gated")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
BALANCES = ("none", "tone")  # training draws: uniform, or evened out over skin-tone categories
# The six ITA skin-tone categories, lightest first (facegan/audit.py estimates them).
TONE_CATEGORIES = ("very light", "light", "intermediate", "tan", "brown", "dark")
CONDITIONS = ("none", "tone")  # what G and D are told about each face: nothing, or its skin-tone category


def opt(default, help: str):
    """A config field with its --help text, which the CLI reads from the metadata."""
    return field(default=default, metadata={"help": help})


class ConfigError(ValueError):
    """A config value a run cannot use; the message names the field and the fix."""


@dataclass
class TrainConfig:
    # Data
    data: str = opt("synthetic", "synthetic (offline default) | celeba | folder")
    data_dir: str = opt("data", "celeba: where the zip is fetched/extracted; folder: the images")
    image_size: int = opt(64, "32, 64 or 128")
    synthetic_n: int = opt(4096, "how many procedural faces to draw for data=synthetic")
    cache_dir: str = opt("data/cache", "decoded uint8 arrays of image folders live here")
    hflip: bool = opt(True, "random horizontal flips: faces are left-right symmetric")
    # Models
    z_size: int = opt(100, "length of the latent vector z")
    conv_dim: int = opt(64, "width of the first D layer / last G layer")
    balance: str = opt("none", "none | tone: draw training images inversely to the share of their "
                               "skin-tone (ITA) category, so rare tones are seen as often as common ones")
    balance_cap: float = opt(5.0, "balance: no image is drawn more than this many times the average")
    tone_match: float = opt(0.0, "weight of a G loss pulling the skin-tone (ITA) distribution of its "
                                 "batch onto the real batch's (with --balance tone, the balanced draw); "
                                 "0 turns it off")
    condition: str = opt("none", "none | tone: G and D are conditioned on the skin-tone (ITA) category; "
                                 "G then draws the six categories in equal shares (a class per slice of z[0])")
    extra_layers: int = opt(0, "deeper nets: 3x3 conv blocks added to D and G at the finest feature map")
    d_dropout: float = opt(0.0, ">0 gives the Keras-style D with dropout after each block")
    d_norm: str = opt("batch", "D's normalisation: batch | spectral (spectral norm, no BatchNorm) | none")
    # Optimisation
    batch_size: int = opt(128, "images per step")
    epochs: int = opt(5, "passes over the training set")
    lr_d: float = opt(2e-4, "discriminator Adam learning rate")
    lr_g: float = opt(2e-4, "generator Adam learning rate (differs from lr_d for TTUR)")
    beta1: float = opt(0.5, "Adam beta1; 0.5 (not 0.9) keeps GAN training stable")
    beta2: float = opt(0.999, "Adam beta2")
    loss: str = opt("bce", "bce (with logits) | ls (least squares) | hinge | wgan (with gradient penalty)")
    gp_weight: float = opt(10.0, "wgan: weight of the gradient penalty")
    r1_gamma: float = opt(0.0, "R1 penalty on D's gradient at real images; 0 turns it off")
    r1_every: int = opt(16, "apply R1 every N steps, scaled by N (lazy regularisation)")
    ema_decay: float = opt(0.0, "EMA of G's weights for samples and evaluation, e.g. 0.999; 0 turns it off")
    augment: str = opt("", "DiffAugment policy for D's inputs, e.g. color,translation,cutout; empty: off")
    instance_noise: float = opt(0.0, "std of Gaussian noise added to D's inputs, annealed to 0 over the run")
    lr_decay: str = opt("none", "learning-rate decay to 0 over the run: none | linear | cosine")
    label_smoothing: float = opt(1.0, "target for real labels; 0.9 is one-sided smoothing")
    # Update schedule between D and G (see facegan/schedules.py)
    schedule: str = opt("fixed", "fixed k:1 | decay (k -> 1 over training) | gated (skip D when it wins)")
    d_steps: int = opt(1, "k: D updates per G update")
    d_acc_gate: float = opt(0.8, "gated: D trains only while its accuracy is below this")
    # Speed (see facegan/accel.py); none of these changes the fp32 math
    fast: bool = opt(True, "channels_last, foreach/fused Adam, cudnn.benchmark, dataset resident on the GPU")
    amp: bool = opt(True, "bf16 autocast on CUDA (CPU always trains in fp32)")
    sync_bn: bool = opt(False, "under torchrun on GPUs: BatchNorm statistics over all ranks' batches")
    compile: str = opt("off", "torch.compile the networks: off | default | reduce-overhead (CUDA graphs) | max-autotune")
    # Run bookkeeping
    seed: int = opt(0, "seeds weights, data order, z and the synthetic faces")
    device: str = opt("auto", "auto picks CUDA when available")
    name: str = opt("run", "run name, used for the default folder runs/<name>")
    out: str = opt("", "run folder; empty means runs/<name>")
    n_fixed: int = opt(16, "fixed latent batch drawn into train_samples.pkl each epoch")
    log_every: int = opt(10, "steps between metrics.jsonl rows")
    eval_every: int = opt(0, "epochs between FID/KID/SWD rows in metrics.jsonl; 0 turns evaluation off")
    eval_n: int = opt(500, "real and generated images per evaluation (FID needs thousands to compare runs)")
    keep_checkpoints: int = opt(2, "per-epoch snapshots kept besides latest.pt")
    tensorboard: bool = opt(False, "also log losses, sample grids and FID to RUN_DIR/tensorboard "
                                   "(needs: pip install tensorboard)")
    num_workers: int = opt(0, "only for the PIL-decoding course dataloader")

    def __post_init__(self):
        validate(self)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys are the TrainConfig fields")
        return cls(**d)

    def save(self, path: Path) -> None:
        from .io import atomic_write_text
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def validate(cfg: TrainConfig) -> None:
    # Configs also come from JSON and notebooks, where a "16" or a None would otherwise
    # surface later as a TypeError; bool is an int subclass, but True is no batch size.
    kinds = {"int": (numbers.Integral, "an integer"), "float": (numbers.Real, "a number"),
             "str": (str, "a string"), "bool": (bool, "true or false")}
    for f in fields(cfg):
        if f.type not in kinds:
            continue
        value, (kind, wanted) = getattr(cfg, f.name), kinds[f.type]
        is_bool = isinstance(value, bool)
        ok = is_bool if f.type == "bool" else isinstance(value, kind) and not is_bool
        _check(ok, f"{f.name}: expected {wanted}, got {type(value).__name__}")
        # inf passes "> 0", nan fails the range checks below only by luck, and an int
        # past the float range overflows once torch gets it.
        _check(f.type != "float" or abs(value) <= sys.float_info.max,
               f"{f.name}={value}: must be a finite number")
    _check(cfg.data in DATASETS, f"data={cfg.data!r}: choose one of {', '.join(DATASETS)}")
    _check(cfg.image_size in IMAGE_SIZES,
           f"image_size={cfg.image_size}: choose one of {', '.join(map(str, IMAGE_SIZES))}")
    _check(cfg.loss in LOSSES, f"loss={cfg.loss!r}: choose one of {', '.join(LOSSES)}")
    _check(cfg.schedule in SCHEDULES, f"schedule={cfg.schedule!r}: choose one of {', '.join(SCHEDULES)}")
    for name in ("batch_size", "epochs", "z_size", "conv_dim", "d_steps", "synthetic_n",
                 "n_fixed", "log_every"):
        _check(getattr(cfg, name) > 0, f"{name}={getattr(cfg, name)}: must be a positive integer")
    for name in ("lr_d", "lr_g"):
        _check(getattr(cfg, name) > 0, f"{name}={getattr(cfg, name)}: learning rates must be > 0")
    for name in ("beta1", "beta2"):
        _check(0 <= getattr(cfg, name) < 1, f"{name}={getattr(cfg, name)}: Adam betas lie in [0, 1)")
    _check(0 <= cfg.d_dropout < 1, f"d_dropout={cfg.d_dropout}: must lie in [0, 1)")
    _check(0.5 < cfg.label_smoothing <= 1,
           f"label_smoothing={cfg.label_smoothing}: the real-label target lies in (0.5, 1]; 0.9 is usual")
    _check(0.5 <= cfg.d_acc_gate <= 1, f"d_acc_gate={cfg.d_acc_gate}: must lie in [0.5, 1]")
    _check(cfg.d_norm in D_NORMS, f"d_norm={cfg.d_norm!r}: choose one of {', '.join(D_NORMS)}")
    _check(cfg.loss != "wgan" or cfg.d_norm != "batch",
           "loss='wgan': its gradient penalty is per image, which BatchNorm mixes; add --d-norm none or spectral")
    _check(cfg.lr_decay in LR_DECAYS, f"lr_decay={cfg.lr_decay!r}: choose one of {', '.join(LR_DECAYS)}")
    for name in ("gp_weight", "r1_gamma", "instance_noise", "tone_match"):
        _check(getattr(cfg, name) >= 0, f"{name}={getattr(cfg, name)}: must be >= 0 (0 turns it off)")
    _check(cfg.balance in BALANCES, f"balance={cfg.balance!r}: choose one of {', '.join(BALANCES)}")
    _check(cfg.condition in CONDITIONS, f"condition={cfg.condition!r}: choose one of {', '.join(CONDITIONS)}")
    _check(cfg.balance_cap >= 1, f"balance_cap={cfg.balance_cap}: must be >= 1 (5 is usual)")
    _check(0 <= cfg.extra_layers <= 8, f"extra_layers={cfg.extra_layers}: must lie in 0..8 (0 is the DCGAN paper's)")
    _check(cfg.r1_every > 0, f"r1_every={cfg.r1_every}: must be a positive integer")
    _check(0 <= cfg.ema_decay < 1, f"ema_decay={cfg.ema_decay}: must lie in [0, 1); 0.999 is usual, 0 is off")
    unknown = [p for p in cfg.augment.split(",") if p.strip() and p.strip() not in AUGMENTS]
    _check(not unknown, f"augment={cfg.augment!r}: unknown {unknown}; use a comma-separated subset of "
                        f"{', '.join(AUGMENTS)}")
    _check(cfg.compile in COMPILE_MODES, f"compile={cfg.compile!r}: choose one of {', '.join(COMPILE_MODES)}")
    _check(cfg.eval_every >= 0, f"eval_every={cfg.eval_every}: must be >= 0 (0 turns evaluation off)")
    _check(cfg.eval_n >= 2, f"eval_n={cfg.eval_n}: an evaluation needs at least 2 images")
    _check(cfg.keep_checkpoints >= 0, f"keep_checkpoints={cfg.keep_checkpoints}: must be >= 0")
    _check(cfg.num_workers >= 0, f"num_workers={cfg.num_workers}: must be >= 0")
    # The synthetic faces refuse negative seeds, and torch's generators overflow past 64 bits
    # once the data order mixes the seed with the epoch; 32 bits is the usual seed range.
    _check(0 <= cfg.seed < 2**32, f"seed={cfg.seed}: must lie in [0, 2**32)")
    # torch.device raises RuntimeError (which the CLI would not report as one line) for
    # anything else, such as "cuda:" or "cuda:x".
    _check(cfg.device == "auto" or re.fullmatch(r"(cpu|cuda|mps)(:(0|[1-9][0-9]*))?", cfg.device),
           f"device={cfg.device!r}: use auto, cpu, cuda or cuda:N")


# Named configs. The course recipe is the notebook's; demo fits a 2-core CPU in minutes.
PRESETS: dict[str, dict] = {
    "course": dict(image_size=64, conv_dim=64, batch_size=128, loss="bce", label_smoothing=1.0),
    "demo": dict(image_size=32, conv_dim=64, batch_size=64, synthetic_n=4096, epochs=20,
                 name="demo", label_smoothing=0.9),
    # Chosen by measurement (bench/quality.py, README "Quality"): on the CelebA subset at
    # 63,488 images seen, FID 116.5 against the course recipe's 265.7 (0.44x).
    # SAGAN-style: hinge loss with a spectrally normalised D, TTUR, G_ema, DiffAugment.
    "quality": dict(image_size=64, conv_dim=64, batch_size=64, loss="hinge", d_norm="spectral",
                    lr_d=4e-4, lr_g=1e-4, beta1=0.0, beta2=0.9, ema_decay=0.999,
                    augment="color,translation"),
    "tiny": dict(image_size=32, conv_dim=8, z_size=16, batch_size=16, synthetic_n=64, epochs=1,
                 n_fixed=4, log_every=1, name="tiny"),
}


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})
