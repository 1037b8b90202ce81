"""What the commands share: argument types, the help formatter and the seed-range check.

Each argument type refuses a bad value at parse time, in one line naming the option and what
it accepts (argparse prints `argument --x: ...`), so nothing out of range reaches torch, PIL,
numpy or the socket layer. The train options are TrainConfig's and are validated there; these
serve the other commands.
"""
from __future__ import annotations

import argparse
import math

from ..errors import ConfigError

SEED_MAX = 2**63 - 1  # torch seeds are 64-bit; a range of seeds seed..seed+n-1 must stay below this
MAX_FACES = 100_000   # faces one command draws: beyond this, memory, not patience, runs out
MAX_SEEDS = 10_000    # faces one walk passes through (its memory is estimated as well)


def whole(low: int, high: int):
    """A whole number in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one from {low} to {high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; give a whole number from {low} to {high}")
        return value
    parse.__name__ = "whole number"
    return parse


def number(low: float, high: float, what: str = "a number"):
    """A finite number in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what} from {low:g} to {high:g}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {what} from {low:g} to {high:g}")
        return value
    parse.__name__ = "number"
    return parse


def seed_list(text: str) -> list[int]:
    """Comma-separated seeds, e.g. 1,2,3."""
    parse = whole(0, SEED_MAX)
    try:
        seeds = [parse(part.strip()) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers from 0 to 2**63 - 1 separated by "
                                         f"commas, e.g. 1,2,3")
    if len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{len(seeds)} seeds: give at most {MAX_SEEDS}")
    return seeds


def device(text: str) -> str:
    from ..config import is_device_name  # the same rule TrainConfig's --device follows

    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"{text!r}: use auto, cpu, cuda or cuda:N")
    return text


# The options the commands share.
FACES = whole(1, MAX_FACES)
SEED = whole(0, SEED_MAX)
UPSCALE = whole(1, 16)
PORT = whole(0, 65535)  # 0: any free port
TRUNCATION = number(0.05, 1000.0, "a truncation")


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None: config flags default to None (meaning "not given"),
    and their help already names the TrainConfig default."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def seed_range(seed: int, n: int) -> list[int]:
    """Seeds seed..seed+n-1, refused when the last would pass what torch can seed."""
    if seed + n - 1 > SEED_MAX:
        raise ConfigError(f"--seed {seed} --n {n}: the last seed would pass {SEED_MAX} (2**63 - 1); "
                          f"choose a smaller --seed")
    return list(range(seed, seed + n))
