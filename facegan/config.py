"""One typed config for a training run, shared by the CLI, the notebook and the tests.

Defaults are the DCGAN paper's (Radford et al. 2015): Adam 2e-4, betas (0.5, 0.999),
batch 128, z of 100, N(0, 0.02) init. Presets are just named sets of overrides.

Each field is declared once, with `opt(default, help, group, check=..., resumable=...)`:
its --help text, the CLI's argument group, the rule a value must meet and whether a
resumed run may change it. The validator, the CLI and the resume check all read these.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

__all__ = ["TrainConfig", "ConfigError", "preset", "PRESETS", "opt", "validate", "resumable_fields", "upgrade_keys"]

IMAGE_SIZES = (32, 64, 128)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what counts as an image in a data folder
DATASETS = ("synthetic", "celeba", "folder")
LOSSES = ("bce", "ls", "hinge", "wgan", "rpgan")
ARCHS = ("dcgan", "resnet", "udacity", "keras")  # the DCGAN paper's nets, R3GAN-style residual nets
# (facegan/nets/resnets.py), or the seed projects' own: the course's reference nets and a Keras model (facegan/nets/archs.py)
INITS = ("normal", "xavier", "kaiming", "orthogonal")  # weight init schemes (facegan/nets/models.py init_weights)
D_NORMS = ("batch", "spectral", "none")
LR_DECAYS = ("none", "linear", "cosine")
AUGMENTS = ("color", "translation", "cutout")  # DiffAugment's policies (facegan/training/augment.py)
SCHEDULES = ("fixed", "decay", "gated")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
BALANCES = ("none", "tone")  # training draws: uniform, or evened out over skin-tone categories
# The six ITA skin-tone categories, lightest first (facegan/data/tone.py estimates them).
TONE_CATEGORIES = ("very light", "light", "intermediate", "tan", "brown", "dark")
CONDITIONS = ("none", "tone")  # what G and D are told about each face: nothing, or its skin-tone category

# The CLI's argument groups, in --help order.
DATA, MODELS, TONE, OPTIMISATION, SCHEDULE, SPEED, RUN = (
    "data", "models", "skin tone", "optimisation", "D/G update schedule (facegan/training/schedules.py)",
    "speed (facegan/utils/accel.py; none of these changes the fp32 math)", "run bookkeeping")
GROUPS = (DATA, MODELS, TONE, OPTIMISATION, SCHEDULE, SPEED, RUN)

# Keys older config.json files, checkpoints and exports may hold: renamed, or dropped.
RENAMED_KEYS = {"label_smoothing": "real_target"}
REMOVED_KEYS = {"num_workers"}  # read by nothing: the course dataloader takes it as an argument


@dataclass(frozen=True)
class Range:
    """A number in [low, high], either end open or absent; `note` follows the refusal."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def allows(self, value) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {_number(self.low)}"
        return (f"must lie in {'(' if self.low_open else '['}{_number(self.low)}, "
                f"{_number(self.high)}{')' if self.high_open else ']'}")


def _number(x) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


@dataclass(frozen=True)
class Choice:
    choices: tuple

    def allows(self, value) -> bool:
        return value in self.choices

    def describe(self) -> str:
        return f"choose one of {', '.join(map(str, self.choices))}"


@dataclass(frozen=True)
class Matches:
    """A value `test` accepts; `wanted` says what that is."""
    test: object
    wanted: str

    def allows(self, value) -> bool:
        return bool(self.test(value))

    def describe(self) -> str:
        return self.wanted


POSITIVE = Range(1, note="a positive integer")
NON_NEGATIVE_OFF = Range(0, note="0 turns it off")


def count(low: int, high: int, note: str = "") -> Range:
    """A count from low to a generous high: far past any real run, short of what would exhaust
    memory or overflow before a step is taken (the memory a run needs is estimated as well:
    facegan/training/step.py estimate_memory)."""
    return Range(low, high, note=note)


def _augment_policy(value: str) -> bool:
    return all(p.strip() in AUGMENTS for p in value.split(",") if p.strip())


def is_device_name(value: str) -> bool:
    # torch.device raises RuntimeError (which the CLI would not report as one line) for
    # anything else, such as "cuda:" or "cuda:x".
    return value == "auto" or re.fullmatch(r"(cpu|cuda|mps)(:(0|[1-9][0-9]*))?", value) is not None


def opt(default, help: str, group: str, check=None, resumable: bool = False):
    """A config field: its default, --help text, CLI group, value rule, and whether a
    resumed run may change it (only what leaves the math of the run as it was)."""
    return field(default=default, metadata={"help": help, "group": group, "check": check,
                                            "resumable": resumable})


@dataclass
class TrainConfig:
    data: str = opt("synthetic", "synthetic (offline default) | celeba | folder", DATA, Choice(DATASETS))
    data_dir: str = opt("data", "celeba: where the zip is fetched/extracted; folder: the images", DATA)
    image_size: int = opt(64, "32, 64 or 128", DATA, Choice(IMAGE_SIZES))
    synthetic_n: int = opt(4096, "how many procedural faces to draw for data=synthetic", DATA,
                           count(1, 10_000_000))
    cache_dir: str = opt("data/cache", "decoded uint8 arrays of image folders live here", DATA)
    hflip: bool = opt(True, "random horizontal flips: faces are left-right symmetric", DATA)
    epoch_images: int = opt(0, "images drawn for each epoch, a fresh random subset per (seed, epoch) (sooner "
                               "results on a large set); 0: the whole set", DATA,
                           count(0, 10**9, "0 turns it off"))

    arch: str = opt("dcgan", "dcgan (the paper's strided convolutions, BatchNorm) | resnet (R3GAN-style residual "
                             "nets without normalisation; needs --d-norm none) | udacity (the course's reference "
                             "nets: 3 strided convolutions and a dense layer each; 32 px, conv_dim 32 as the seed "
                             "projects had them) | keras (a seed project's Keras model at 128 px: a dense G, a D of "
                             "2 convolutions with dropout 0.3 unless --d-dropout; needs --d-norm none or spectral)",
                    MODELS, Choice(ARCHS))
    mbstd: bool = opt(False, "resnet: a minibatch standard-deviation feature in D (Karras et al. 2018)", MODELS)
    sle: bool = opt(False, "dcgan: FastGAN's skip-layer excitation in G (Liu et al. 2021): each coarse feature "
                           "map gates the channels of one 4x finer", MODELS)
    z_size: int = opt(100, "length of the latent vector z", MODELS, count(1, 65_536))
    conv_dim: int = opt(64, "width of the first D layer / last G layer (G's: --g-conv-dim when set)", MODELS,
                         count(1, 8192))
    g_conv_dim: int = opt(0, "width of G's last layer when G should be wider or narrower than D; 0: conv_dim",
                          MODELS, count(0, 8192, "0 is conv_dim"))
    extra_layers: int = opt(0, "deeper nets: 3x3 conv blocks added to D and G at the finest feature map",
                            MODELS, Range(0, 8, note="0 is the DCGAN paper's"))
    d_dropout: float = opt(0.0, ">0 gives the Keras-style D with dropout after each block", MODELS,
                           Range(0, 1, high_open=True))
    d_norm: str = opt("batch", "D's normalisation: batch | spectral (spectral norm, no BatchNorm) | none",
                      MODELS, Choice(D_NORMS))
    grow_from: int = opt(0, "progressive growing (Karras et al. 2018, facegan/nets/progressive.py): train at this size "
                            "first (8, 16 or 32, below image_size), then double up to image_size, fading each new "
                            "block in; 0 turns it off", MODELS, Choice((0, 8, 16, 32)))
    grow_share: float = opt(0.5, "grow_from: the share of the run spent growing, one phase per doubling (train, "
                                 "then fade the next size in); the rest trains at image_size", MODELS,
                            Range(0, 1, low_open=True))
    grow_epochs: int = opt(0, "grow_from: the epochs the growth schedule spans (grow_share of them grow); 0: --epochs. "
                              "A resume to more --epochs keeps the run's own, so the extra epochs train at "
                              "image_size", MODELS, count(0, 1_000_000, "0 is --epochs"), resumable=True)
    init: str = opt("normal", "weight init: normal (the DCGAN paper's N(0, 0.02)) | xavier (Glorot) | kaiming "
                              "(He, fan-in, ReLU gain) | orthogonal; BatchNorm scales start ~N(1, 0.02) in all",
                    MODELS, Choice(INITS))
    leak: float = opt(0.2, "negative slope of D's leaky ReLUs (0.2 is the DCGAN paper's)", MODELS,
                      Range(0, 1, high_open=True))

    balance: str = opt("none", "none | tone: draw training images inversely to the share of their "
                               "skin-tone (ITA) category, so rare tones are seen as often as common ones",
                       TONE, Choice(BALANCES))
    balance_cap: float = opt(5.0, "balance: no image is drawn more than this many times the average",
                             TONE, Range(1, note="5 is usual"))
    tone_match: float = opt(0.0, "weight of a G loss pulling the skin-tone (ITA) distribution of its "
                                 "batch onto the real batch's (with --balance tone, the balanced draw); "
                                 "0 turns it off", TONE, NON_NEGATIVE_OFF)
    condition: str = opt("none", "none | tone: G and D are conditioned on the skin-tone (ITA) category; "
                                 "G then draws the six categories in equal shares (a class per slice of z[0])",
                         TONE, Choice(CONDITIONS))

    # docs: begin fields
    batch_size: int = opt(128, "images per step", OPTIMISATION, count(1, 2**20))
    epochs: int = opt(5, "passes over the training set; 0: as many as the --minutes budget allows", OPTIMISATION,
                      count(0, 1_000_000, "0 trains until --minutes is spent"), resumable=True)
    # docs: end fields
    lr_d: float = opt(2e-4, "discriminator Adam learning rate", OPTIMISATION, Range(0, low_open=True))
    lr_g: float = opt(2e-4, "generator Adam learning rate (differs from lr_d for TTUR)", OPTIMISATION,
                      Range(0, low_open=True))
    beta1: float = opt(0.5, "Adam beta1; 0.5 (not 0.9) keeps GAN training stable", OPTIMISATION,
                       Range(0, 1, high_open=True, note="Adam's betas"))
    beta2: float = opt(0.999, "Adam beta2", OPTIMISATION, Range(0, 1, high_open=True, note="Adam's betas"))
    loss: str = opt("bce", "bce (with logits) | ls (least squares) | hinge | wgan (with gradient penalty) | "
                           "rpgan (relativistic pairing, R3GAN; pair it with --r1-gamma and --r2-gamma)",
                    OPTIMISATION, Choice(LOSSES))
    real_target: float = opt(1.0, "D's target for real images (called label_smoothing before); 0.9 is "
                                  "one-sided label smoothing", OPTIMISATION,
                             Range(0.5, 1, low_open=True, note="0.9 is usual"))
    gp_weight: float = opt(10.0, "wgan: weight of the gradient penalty", OPTIMISATION, NON_NEGATIVE_OFF)
    r1_gamma: float = opt(0.0, "R1 penalty on D's gradient at real images; 0 turns it off", OPTIMISATION,
                          NON_NEGATIVE_OFF)
    r2_gamma: float = opt(0.0, "R2: the same zero-centred penalty on D's gradient at fake images (R3GAN uses "
                               "gamma for both); 0 turns it off", OPTIMISATION, NON_NEGATIVE_OFF)
    r1_every: int = opt(16, "apply R1 every N steps, scaled by N (lazy regularisation)", OPTIMISATION,
                         count(1, 1_000_000))
    ema_decay: float = opt(0.0, "EMA of G's weights for samples and evaluation, e.g. 0.999; 0 turns it off",
                           OPTIMISATION, Range(0, 1, high_open=True, note="0.999 is usual, 0 is off"))
    ema_norm_samples: int = opt(256, "G_ema's BatchNorm statistics are measured on this many of its own samples "
                                     "before each snapshot, not copied from G; 0 copies them", OPTIMISATION,
                                count(0, 1_000_000),
                                resumable=True)
    augment: str = opt("", "DiffAugment policy for D's inputs, e.g. color,translation,cutout; empty: off",
                       OPTIMISATION, Matches(_augment_policy, f"use a comma-separated subset of {', '.join(AUGMENTS)}"))
    bcr: float = opt(0.0, "balanced consistency regularisation (Zhao et al. 2021, facegan/training/consistency.py): "
                          "weight of D's squared change of verdict between two augmentations of the same real and "
                          "fake images (10 is the paper's); 0 turns it off", OPTIMISATION, NON_NEGATIVE_OFF)
    ada_target: float = opt(0.0, "adaptive augmentation (ADA, Karras et al. 2020, facegan/training/ada.py): the "
                                 "policy is applied with a probability that rises while D's sign on the reals "
                                 "exceeds this target (0.6 is the paper's); 0: the policy always", OPTIMISATION,
                            Range(0, 1, high_open=True, note="0.6 is usual, 0 is off"))
    lecam: float = opt(0.0, "LeCam regularisation (Tseng et al. 2021, facegan/training/lecam.py): weight of a pull of D's "
                            "logits toward the running means of its past verdicts, against D memorising a small set; "
                            "0 turns it off", OPTIMISATION, NON_NEGATIVE_OFF)
    instance_noise: float = opt(0.0, "std of Gaussian noise added to D's inputs, annealed to 0 over the run",
                                OPTIMISATION, NON_NEGATIVE_OFF)
    lr_decay: str = opt("none", "learning-rate decay to 0 over the run: none | linear | cosine",
                        OPTIMISATION, Choice(LR_DECAYS))

    schedule: str = opt("fixed", "fixed k:1 | decay (k -> 1 over training) | gated (skip D when it wins)",
                        SCHEDULE, Choice(SCHEDULES))
    d_steps: int = opt(1, "k: D updates per G update", SCHEDULE, count(1, 100))
    g_steps: int = opt(1, "k: G updates per D update, each on a fresh z (fixed, or decaying to 1:1 with "
                          "--schedule decay)", SCHEDULE, Range(1, 16))
    d_acc_gate: float = opt(0.8, "gated: D trains only while its accuracy is below this", SCHEDULE, Range(0.5, 1))

    fast: bool = opt(True, "channels_last, foreach/fused Adam, cudnn.benchmark, dataset resident on the GPU",
                     SPEED, resumable=True)
    amp: bool = opt(True, "bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX); "
                          "elsewhere fp32", SPEED, resumable=True)
    sync_bn: bool = opt(False, "under torchrun on GPUs: BatchNorm statistics over all ranks' batches",
                        SPEED, resumable=True)
    compile: str = opt("off", "torch.compile the networks: off | default | reduce-overhead (CUDA graphs) | "
                              "max-autotune", SPEED, Choice(COMPILE_MODES), resumable=True)

    # The synthetic faces refuse negative seeds, and torch's generators overflow past 64 bits
    # once the data order mixes the seed with the epoch; 32 bits is the usual seed range.
    seed: int = opt(0, "seeds weights, data order, z and the synthetic faces", RUN,
                    Range(0, 2**32, high_open=True))
    device: str = opt("auto", "auto picks CUDA when available", RUN,
                      Matches(is_device_name, "use auto, cpu, cuda or cuda:N"), resumable=True)
    name: str = opt("run", "run name, used for the default folder runs/<name>", RUN, resumable=True)
    out: str = opt("", "run folder; empty means runs/<name>", RUN, resumable=True)
    minutes: float = opt(0.0, "wall-clock budget of this call: when it is spent the run stops with a checkpoint, "
                              "to be continued with --resume; 0: no budget", RUN, NON_NEGATIVE_OFF, resumable=True)
    n_fixed: int = opt(16, "fixed latent batch drawn into train_samples.pkl each epoch", RUN, count(1, 10_000))
    log_every: int = opt(10, "steps between metrics.jsonl rows", RUN, count(1, 10**8), resumable=True)
    eval_every: int = opt(0, "epochs between FID/KID/SWD rows in metrics.jsonl, and one at the end of a spent "
                             "--minutes budget; 0 turns evaluation off",
                          RUN, count(0, 1_000_000, "0 turns it off"), resumable=True)
    eval_n: int = opt(500, "real and generated images per evaluation (FID needs thousands to compare runs)",
                      RUN, count(2, 1_000_000, "an evaluation needs at least 2 images"), resumable=True)
    early_stop: int = opt(0, "with --eval-every: end the run after this many evaluations without a new best "
                             "FID (checkpoints/best.pt keeps the best); 0: never", RUN,
                          count(0, 1_000_000, "0 turns it off"),
                          resumable=True)
    keep_checkpoints: int = opt(2, "per-epoch snapshots kept besides latest.pt", RUN, count(0, 100_000),
                                resumable=True)
    tensorboard: bool = opt(False, "also log losses, sample grids and FID to RUN_DIR/tensorboard "
                                   "(needs: pip install tensorboard)", RUN, resumable=True)

    def __post_init__(self):
        validate(self)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / self.name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = upgrade_keys(d)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; valid keys are the TrainConfig fields")
        return cls(**d)

    def save(self, path: Path) -> None:
        from .utils.atomic import atomic_write_text
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")


def upgrade_keys(saved: dict) -> dict:
    """A config dict from an older facegan, in today's keys (renamed keys mapped, removed ones dropped)."""
    return {RENAMED_KEYS.get(k, k): v for k, v in saved.items() if k not in REMOVED_KEYS}


def resumable_fields() -> frozenset[str]:
    """The fields a resumed run may change: bookkeeping and speed, never the math."""
    return frozenset(f.name for f in fields(TrainConfig) if f.metadata["resumable"])


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


_KINDS = {"int": (numbers.Integral, "an integer"), "float": (numbers.Real, "a number"),
          "str": (str, "a string"), "bool": (bool, "true or false")}


def _check_type(name: str, kind: str, value) -> None:
    # Configs also come from JSON and notebooks, where a "16" or a None would otherwise
    # surface later as a TypeError; bool is an int subclass, but True is no batch size.
    kind_type, wanted = _KINDS[kind]
    is_bool = isinstance(value, bool)
    ok = is_bool if kind == "bool" else isinstance(value, kind_type) and not is_bool
    _check(ok, f"{name}: expected {wanted}, got {type(value).__name__}")
    # inf passes "> 0", nan fails range checks only by luck, and an int past the float
    # range overflows once torch gets it.
    _check(kind != "float" or abs(value) <= sys.float_info.max, f"{name}={value}: must be a finite number")


# Values of the options that need the run's length in steps (its progress from 0 to 1) that do not.
_UNSCHEDULED = {"lr_decay": ("none",), "instance_noise": (0.0,), "schedule": ("fixed", "gated"), "grow_from": (0,)}


def validate(cfg: TrainConfig) -> None:
    for f in fields(cfg):
        value, check = getattr(cfg, f.name), f.metadata["check"]
        _check_type(f.name, f.type, value)
        if check is not None and not check.allows(value):
            note = getattr(check, "note", "")
            raise ConfigError(f"{f.name}={value!r}: {check.describe()}" + (f" ({note})" if note else ""))
    # Rules across fields.
    _check(cfg.loss != "wgan" or cfg.d_norm != "batch",
           "loss='wgan': its gradient penalty is per image, which BatchNorm mixes; add --d-norm none or spectral")
    if cfg.arch == "resnet":
        _check(cfg.d_norm == "none", "arch='resnet': its nets have no normalisation layers; add --d-norm none")
        for name, off in (("condition", "none"), ("extra_layers", 0), ("d_dropout", 0.0)):
            _check(getattr(cfg, name) == off, f"arch='resnet': {name}={getattr(cfg, name)!r} is a DCGAN option; "
                                              f"drop it (or use --arch dcgan)")
        for name, default in (("init", "normal"), ("leak", 0.2)):
            _check(getattr(cfg, name) == default, f"arch='resnet': {name}={getattr(cfg, name)!r} is not used: "
                                                  f"its nets have their own init and slope; drop --{name}")
    if cfg.arch in ("udacity", "keras"):
        for name, off in (("condition", "none"), ("extra_layers", 0)):
            _check(getattr(cfg, name) == off, f"arch={cfg.arch!r}: {name}={getattr(cfg, name)!r} is a DCGAN "
                                              f"option; drop it (or use --arch dcgan)")
    _check(cfg.arch != "udacity" or cfg.d_dropout == 0, f"arch='udacity': d_dropout={cfg.d_dropout!r}: the "
                                                        f"course's D has no dropout; drop it (or use --arch keras)")
    _check(cfg.arch != "keras" or cfg.d_norm != "batch", "arch='keras': its D has no BatchNorm; add --d-norm none "
                                                         "(or spectral)")
    _check(cfg.d_steps == 1 or cfg.g_steps == 1, f"d_steps={cfg.d_steps} and g_steps={cfg.g_steps}: one side "
                                                 f"trains more often than the other; set one of them to 1")
    _check(cfg.g_steps == 1 or cfg.schedule != "gated", "schedule='gated' decides D's updates from its "
                                                       "accuracy; drop --g-steps or use --schedule fixed")
    _check(not cfg.early_stop or cfg.eval_every, f"early_stop={cfg.early_stop} counts evaluations; "
                                                 f"add --eval-every N")
    _check(not cfg.sle or (cfg.arch == "dcgan" and not cfg.grow_from),
           "sle=True: skip-layer excitation is built into the DCGAN G; use --arch dcgan without --grow-from, "
           "or drop --sle")
    _check(not cfg.bcr or bool(cfg.augment), f"bcr={cfg.bcr}: consistency regularisation compares two draws of "
                                             f"an augmentation policy; add --augment translation (or another "
                                             f"policy) or drop --bcr")
    _check(not cfg.mbstd or cfg.arch == "resnet", "mbstd=True: the minibatch-std feature is in the resnet D; "
                                                  "add --arch resnet or drop --mbstd")
    if cfg.ada_target:
        ada = f"ada_target={cfg.ada_target}:"
        _check(bool(cfg.augment), f"{ada} ADA adapts the strength of an augmentation policy; add --augment "
                                  f"translation (or another policy) or drop --ada-target")
        _check(cfg.loss not in ("wgan", "rpgan"), f"{ada} ADA reads the sign of D's logits on the reals, which "
                                                   f"--loss {cfg.loss} leaves without meaning; use --loss hinge, "
                                                   f"bce or ls, or drop --ada-target")
    if not cfg.epochs:
        _check(cfg.minutes > 0, "epochs=0 trains until the time budget is spent; give --minutes M (or --epochs N)")
        for name, unscheduled in _UNSCHEDULED.items():
            _check(getattr(cfg, name) in unscheduled, f"{name}={getattr(cfg, name)!r} is scheduled over the run's "
                                                      f"length, which a time budget alone leaves open; give "
                                                      f"--epochs N (or drop --{name.replace('_', '-')})")
    _check(not cfg.grow_epochs or cfg.grow_from, f"grow_epochs={cfg.grow_epochs} spans the growth schedule; "
                                                 f"add --grow-from or drop --grow-epochs")
    if cfg.grow_from:  # progressive growing (facegan/nets/progressive.py) grows the plain DCGAN nets
        grown = f"grow_from={cfg.grow_from}:"
        _check(cfg.grow_from < cfg.image_size, f"{grown} growing starts below image_size={cfg.image_size}; "
                                               f"use a smaller --grow-from or a larger --image-size")
        _check(cfg.arch == "dcgan", f"{grown} progressive growing is built for the DCGAN nets; add --arch dcgan "
                                    f"or drop --grow-from")
        _check(cfg.grow_epochs <= cfg.epochs, f"{grown} grow_epochs={cfg.grow_epochs} is more than epochs="
                                              f"{cfg.epochs}: the run would end before reaching image_size; "
                                              f"give --epochs {cfg.grow_epochs} or more")
        for name, off in (("condition", "none"), ("extra_layers", 0)):
            _check(getattr(cfg, name) == off, f"{grown} the growing nets have no {name}={getattr(cfg, name)!r}; "
                                              f"drop --{name.replace('_', '-')} or --grow-from")


# The SAGAN-style recipe (docs/techniques.md): hinge loss with a spectrally normalised D, TTUR, G_ema, DiffAugment.
_QUALITY = dict(image_size=64, conv_dim=64, batch_size=64, loss="hinge", d_norm="spectral",
                lr_d=4e-4, lr_g=1e-4, beta1=0.0, beta2=0.9, ema_decay=0.999, augment="color,translation")

# Named configs. The course recipe is the notebook's; demo fits a 2-core CPU in minutes.
PRESETS: dict[str, dict] = {
    "course": dict(image_size=64, conv_dim=64, batch_size=128, loss="bce", real_target=1.0),
    # Batch 32 and G_ema: the lowest FID of the variants given make demo's few minutes of a CPU (docs/results.md)
    "demo": dict(image_size=32, conv_dim=64, batch_size=32, synthetic_n=4096, epochs=16,
                 name="demo", real_target=0.9, ema_decay=0.999),
    # The lowest FID per image seen of the recipes measured: for budgets of images, not CPU minutes (docs/results.md)
    "quality": _QUALITY,
    # Half quality's width for more images a minute, beta2 0.99, translations: best FID on a CPU clock (docs/results.md)
    "cpu": {**_QUALITY, "conv_dim": 32, "beta2": 0.99, "augment": "translation"},
    # cpu with G's learning rate doubled: G learns faster, the lowest FID after 10 CPU minutes (docs/results.md)
    "cpu-fast": {**_QUALITY, "conv_dim": 32, "beta2": 0.99, "augment": "translation", "lr_g": 2e-4},
    "tiny": dict(image_size=32, conv_dim=8, z_size=16, batch_size=16, synthetic_n=64, epochs=1,
                 n_fixed=4, log_every=1, name="tiny"),
}


def preset(name: str, /, **overrides) -> TrainConfig:
    # Positional-only, so an override may itself be `name` (the run's name: --preset demo --name N).
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return TrainConfig(**{**PRESETS[name], **overrides})
