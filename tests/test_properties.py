"""Property-based tests: whatever the input, the answer is a usable result or one clear error.

Hypothesis draws configs (wrong types, nan, inf, negatives, arbitrary strings) and images
(any small size, mode and format, solid or noisy, or plain garbage bytes).
"""
import io
import math
import re
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from facegan.commands import cli
from facegan.config import AUGMENTS, D_NORMS, IMAGE_SIZES, LOSSES, Choice, ConfigError, Matches, Range, TrainConfig
from facegan.data.images import TRANSPARENT_BACKGROUND, DataError, cached_image_array, load_rgb

# Enough examples to find the bugs these caught, few enough to run in a couple of seconds.
# (Hypothesis keeps failing examples in .hypothesis/, which ignores itself in git.)
FAST = settings(max_examples=40, deadline=None)


# ---------------------------------------------------------------- TrainConfig

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_finite_number(v):
    # abs() rather than math.isfinite, which overflows on ints past the float range
    return (is_int(v) or isinstance(v, float)) and abs(v) <= sys.float_info.max


def within(low, high, low_open=False, high_open=False):
    def allowed(v):
        if not is_finite_number(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below
    return allowed


def one_of(choices):
    return lambda v: isinstance(v, str) and v in choices


def device_name(v):
    return isinstance(v, str) and (v == "auto" or re.fullmatch(r"(cpu|cuda|mps)(:(0|[1-9][0-9]*))?", v))


# The rules each field declares (facegan/config.py's opt(..., check=...)), read back here by
# the test's own predicates rather than by validate(): a new field is tested as declared.
FIELDS = {f.name: f for f in fields(TrainConfig)}
TYPE_RULES = {"int": is_int, "float": is_finite_number, "str": lambda v: isinstance(v, str),
              "bool": lambda v: isinstance(v, bool)}


def augment_policy(v):
    return isinstance(v, str) and all(p.strip() in AUGMENTS for p in v.split(",") if p.strip())


# Fields whose rule is a predicate (Matches): restated here, with values it accepts.
CUSTOM_RULES = {"augment": augment_policy, "device": device_name}
CUSTOM_VALID = {
    "augment": st.lists(st.sampled_from(AUGMENTS), unique=True).map(",".join),
    "device": st.sampled_from(["auto", "cpu", "mps"]) | st.from_regex(r"cuda(:(0|[1-9][0-9]{0,2}))?", fullmatch=True),
}
# "wgan" is valid only with a D that has no BatchNorm: a cross-field rule, tested on its own.
SINGLE_FIELD_LOSSES = tuple(loss for loss in LOSSES if loss != "wgan")


# Fields whose other values are valid only beside other fields' values (cross-field rules).
SINGLE_FIELD_ONLY = {"arch": ("dcgan",), "mbstd": (False,), "grow_from": (0,), "g_steps": (1,),
                     "early_stop": (0,), "grow_epochs": (0,), "ada_target": (0.0,), "bcr": (0.0,), "sle": (False,)}
# epochs=0 needs a --minutes budget (tests/training/test_budget.py): alone, epochs counts from 1.
SINGLE_FIELD_RANGES = {"epochs": (1, 1_000_000)}


def declared_rule(f):
    check, typed = f.metadata["check"], TYPE_RULES[f.type]
    if f.name == "loss":
        return one_of(SINGLE_FIELD_LOSSES)
    if f.name in SINGLE_FIELD_ONLY:
        return lambda v: typed(v) and v in SINGLE_FIELD_ONLY[f.name]
    if f.name in SINGLE_FIELD_RANGES:
        low, high = SINGLE_FIELD_RANGES[f.name]
        return lambda v: typed(v) and low <= v <= high
    if isinstance(check, Range):
        low = -math.inf if check.low is None else check.low
        high = math.inf if check.high is None else check.high
        bounded = within(low, high, check.low_open, check.high_open or check.high is None)
        return lambda v: typed(v) and bounded(v)
    if isinstance(check, Choice):
        return lambda v: typed(v) and v in check.choices
    if isinstance(check, Matches):
        return CUSTOM_RULES[f.name]
    return typed


def declared_values(f):
    """Values the declared rule accepts, over its whole range (subnormal and huge floats included)."""
    check = f.metadata["check"]
    if f.name == "loss":
        return st.sampled_from(SINGLE_FIELD_LOSSES)
    if f.name in SINGLE_FIELD_ONLY:
        return st.sampled_from(SINGLE_FIELD_ONLY[f.name])
    if f.name in SINGLE_FIELD_RANGES:
        return st.integers(*SINGLE_FIELD_RANGES[f.name])
    if isinstance(check, Choice):
        return st.sampled_from(check.choices)
    if isinstance(check, Matches):
        return CUSTOM_VALID[f.name]
    if isinstance(check, Range) and f.type == "int":
        return st.integers(None if check.low is None else math.floor(check.low) + check.low_open,
                           None if check.high is None else math.ceil(check.high) - check.high_open)
    if isinstance(check, Range):
        return st.floats(check.low, check.high, exclude_min=check.low_open and check.low is not None,
                         exclude_max=check.high_open and check.high is not None, allow_infinity=False)
    return {"str": st.text(max_size=12), "bool": st.booleans()}[f.type]


RULES = {name: declared_rule(f) for name, f in FIELDS.items()}
VALID_VALUES = {name: declared_values(f) for name, f in FIELDS.items()}
INT_RULES = [name for name, f in FIELDS.items() if f.type == "int"]
FLOAT_RULES = [name for name, f in FIELDS.items() if f.type == "float"]
TEXT_RULES = [name for name, f in FIELDS.items() if f.type == "str"]
BOOL_RULES = [name for name, f in FIELDS.items() if f.type == "bool"]


def test_every_predicate_rule_is_restated_here():
    matched = {name for name, f in FIELDS.items() if isinstance(f.metadata["check"], Matches)}
    assert matched == set(CUSTOM_RULES) == set(CUSTOM_VALID)


# The documented limits, restated by hand: the declarations above must not drift from them.
DOCUMENTED = [  # field, a value refused, a value accepted
    ("image_size", 48, 128), ("batch_size", 0, 1), ("lr_d", 0.0, 1e-9), ("beta1", 1.0, 0.0),
    ("beta2", 1.0, 0.999), ("real_target", 0.5, 1.0), ("d_acc_gate", 0.49, 0.5), ("seed", 2**32, 2**32 - 1),
    ("seed", -1, 0), ("eval_n", 1, 2), ("keep_checkpoints", -1, 0), ("eval_every", -1, 0),
    ("g_steps", 0, 1), ("g_steps", 17, 1), ("epoch_images", -1, 0),
    ("extra_layers", 9, 8), ("ema_decay", 1.0, 0.0), ("balance_cap", 0.99, 1.0), ("tone_match", -0.1, 0.0),
    ("d_dropout", 1.0, 0.0), ("r1_every", 0, 1), ("condition", "class", "tone"), ("compile", "fast", "max-autotune"),
    ("grow_from", 12, 16), ("grow_share", 0.0, 1.0),
    ("init", "uniform", "orthogonal"), ("leak", 1.0, 0.0), ("leak", -0.1, 0.99), ("arch", "stylegan", "udacity"),
]


@pytest.mark.parametrize("field, refused, accepted", DOCUMENTED)
def test_documented_limits_hold(field, refused, accepted):
    assert getattr(TrainConfig(**{field: accepted}), field) == accepted
    with pytest.raises(ConfigError, match=f"^{field}"):
        TrainConfig(**{field: refused})


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Anything at all: out of range, nan, inf, arbitrary text, or what a JSON file or a
# notebook might hand over instead of the right type.
wrong_types = st.none() | st.booleans() | st.lists(st.integers(), max_size=2)
ints = st.integers(-3, 300) | st.integers() | st.sampled_from(IMAGE_SIZES) | st.just(2**32)
floats = (st.floats(-0.5, 1.5) | st.floats(allow_nan=True, allow_infinity=True)
          | st.sampled_from([0, 1, 0.5, 1e-4, 10**400, math.nan, math.inf, -math.inf]))
NEAR_MISSES = ["", " ", "BCE", "cuda:", "cuda:x", "cuda:01", "cpu:0", "mps", "auto\n"]
ANY_VALUES = {
    **{name: ints | wrong_types for name in INT_RULES},
    **{name: floats | wrong_types for name in FLOAT_RULES},
    **{name: st.text(max_size=12) | st.sampled_from(NEAR_MISSES) | wrong_types for name in TEXT_RULES},
    **{name: st.booleans() | ints | wrong_types for name in BOOL_RULES},
}
# grow_from's sizes are valid or not by image_size, arch and condition: tests/nets/test_progressive.py checks them.
ANY_VALUES["grow_from"] = ANY_VALUES["grow_from"].filter(lambda v: v not in (8, 16, 32))
ANY_VALUES["grow_epochs"] = ANY_VALUES["grow_epochs"].filter(lambda v: not (isinstance(v, int) and 0 < v <= 10**6))
# g_steps > 1 and early_stop > 0 hang on d_steps/schedule and eval_every: tests/training/test_schedules.py
# and tests/training/test_stopping.py check those rules; here they are drawn only out of range.
ANY_VALUES["g_steps"] = ANY_VALUES["g_steps"].filter(lambda v: not (isinstance(v, int) and 2 <= v <= 16))
ANY_VALUES["early_stop"] = ANY_VALUES["early_stop"].filter(lambda v: not (isinstance(v, int) and v > 0))
ANY_VALUES["epochs"] = ANY_VALUES["epochs"].filter(lambda v: v != 0)  # 0 hangs on --minutes
# ADA and bCR need an augmentation policy (and ADA a loss with signed logits), --sle the plain DCGAN G:
# tests/training/test_ada.py, test_consistency.py and tests/nets/test_models.py check those rules.
ANY_VALUES["ada_target"] = ANY_VALUES["ada_target"].filter(lambda v: not (_number(v) and 0 < v < 1))
ANY_VALUES["bcr"] = ANY_VALUES["bcr"].filter(lambda v: not (_number(v) and 0 < v < math.inf))
ANY_VALUES["sle"] = ANY_VALUES["sle"].filter(lambda v: v is not True)


@FAST
@given(overrides=st.fixed_dictionaries({}, optional=VALID_VALUES))
def test_valid_values_are_all_accepted_as_given(overrides):
    cfg = TrainConfig(**overrides)
    assert all(getattr(cfg, name) == value for name, value in overrides.items())


@pytest.mark.parametrize("field", sorted(RULES))
@settings(FAST, max_examples=25)
@given(base=st.fixed_dictionaries({}, optional=VALID_VALUES), data=st.data())
def test_one_doubtful_value_is_accepted_exactly_when_the_rules_allow_it(field, base, data):
    value = data.draw(ANY_VALUES[field] | VALID_VALUES[field], label=field)
    overrides = {**base, field: value}
    if RULES[field](value):
        assert getattr(TrainConfig(**overrides), field) == value
        return
    with pytest.raises(ConfigError) as refused:
        TrainConfig(**overrides)
    message = str(refused.value)
    assert message.startswith(field) and "\n" not in message


@pytest.mark.parametrize("d_norm", D_NORMS)
def test_wgan_needs_a_discriminator_without_batchnorm(d_norm):
    if d_norm == "batch":
        with pytest.raises(ConfigError, match="^loss='wgan'.*--d-norm"):
            TrainConfig(loss="wgan", d_norm=d_norm)
    else:
        assert TrainConfig(loss="wgan", d_norm=d_norm).loss == "wgan"


def test_the_residual_nets_need_no_normalisation_and_no_dcgan_options():
    assert TrainConfig(arch="resnet", d_norm="none", mbstd=True).mbstd
    for bad, needle in [({}, "--d-norm none"), ({"d_norm": "spectral"}, "--d-norm none"),
                        ({"d_norm": "none", "condition": "tone"}, "condition"),
                        ({"d_norm": "none", "extra_layers": 1}, "extra_layers"),
                        ({"d_norm": "none", "d_dropout": 0.3}, "d_dropout")]:
        with pytest.raises(ConfigError, match=f"^arch='resnet'.*{needle}"):
            TrainConfig(arch="resnet", **bad)
    with pytest.raises(ConfigError, match="^mbstd=True.*--arch resnet"):
        TrainConfig(mbstd=True)


@pytest.mark.parametrize("field", sorted(FLOAT_RULES))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400], ids=["nan", "inf", "-inf", "1e400"])
def test_non_finite_floats_are_refused_everywhere(field, value):
    # Random draws rarely hit these, and inf once passed the learning-rate check.
    with pytest.raises(ConfigError, match=f"^{field}"):
        TrainConfig(**{field: value})


@FAST
@given(overrides=st.fixed_dictionaries({}, optional=ANY_VALUES))
def test_any_mix_of_values_is_valid_or_refused_naming_a_bad_field(overrides):
    bad = {name for name, value in overrides.items() if not RULES[name](value)}
    try:
        cfg = TrainConfig(**overrides)
    except ConfigError as error:
        message = str(error)
        assert "\n" not in message
        assert re.match(r"\w+", message)[0] in bad, message  # messages open with the field
        return
    assert not bad, f"accepted invalid {bad}"
    assert all(rule(getattr(cfg, name)) for name, rule in RULES.items())


@pytest.fixture
def training_must_not_start(monkeypatch):
    import facegan.training.loop

    def refuse(*args, **kwargs):
        raise AssertionError("training started on an invalid config")
    monkeypatch.setattr(facegan.training.loop, "train", refuse)


@pytest.mark.parametrize("flag, value, field", [
    ("--lr-d", "nan", "lr_d"),
    ("--lr-g", "inf", "lr_g"),
    ("--beta1", "1", "beta1"),
    ("--real-target", "0.5", "real_target"), ("--label-smoothing", "0.5", "real_target"),
    ("--seed", "-1", "seed"),
    ("--device", "cuda:x", "device"),
    ("--compile", "fast", "compile"),
    ("--eval-n", "1", "eval_n"),
])
def test_cli_reports_invalid_values_in_one_line(tmp_path, capsys, training_must_not_start,
                                                flag, value, field):
    assert cli.main(["train", "--preset", "tiny", "--out", str(tmp_path), flag, value]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"facegan: error: {field}") and err.count("\n") == 1


@pytest.mark.parametrize("flag, value", [("--batch-size", "1.5"), ("--lr-d", "fast"), ("--seed", "")])
def test_cli_refuses_unparsable_values_before_building_a_config(tmp_path, capsys,
                                                                training_must_not_start, flag, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--preset", "tiny", "--out", str(tmp_path), flag, value])
    assert exit_.value.code == 2
    assert f"error: argument {flag}" in capsys.readouterr().err


# ---------------------------------------------------------------- images

MODES = ("L", "RGB", "RGBA", "P", "I;16", "CMYK")
JPEG_MODES = ("L", "RGB", "CMYK")  # what JPEG can store; PNG takes all but CMYK


@st.composite
def image_specs(draw):
    mode = draw(st.sampled_from(MODES))
    formats = ["PNG"] * (mode != "CMYK") + ["JPEG"] * (mode in JPEG_MODES)
    return dict(mode=mode, fmt=draw(st.sampled_from(formats)),
                width=draw(st.integers(1, 80)), height=draw(st.integers(1, 80)),
                seed=draw(st.integers(0, 2**32 - 1)))


def noise_image(mode, width, height, seed) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    if mode == "P":
        return rgb.quantize(colors=16)
    if mode == "RGBA":
        rgb.putalpha(Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)))
        return rgb
    return rgb.convert(mode)


def saved(image: Image.Image, folder: Path, fmt: str) -> Path:
    path = folder / ("x.jpg" if fmt == "JPEG" else "x.png")
    image.save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return path


@FAST
@given(spec=image_specs())
def test_any_small_image_decodes_to_the_training_shape(spec):
    with tempfile.TemporaryDirectory() as folder:
        image = noise_image(spec["mode"], spec["width"], spec["height"], spec["seed"])
        pixels = load_rgb(saved(image, Path(folder), spec["fmt"]), 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def expected_rgb(mode: str, colour) -> np.ndarray:
    """What a solid `colour` in `mode` should look like as 8-bit RGB, computed by hand."""
    if mode == "L":
        return np.array([colour] * 3)
    if mode == "I;16":
        return np.array([colour >> 8] * 3)
    if mode == "RGBA":
        alpha = colour[3] / 255
        return np.array(colour[:3]) * alpha + np.array(TRANSPARENT_BACKGROUND) * (1 - alpha)
    if mode == "CMYK":  # no colour profile: each ink and black scale the light multiplicatively
        return np.array([(255 - c) * (255 - colour[3]) / 255 for c in colour[:3]])
    return np.array(colour[:3])  # RGB, and P whose single palette entry is the colour


@st.composite
def solid_specs(draw):
    spec = draw(image_specs())
    channels = {"L": 1, "I;16": 1, "RGB": 3, "P": 3, "RGBA": 4, "CMYK": 4}[spec["mode"]]
    top = 65535 if spec["mode"] == "I;16" else 255
    values = draw(st.lists(st.integers(0, top), min_size=channels, max_size=channels))
    return {**spec, "colour": values[0] if channels == 1 else tuple(values)}


def solid_image(mode, width, height, colour) -> Image.Image:
    if mode == "P":
        image = Image.new("P", (width, height), 0)
        image.putpalette(list(colour))
        return image
    if mode == "I;16":
        return Image.fromarray(np.full((height, width), colour, np.uint16))
    return Image.new(mode, (width, height), colour)


@FAST
@given(spec=solid_specs())
def test_a_solid_colour_survives_any_mode_size_and_format(spec):
    image = solid_image(spec["mode"], spec["width"], spec["height"], spec["colour"])
    with tempfile.TemporaryDirectory() as folder:
        pixels = load_rgb(saved(image, Path(folder), spec["fmt"]), 32).astype(float)
    # Lossless PNG is off by rounding at most; JPEG's colour transform adds a little more.
    tolerance = 6 if spec["fmt"] == "JPEG" else 1
    assert np.abs(pixels - expected_rgb(spec["mode"], spec["colour"])).max() <= tolerance


def valid_bytes(fmt: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    noise_image("RGB", 24, 24, seed).save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def damaged_files(draw):
    """Random bytes, or a real JPEG/PNG truncated and with a few bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2000))
    data = bytearray(valid_bytes(draw(st.sampled_from(["JPEG", "PNG"])), draw(st.integers(0, 99))))
    del data[draw(st.integers(0, len(data)) | st.just(len(data))):]
    if data:
        anywhere = st.integers(0, len(data) - 1)
        in_headers = st.integers(0, min(len(data), 400) - 1)  # where a bad byte misleads the decoder most
        for _ in range(draw(st.integers(0, 4))):
            data[draw(in_headers | anywhere)] = draw(st.integers(0, 255))
    return bytes(data)


@FAST
@given(junk=damaged_files(), with_good_image=st.booleans())
def test_cache_skips_damaged_files_and_fails_only_when_nothing_decodes(junk, with_good_image):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "faces"
        folder.mkdir()
        (folder / "junk.jpg").write_bytes(junk)
        if with_good_image:
            (folder / "good.png").write_bytes(valid_bytes("PNG", 0))
        said = []
        try:
            images = cached_image_array(folder, 32, Path(tmp) / "cache", progress=False, log=said.append)
        except DataError as error:
            assert not with_good_image and "could be decoded" in str(error)
            return
        decoded = 1 + with_good_image - len(said)
        assert images.shape == (decoded, 32, 32, 3)
        assert said in ([], [f"skipped 1 unreadable image(s) of {1 + with_good_image} in {folder.resolve()}"])


# ---------------------------------------------------------------- every other subcommand's options

def whole_in(low, high):
    def allowed(text):
        try:
            return low <= int(text) <= high
        except ValueError:
            return False
    return allowed


def number_in(low, high):
    def allowed(text):
        try:
            value = float(text)
        except ValueError:
            return False
        return math.isfinite(value) and low <= value <= high
    return allowed


def seed_list_ok(text):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return bool(parts) and all(whole_in(0, 2**63 - 1)(p) for p in parts)


SEED_64 = whole_in(0, 2**63 - 1)
SAMPLE = ["sample", "--checkpoint", "c.pt", "--out", "g.png"]
WALK = ["interpolate", "--checkpoint", "c.pt", "--seeds", "1,2", "--out", "w"]
EVALUATE = ["evaluate", "--checkpoint", "c.pt", "--data-dir", "d"]
# (the command's required arguments, an option, the values it accepts), restated from --help.
OPTION_RULES = {
    "sweep --trials": (["sweep", "--out", "s"], "--trials", whole_in(1, 100_000)),
    "sweep --seed": (["sweep", "--out", "s"], "--seed", whole_in(0, 2**32 - 1)),
    "sample --n": (SAMPLE, "--n", whole_in(1, 100_000)),
    "sample --seed": (SAMPLE, "--seed", SEED_64),
    "sample --truncation": (SAMPLE, "--truncation", number_in(0.05, 1000)),
    "sample --nrow": (SAMPLE, "--nrow", whole_in(1, 100_000)),
    "sample --upscale": (SAMPLE, "--upscale", whole_in(1, 16)),
    "interpolate --seeds": (["interpolate", "--checkpoint", "c.pt", "--out", "w"], "--seeds", seed_list_ok),
    "interpolate --steps": (WALK, "--steps", whole_in(2, 1000)),
    "interpolate --frame-seconds": (WALK, "--frame-seconds", number_in(0.01, 60)),
    "interpolate --upscale": (WALK, "--upscale", whole_in(1, 16)),
    "interpolate --truncation": (WALK, "--truncation", number_in(0.05, 1000)),
    "serve --port": (["serve", "--checkpoint", "c.pt"], "--port", whole_in(0, 65535)),
    "audit --n": (["audit"], "--n", whole_in(1, 100_000)),
    "audit --seed": (["audit"], "--seed", SEED_64),
    "view --epoch": (["view", "run"], "--epoch", whole_in(-100_000, 100_000)),
    "evaluate --n": (EVALUATE, "--n", whole_in(2, 1_000_000)),
    "evaluate --seed": (EVALUATE, "--seed", whole_in(0, 2**32 - 2)),
    "evaluate --device": (EVALUATE, "--device", device_name),
    "synth --n": (["synth", "out"], "--n", whole_in(1, 100_000)),
    "synth --size": (["synth", "out"], "--size", whole_in(8, 1024)),
    "synth --seed": (["synth", "out"], "--seed", whole_in(0, 2**32 - 1)),
}
option_values = (st.text(max_size=12) | st.integers(-2**70, 2**70).map(str)
                 | st.floats(allow_nan=True, allow_infinity=True).map(str)
                 | st.sampled_from(["0", "1", "2", "-1", "8", "16", "17", "65535", "65536", "nan", "inf", "1e400",
                                    "0.05", "0.01", "60", str(2**63 - 1), str(2**63), "1,2,3", "1,,2", " 7 ",
                                    "cuda:0", "cuda:x", "cpu", "auto", "1_000"]))


def test_every_typed_option_of_every_command_is_in_the_table():
    from facegan.commands.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    typed = {f"{name} {action.option_strings[0]}" for name, parser in commands.items() if name != "train"
             for action in parser._actions
             if action.option_strings and action.type not in (None, str) and action.choices is None}
    assert typed == set(OPTION_RULES)


@pytest.mark.parametrize("rule", sorted(OPTION_RULES))
@settings(FAST, max_examples=30)
@given(value=option_values)
def test_each_option_is_accepted_exactly_when_documented_else_refused_in_one_line(rule, value):
    from contextlib import redirect_stderr

    from facegan.commands.cli import build_parser

    required, option, allowed = OPTION_RULES[rule]
    if value.startswith("-") and not whole_in(-10**100, 10**100)(value) and not number_in(-math.inf, math.inf)(value):
        value = " " + value  # argparse would take it for another option, not this one's value
    said = io.StringIO()
    try:
        with redirect_stderr(said):
            build_parser().parse_args([*required, option, value])
        accepted = True
    except SystemExit as refused:
        assert refused.code == 2
        accepted = False
    err = said.getvalue().strip()
    assert accepted == bool(allowed(value)), (rule, value, err)
    if not accepted:
        assert err.startswith(f"facegan: error: argument {option}") and "\n" not in err, err


def test_every_count_declares_a_generous_upper_bound():
    for name, f in FIELDS.items():
        check = f.metadata["check"]
        if f.type == "int":
            assert isinstance(check, Choice) or (isinstance(check, Range) and check.high is not None), name
