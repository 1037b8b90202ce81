"""Argument types for the command line: each refuses a bad value at parse time, in one line
naming the option and what it accepts (argparse prints `argument --x: ...`), so nothing out
of range reaches torch, PIL, numpy or the socket layer.

The train options are TrainConfig's and are validated there; these serve the other commands.
"""
from __future__ import annotations

import argparse
import math

SEED_MAX = 2**63 - 1  # torch seeds are 64-bit; a range of seeds seed..seed+n-1 must stay below this
MAX_FACES = 100_000   # faces one command draws: beyond this, memory, not patience, runs out


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
