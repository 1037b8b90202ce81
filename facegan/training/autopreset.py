"""--preset auto: the recipe that measured best at the images a time budget buys on this machine.

What a recipe reaches depends on how many images it sees: narrow nets win on a CPU, where
images are dear, and wide ones where they are cheap. The ledger of measurements
(bench/results/ledger.json) holds FID against images seen for each preset; `python -m
bench.ledger` writes those curves into recipe_fid.json beside this module. M minutes buy each
candidate its step rate, timed here for a few seconds, times 60 M images, and the preset whose
curve is lowest at its own images wins. Between measured points a curve is interpolated in
log images; past them it stays at the nearest point, so no preset is credited with a gain
nobody measured.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib.resources import files

import torch

from ..config import PRESETS, preset
from ..errors import ConfigError
from ..utils import accel

TABLE = "recipe_fid.json"
MEASURE_SECONDS = 3.0  # of steps per candidate, after two untimed ones
COST_FREE = ("lr_d", "lr_g", "name", "out")  # fields that change what a step learns, not what it costs
SAME_POINT = 1.15  # points within this ratio of images are one measurement, averaged by seeds


@dataclass(frozen=True)
class Candidate:
    preset: str
    images_per_s: float
    images: int  # what the budget buys at that rate
    fid: float  # the curve's value there
    where: str  # "measured" (within the curve), "most" or "fewest" (past its end: the nearest point's FID)

    def describe(self) -> str:
        past = "" if self.where == "measured" else f", as measured at its {self.where} images"
        return f"~{_count(self.images)} images with {self.preset} (FID ~{self.fid:.0f}{past})"


def load_table() -> dict:
    """The preset curves: {"image_size": 64, "recipes": {preset: [{"images", "fid", "seeds", "from"}, ...]}}."""
    return json.loads(files(__package__).joinpath(TABLE).read_text())


def curve(points: list[dict]) -> list[tuple[float, float]]:
    """(images, FID) in order of images, points close in images merged (FID averaged by seeds)."""
    merged: list[list[float]] = []  # [images, fid * seeds, seeds]
    for p in sorted(points, key=lambda p: p["images"]):
        if merged and p["images"] <= merged[-1][0] * SAME_POINT:
            last = merged[-1]
            last[0] = (last[0] * last[2] + p["images"] * p["seeds"]) / (last[2] + p["seeds"])
            last[1] += p["fid"] * p["seeds"]
            last[2] += p["seeds"]
        else:
            merged.append([p["images"], p["fid"] * p["seeds"], p["seeds"]])
    return [(images, fid_sum / seeds) for images, fid_sum, seeds in merged]


def fid_at(points: list[tuple[float, float]], images: float) -> tuple[float, str]:
    """The curve's FID at `images`, and where that came from: "measured" (between points),
    "most" (past the last point) or "fewest" (before the first)."""
    if images >= points[-1][0]:
        return points[-1][1], "measured" if images <= points[-1][0] * SAME_POINT else "most"
    if images <= points[0][0]:
        return points[0][1], "measured" if images * SAME_POINT >= points[0][0] else "fewest"
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= images <= x1:
            t = (math.log(images) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0), "measured"
    raise AssertionError("unreachable: the points are sorted")


def rank(rates: dict[str, float], minutes: float, table: dict) -> list[Candidate]:
    """The candidates by the FID their curve gives at the images `minutes` buy them, best first."""
    ranked = []
    for name, rate in rates.items():
        images = rate * 60 * minutes
        fid, where = fid_at(curve(table["recipes"][name]), images)
        ranked.append(Candidate(name, rate, round(images), fid, where))
    return sorted(ranked, key=lambda c: c.fid)


def candidates(overrides: dict, table: dict) -> dict[str, object]:
    """The presets with a curve that accept the user's other flags: name -> its TrainConfig."""
    size = overrides.get("image_size", table["image_size"])
    if size != table["image_size"]:
        raise ConfigError(f"--preset auto chooses among recipes measured at {table['image_size']} px; drop "
                          f"--image-size {size} or name a preset")
    configs = {}
    for name in table["recipes"]:
        if name not in PRESETS:
            continue
        try:
            configs[name] = preset(name, **overrides)
        except ConfigError:  # the user's flags rule this recipe out
            continue
    if not configs:
        raise ConfigError("--preset auto: no measured recipe accepts these flags; name a preset with --preset")
    return configs


def measure_rates(configs: dict, seconds: float = MEASURE_SECONDS) -> dict[str, float]:
    """Each config's training-step images/s on its device, one after the other; configs whose
    steps cost the same (they differ in learning rates alone) are timed once."""
    from .rates import noise_faces, step_rate

    rates, timed = {}, {}
    for name, cfg in configs.items():
        step = same_step(cfg)
        if step not in timed:
            device = accel.resolve_device(cfg.device)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                timed[step], _ = step_rate(cfg, noise_faces(2 * cfg.batch_size, cfg.image_size), device,
                                           seconds=seconds)
        rates[name] = timed[step]
    return rates


def same_step(cfg) -> str:
    """What a step's cost depends on: the config without its learning rates (and its names)."""
    return json.dumps({k: v for k, v in cfg.to_dict().items() if k not in COST_FREE}, sort_keys=True, default=str)


def choose_preset(overrides: dict, *, rates: dict[str, float] | None = None, table: dict | None = None,
                  log=print) -> str:
    """The preset `--preset auto` trains, for the budget overrides["minutes"] on this machine;
    `rates` (preset -> images/s) skips the timing. Says why in one line."""
    minutes = overrides.get("minutes") or 0
    if minutes <= 0:
        raise ConfigError("--preset auto picks the recipe that is best for a time budget; add --minutes M "
                          "(or name a preset)")
    table = load_table() if table is None else table
    configs = candidates(overrides, table)
    if rates is None:
        log(f"--preset auto: timing the steps of {', '.join(configs)} for {MEASURE_SECONDS:g} s each")
        rates = measure_rates(configs)
    ranked = rank({name: rates[name] for name in configs}, minutes, table)
    cfg = configs[ranked[0].preset]
    log(f"--preset auto: on {machine(cfg)}, {minutes:g} min buy "
        + ", ".join(c.describe() for c in ranked) + f" -> the {ranked[0].preset} recipe")
    return ranked[0].preset


def machine(cfg) -> str:
    device = accel.resolve_device(cfg.device)
    precision = "bf16" if accel.amp_enabled(device, cfg.amp) else "fp32"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, {precision}"
    return f"{torch.get_num_threads()} CPU cores, {precision}"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"
