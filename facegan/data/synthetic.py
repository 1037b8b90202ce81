"""Procedural face portraits: the embedded default dataset, so everything runs offline.

Each image is a simplified, tightly cropped portrait (framed like the CelebA 64x64
crops) with varied skin tone, face shape, hair, eyes, brows, nose, mouth, glasses,
beard and background. Image i of a dataset is drawn from its own RNG seeded from
(seed, i), so it is the same whatever n is and however the work is split over
processes. Shapes are drawn with PIL at a multiple of the target size and reduced,
which anti-aliases them cheaply. Geometry is sampled in units of the image side, so
the same (seed, i) gives the same face at every size.
"""
from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..config import IMAGE_EXTENSIONS
from ..errors import DataError
from ..utils.atomic import atomic_open, atomic_write_text, make_folder

FACE_ATTRIBUTES = (
    "skin_tone",   # float in [0, 1]: 0 = lightest, 1 = darkest on the skin ramp
    "skin_rgb",    # (3,) uint8: the base skin colour the face was painted with
    "hair_color",  # str, one of HAIR_COLORS
    "hair_style",  # str, one of HAIR_STYLES
    "eye_color",   # str, one of EYE_COLORS
    "mouth",       # str, one of MOUTHS
    "beard",       # str, one of BEARDS
    "glasses",     # bool
    "face_box",    # (4,) float32 pixels: x0, y0 (hairline), x1, y1 (chin) of the face
    "cheek_box",   # (4,) float32 pixels: bare, evenly lit skin under the eyes
)

HAIR_COLORS = {
    "black": (28, 22, 20), "dark_brown": (62, 42, 30), "brown": (108, 72, 46),
    "auburn": (140, 62, 34), "red": (178, 86, 42), "blonde": (214, 180, 112),
    "grey": (146, 144, 140), "white": (226, 222, 214),
}
HAIR_STYLES = ("short", "long", "bob", "fringe", "volume", "bald")
EYE_COLORS = {
    "dark_brown": (52, 32, 22), "brown": (96, 60, 32), "hazel": (120, 100, 50),
    "green": (78, 118, 70), "blue": (70, 110, 160), "grey": (110, 120, 128),
}
MOUTHS = ("neutral", "smile", "grin", "open")
BEARDS = ("none", "stubble", "beard", "moustache")

# CIELAB (L*, a*, b*) anchors from very light to very dark skin. L* falls strictly, so
# luminance falls with the tone parameter; a*/b* follow measured skin (warmest mid-ramp).
_SKIN_RAMP_LAB = np.array([
    (80.0, 9.0, 15.0), (70.0, 12.0, 20.0), (60.0, 14.0, 24.0),
    (49.0, 15.0, 25.0), (37.0, 13.0, 20.0), (25.0, 9.0, 13.0),
])
_XYZ_TO_LINEAR_SRGB = np.array([
    [3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570],
])
_PARALLEL_MIN_N = 512


# ---------------------------------------------------------------- colour helpers

def _lab_to_srgb(lab) -> np.ndarray:
    """CIELAB (D65) to sRGB floats in [0, 255]."""
    L, a, b = lab
    fy = (L + 16.0) / 116.0
    f = np.array([fy + a / 500.0, fy, fy - b / 200.0])
    xyz = np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    xyz *= np.array([0.95047, 1.0, 1.08883])
    lin = np.clip(_XYZ_TO_LINEAR_SRGB @ xyz, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return srgb * 255.0


def skin_color(tone: float, undertone: float = 0.0) -> tuple[int, int, int]:
    """sRGB skin colour at `tone` on the ramp; `undertone` in [-1, 1] shifts a*/b* only.

    Undertone leaves L* alone, so luminance stays a function of tone alone.
    """
    pos = np.clip(tone, 0.0, 1.0) * (len(_SKIN_RAMP_LAB) - 1)
    lo = min(int(pos), len(_SKIN_RAMP_LAB) - 2)
    lab = _SKIN_RAMP_LAB[lo] + (pos - lo) * (_SKIN_RAMP_LAB[lo + 1] - _SKIN_RAMP_LAB[lo])
    lab = lab + np.array([0.0, 2.5 * undertone, -3.0 * undertone])
    return _rgb(_lab_to_srgb(lab))


def _rgb(color) -> tuple[int, int, int]:
    return tuple(int(min(max(float(c), 0.0), 255.0) + 0.5) for c in color)


def _scale(color, k: float) -> tuple[int, int, int]:
    return _rgb(np.asarray(color, float) * k)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return _rgb(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t)


def _jitter(color, rng, amount: float = 0.08) -> tuple[int, int, int]:
    return _rgb(np.asarray(color, float) * rng.uniform(1 - amount, 1 + amount, 3))


def _hsv_color(rng, sat=(0.05, 0.6), val=(0.25, 0.95)) -> tuple[int, int, int]:
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    rgb = np.clip(np.abs((h * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)
    return _rgb(255 * v * (1 - s + s * rgb))


# ---------------------------------------------------------------- sampling

def _choice(rng, options, weights):
    cumulative = np.cumsum(weights)
    return options[int(np.searchsorted(cumulative, rng.uniform(0, cumulative[-1]), side="right"))]


def _sample_hair_color(rng, tone: float) -> str:
    # Light hair is rarer on darker skin, as in portrait photo sets.
    light = 1.0 - 0.8 * tone
    names = list(HAIR_COLORS)
    weights = [3.0, 3.0, 2.5, light, 0.8 * light, 2.0 * light, 1.2, 0.6]
    return _choice(rng, names, weights)


def _sample_face(rng) -> dict:
    """Every random choice for one face, in units of the image side (0..1)."""
    tone = float(rng.uniform(0.0, 1.0))
    # One hidden masculine/feminine draw couples beard, hair, jaw and make-up the way
    # photos do, so the generator sees coherent modes instead of independent noise.
    masc = bool(rng.uniform() < 0.5)
    s = rng.uniform(0.88, 1.06)                    # overall head scale (zoom)
    eye_y = 0.44 + rng.uniform(-0.025, 0.025)
    p = dict(
        tone=tone, skin=skin_color(tone, rng.uniform(-1, 1)), s=s,
        cx=0.5 + rng.uniform(-0.03, 0.03), eye_y=eye_y,
        rx=s * rng.uniform(0.29, 0.36), skull_top=eye_y - 0.5 * s,
        chin_y=eye_y + s * rng.uniform(0.45, 0.51),
        jaw_square=rng.uniform(2.4, 3.2) if masc else rng.uniform(2.0, 2.6),
        chin_taper=rng.uniform(0.05, 0.25) if masc else rng.uniform(0.15, 0.35),
        light=rng.uniform(-1, 1, 2) * np.array([0.10, 0.05]),
    )
    p["hair_color"] = _sample_hair_color(rng, tone)
    # Mostly brightness jitter: per-channel jitter turns white hair pink.
    p["hair_rgb"] = _jitter(_scale(HAIR_COLORS[p["hair_color"]], rng.uniform(0.85, 1.1)), rng, 0.03)
    p["hair_style"] = _choice(rng, HAIR_STYLES, [5, 0.7, 0.3, 1.5, 1.2, 2] if masc
                              else [1.5, 5, 2.5, 1.5, 2, 0.15])
    p["hairline_y"] = eye_y - s * rng.uniform(0.20, 0.30)
    p["hair_thick"] = s * rng.uniform(0.04, 0.09)
    p["hair_part"] = rng.uniform(0.6, 1.6)         # warps the hairline: a side parting
    p["fringe_jag"] = rng.uniform(0.6, 1.2, 25)
    # Volume hair: curl count, curl phase, widening and heightening of the outline.
    p["curls"] = (int(rng.integers(9, 15)), rng.uniform(0, 6),
                  rng.uniform(1.1, 1.3), rng.uniform(1.05, 1.2))
    # Each strand: radius fraction, start angle / pi, length / pi, darker or lighter.
    p["strands"] = np.stack([rng.uniform(0.55, 0.95, 6), rng.uniform(1.05, 1.4, 6),
                             rng.uniform(0.2, 0.45, 6), rng.choice([0.75, 1.25], 6)], axis=1)
    p["eye_color"] = _choice(rng, list(EYE_COLORS), [4, 3, 1.2, 1, 1.2, 0.6])
    p["eye_dx"] = s * rng.uniform(0.115, 0.135)
    p["eye_w"] = s * (rng.uniform(0.046, 0.057) if masc else rng.uniform(0.05, 0.062))
    p["eye_h"] = p["eye_w"] * rng.uniform(0.45, 0.6)
    p["gaze"] = rng.uniform(-0.3, 0.3)
    p["brow_thick"] = s * (rng.uniform(0.016, 0.027) if masc else rng.uniform(0.009, 0.018))
    p["brow_tilt"] = s * rng.uniform(-0.012, 0.015)
    p["brow_gap"] = s * rng.uniform(0.045, 0.07)
    p["nose_w"] = s * rng.uniform(0.035, 0.055)
    p["nose_y"] = eye_y + s * rng.uniform(0.17, 0.21)
    p["mouth"] = _choice(rng, MOUTHS, [3, 3, 2, 1])
    p["mouth_y"] = eye_y + s * rng.uniform(0.28, 0.31)
    p["mouth_w"] = s * rng.uniform(0.07, 0.1)
    p["lip_rgb"] = _lip_color(rng, p["skin"], lipstick_odds=0.0 if masc else 0.3)
    p["beard"] = _choice(rng, BEARDS, [5, 2, 2.5, 0.8]) if masc else "none"
    p["glasses"] = bool(rng.uniform() < 0.15)
    p["glasses_rgb"] = _choice(rng, [(20, 20, 22), (70, 40, 25), (190, 160, 90), (120, 24, 30),
                                     (40, 50, 90)], [4, 2, 1.5, 1, 1])
    p["glasses_round"] = bool(rng.uniform() < 0.4)
    p["sunglasses"] = bool(rng.uniform() < 0.2)
    p["background"] = _sample_background(rng)
    p["shirt_rgb"] = _hsv_color(rng, sat=(0.0, 0.7), val=(0.15, 0.9))
    return p


def _lip_color(rng, skin, lipstick_odds: float) -> tuple[int, int, int]:
    if rng.uniform() < lipstick_odds:
        return _jitter(_choice(rng, [(170, 30, 45), (200, 80, 100), (120, 30, 50)], [1, 1, 1]), rng)
    natural = _mix(skin, (165, 70, 75), rng.uniform(0.3, 0.45))
    return _scale(natural, rng.uniform(0.82, 0.92))


def _sample_background(rng) -> dict:
    kind = _choice(rng, ("flat", "vertical", "horizontal"), [4, 3, 3])
    top = _hsv_color(rng)
    bottom = _mix(top, _hsv_color(rng), rng.uniform(0.3, 0.8))
    return dict(kind=kind, colors=(top, bottom))


# ---------------------------------------------------------------- geometry

def _face_outline(p, n: int = 56) -> np.ndarray:
    """(n, 2) polygon: skull half-ellipse on top, a squarer tapered jaw below."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(theta), np.sin(theta)
    lower = s > 0                                  # image y points down
    e = np.where(lower, p["jaw_square"], 2.0)
    ux = np.sign(c) * np.abs(c) ** (2 / e)
    uy = np.sign(s) * np.abs(s) ** (2 / e)
    taper = 1 - p["chin_taper"] * np.clip(uy, 0, None) ** 2
    ry = np.where(lower, p["chin_y"] - p["eye_y"], p["eye_y"] - p["skull_top"])
    return np.stack([p["cx"] + p["rx"] * ux * taper, p["eye_y"] + ry * uy], axis=1)


def _arc(cx, cy, rx, ry, a0, a1, n=24) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (radians, image y down)."""
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _hairline(p, x_left, x_right, temple_y, flat: float, jag: float) -> np.ndarray:
    """Forehead edge of the hair, right to left: an arch from temple to temple."""
    t = np.linspace(1, 0, 25)
    bump = np.sin(np.pi * t ** p["hair_part"]) ** flat
    x = x_left + (x_right - x_left) * t
    y = temple_y - (temple_y - p["hairline_y"]) * bump
    if jag:
        # Alternate points up and down: the ragged tips of a fringe.
        y = y + jag * bump * np.where(np.arange(len(t)) % 2, 1.0, -0.3) * p["fringe_jag"]
    return np.stack([x, y], axis=1)


# ---------------------------------------------------------------- drawing

class _Canvas:
    """An RGBA-blending ImageDraw that takes coordinates in units of the image side."""

    def __init__(self, image: Image.Image):
        self.px = image.width
        self.draw = ImageDraw.Draw(image, "RGBA")

    def pts(self, points) -> list[float]:
        return (np.asarray(points, float) * self.px).ravel().tolist()

    def box(self, cx, cy, rx, ry) -> list[float]:
        return [(cx - rx) * self.px, (cy - ry) * self.px, (cx + rx) * self.px, (cy + ry) * self.px]

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.px)))

    def polygon(self, points, fill):
        self.draw.polygon(self.pts(points), fill=fill)

    def ellipse(self, cx, cy, rx, ry, fill=None, outline=None, width=0.0):
        self.draw.ellipse(self.box(cx, cy, rx, ry), fill=fill, outline=outline,
                          width=self.width(width) if outline else 0)

    def line(self, points, fill, width):
        self.draw.line(self.pts(points), fill=fill, width=self.width(width), joint="curve")


def _background(p, px: int) -> Image.Image:
    bg = p["background"]
    top, bottom = (np.asarray(c, np.float32) for c in bg["colors"])
    if bg["kind"] == "flat":
        return Image.new("RGB", (px, px), _rgb(top))
    ramp = np.linspace(0.0, 1.0, px, dtype=np.float32)[:, None]
    strip = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)[:, None, :]
    pixels = np.broadcast_to(strip, (px, px, 3))
    if bg["kind"] == "horizontal":
        pixels = pixels.transpose(1, 0, 2)
    return Image.fromarray(np.ascontiguousarray(pixels))


def _draw_shoulders(cv: _Canvas, p):
    s = p["s"]
    cv.ellipse(p["cx"], p["chin_y"] + 0.3 * s, 0.48 * s, 0.26 * s, fill=p["shirt_rgb"])
    neck_w = 0.55 * p["rx"]
    cv.polygon([(p["cx"] - neck_w, p["nose_y"]), (p["cx"] + neck_w, p["nose_y"]),
                (p["cx"] + neck_w * 1.1, 1.2), (p["cx"] - neck_w * 1.1, 1.2)],
               fill=_scale(p["skin"], 0.78))


def _draw_back_hair(cv: _Canvas, p):
    style, hair, s, cx = p["hair_style"], p["hair_rgb"], p["s"], p["cx"]
    half_w = p["rx"] + p["hair_thick"] + s * 0.05
    top = p["skull_top"] - p["hair_thick"]
    if style in ("long", "bob"):
        bottom = p["chin_y"] + s * (0.35 if style == "long" else 0.02)
        box = [(cx - half_w) * cv.px, top * cv.px, (cx + half_w) * cv.px, bottom * cv.px]
        cv.draw.rounded_rectangle(box, radius=half_w * cv.px * 0.9, fill=hair)
    elif style == "volume":
        theta = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        # A lumpy outline reads as curls at any size.
        frequency, phase, widen, heighten = p["curls"]
        r = 1 + 0.05 * np.sin(theta * frequency + phase)
        rx, ry = half_w * widen, (p["eye_y"] - top) * heighten
        cy = p["eye_y"] - 0.05 * s
        cv.polygon(np.stack([cx + rx * r * np.cos(theta), cy + ry * r * np.sin(theta)], 1), hair)


def _draw_ears(cv: _Canvas, p):
    ear_rgb = _scale(p["skin"], 0.9)
    for side in (-1, 1):
        x = p["cx"] + side * p["rx"] * 0.97
        cv.ellipse(x, p["eye_y"] + 0.08 * p["s"], 0.035 * p["s"], 0.085 * p["s"], fill=ear_rgb)


def _draw_face_shape(cv: _Canvas, p) -> np.ndarray:
    outline = _face_outline(p)
    cv.polygon(outline, p["skin"])
    return outline


def _draw_eyes(cv: _Canvas, p):
    s, skin = p["s"], p["skin"]
    ew, eh = p["eye_w"], p["eye_h"]
    iris_rgb = EYE_COLORS[p["eye_color"]]
    sclera = _mix((238, 234, 228), skin, 0.15)
    lid = _mix(skin, (20, 12, 10), 0.75)
    for side in (-1, 1):
        x, y = p["cx"] + side * p["eye_dx"], p["eye_y"]
        # A darker socket gives the eye depth before the white is painted over it.
        cv.ellipse(x, y - 0.2 * eh, ew * 1.35, eh * 1.9, fill=(*_scale(skin, 0.8), 70))
        cv.ellipse(x, y, ew, eh, fill=sclera)
        ix = x + p["gaze"] * ew * 0.5
        cv.ellipse(ix, y, eh * 0.95, eh * 0.95, fill=iris_rgb)
        cv.ellipse(ix, y, eh * 0.45, eh * 0.45, fill=(12, 8, 8))
        cv.ellipse(ix - eh * 0.3, y - eh * 0.3, eh * 0.18, eh * 0.18, fill=(255, 255, 255, 200))
        upper = _arc(x, y + eh * 0.15, ew * 1.05, eh * 1.2, np.pi * 1.05, np.pi * 1.95, 12)
        cv.line(upper, lid, 0.011 * s)


def _draw_brows(cv: _Canvas, p):
    hair = p["hair_rgb"]
    color = _mix(hair, (40, 30, 25), 0.35) if p["hair_color"] != "black" else hair
    if p["hair_color"] in ("grey", "white"):
        color = _scale(hair, 0.75)
    t = np.linspace(0, 1, 9)
    for side in (-1, 1):
        inner = p["cx"] + side * (p["eye_dx"] - p["eye_w"] * 0.95)
        outer = p["cx"] + side * (p["eye_dx"] + p["eye_w"] * 1.25)
        base_y = p["eye_y"] - p["brow_gap"]
        x = inner + (outer - inner) * t
        y = base_y - p["brow_tilt"] * (t - 0.5) - 0.012 * p["s"] * np.sin(np.pi * t ** 0.8)
        thick = p["brow_thick"] * (1.0 - 0.55 * t)    # tapers toward the temple
        top = np.stack([x, y - thick / 2], 1)
        bottom = np.stack([x, y + thick / 2], 1)[::-1]
        cv.polygon(np.concatenate([top, bottom]), color)


def _draw_nose(cv: _Canvas, p):
    s, skin, cx, ny, nw = p["s"], p["skin"], p["cx"], p["nose_y"], p["nose_w"]
    shadow = (*_scale(skin, 0.7), 150)
    side = 1 if p["light"][0] <= 0 else -1         # the nose shades the side away from light
    cv.line([(cx + side * 0.02 * s, p["eye_y"] + 0.07 * s), (cx + side * nw * 0.8, ny - 0.025 * s)],
            (*shadow[:3], 90), 0.012 * s)
    cv.ellipse(cx, ny - 0.005 * s, nw * 0.9, 0.022 * s, fill=(*_scale(skin, 1.08), 90))
    tip = _arc(cx, ny - 0.012 * s, nw, 0.022 * s, np.pi * 0.15, np.pi * 0.85, 10)
    cv.line(tip, shadow, 0.01 * s)
    for k in (-1, 1):
        cv.ellipse(cx + k * nw * 0.45, ny + 0.002 * s, 0.011 * s, 0.006 * s, fill=_scale(skin, 0.45))


def _mouth_line(p, curve: float, n: int = 11) -> np.ndarray:
    """The parting of the lips, corner to corner; curve > 0 lifts the corners (a smile)."""
    t = np.linspace(-1, 1, n)
    x = p["cx"] + p["mouth_w"] * t
    y = p["mouth_y"] - curve * p["s"] * (t ** 2 - 0.3)
    return np.stack([x, y], 1)


def _lowered(line: np.ndarray, depth) -> np.ndarray:
    """`line` pushed down by `depth` in the middle, not at all at the corners."""
    profile = np.sin(np.linspace(0, np.pi, len(line)))
    return line + np.stack([np.zeros_like(profile), depth * profile], axis=1)


def _draw_mouth(cv: _Canvas, p):
    s, lip, kind, cx, my, mw = p["s"], p["lip_rgb"], p["mouth"], p["cx"], p["mouth_y"], p["mouth_w"]
    if kind == "open":
        cv.ellipse(cx, my, mw * 0.6, 0.035 * s, fill=lip)
        cv.ellipse(cx, my, mw * 0.45, 0.022 * s, fill=(60, 18, 22))
        return
    line = _mouth_line(p, {"neutral": 0.004, "smile": 0.03, "grin": 0.035}[kind])
    cv.polygon(np.concatenate([line, _lowered(line, 0.028 * s)[::-1]]), lip)
    cupids_bow_dip = 0.006 * s * np.exp(-(np.linspace(-1, 1, len(line)) / 0.2) ** 2)
    upper = _lowered(line, -0.018 * s) + np.stack([np.zeros(len(line)), cupids_bow_dip], axis=1)
    cv.polygon(np.concatenate([line, upper[::-1]]), _scale(lip, 0.88))
    if kind == "grin":
        cv.polygon(np.concatenate([line, _lowered(line, 0.016 * s)[::-1]]), (70, 22, 26))
        cv.polygon(np.concatenate([line, _lowered(line, 0.009 * s)[::-1]]), (236, 232, 222))
    cv.line(line, _scale(lip, 0.5), 0.008 * s)


def _draw_beard(cv: _Canvas, p, outline: np.ndarray):
    kind, s, hair = p["beard"], p["s"], p["hair_rgb"]
    cx, mw, my, ny = p["cx"], p["mouth_w"], p["mouth_y"], p["nose_y"]
    if kind == "none":
        return
    over_lip = [(cx + mw * 1.15, my + 0.01 * s), (cx + mw * 0.8, ny + 0.028 * s),
                (cx, ny + 0.02 * s), (cx - mw * 0.8, ny + 0.028 * s), (cx - mw * 1.15, my + 0.01 * s)]
    if kind == "moustache":
        lip_top = _mouth_line(p, 0.0)[::-1] - [0, 0.012 * s]
        cv.polygon(np.concatenate([over_lip, lip_top]), hair)
        return
    if kind == "beard":
        cv.polygon(_beard_shape(p, outline, over_lip, p["eye_y"] + 0.07 * s), hair)
        return
    # Stacked faint layers, each starting lower, fade stubble in instead of a hard edge.
    for lift in (0.10, 0.13, 0.16):
        cv.polygon(_beard_shape(p, outline, over_lip, p["eye_y"] + lift * s), (*hair, 24))


def _beard_shape(p, outline: np.ndarray, over_lip, top_y: float) -> np.ndarray:
    """Jaw below top_y, closed by an edge from the sideburns down the cheeks to the lip."""
    s, cx = p["s"], p["cx"]
    jaw = outline[outline[:, 1] >= top_y]
    jaw = jaw[np.argsort(-np.arctan2(jaw[:, 1] - p["eye_y"], jaw[:, 0] - cx))]  # left side first
    right_x, left_x = jaw[-1, 0], jaw[0, 0]
    cheek_y = max(p["nose_y"] + 0.01 * s, top_y)
    return np.concatenate([
        jaw, [(right_x - 0.03 * s, top_y), (cx + p["rx"] * 0.62, cheek_y)], over_lip,
        [(cx - p["rx"] * 0.62, cheek_y), (left_x + 0.03 * s, top_y)],
    ])


def _draw_front_hair(cv: _Canvas, p):
    style = p["hair_style"]
    if style == "bald":
        return
    s, cx, ey, rx = p["s"], p["cx"], p["eye_y"], p["rx"]
    out_rx = rx + p["hair_thick"] * (1.6 if style == "volume" else 1.0)
    out_ry = ey - p["skull_top"] + p["hair_thick"]
    side_bottom = ey + s * (0.14 if style in ("long", "bob") else 0.03)
    temple_y = ey - 0.08 * s
    flat, jag = (0.35, 0.02 * s) if style == "fringe" else (1.0, 0.0)
    if style == "fringe":
        p = dict(p, hairline_y=ey - p["brow_gap"] - 0.03 * s)
    inner_in = rx * 0.86
    if style in ("long", "bob"):
        crown = _arc(cx, ey, out_rx, out_ry, np.pi, 2 * np.pi, 28)
        outer = np.concatenate([[(cx - out_rx, side_bottom)], crown, [(cx + out_rx, side_bottom)]])
    else:
        # Stopping the outer edge above the eyes tapers the sides into sideburns
        # instead of a helmet's flat rim.
        lift = np.arcsin(0.05 * s / out_ry)
        outer = _arc(cx, ey, out_rx, out_ry, np.pi + lift, 2 * np.pi - lift, 28)
    shape = np.concatenate([
        outer, [(cx + rx * 0.96, side_bottom), (cx + inner_in, temple_y)],
        _hairline(p, cx - inner_in, cx + inner_in, temple_y, flat, jag),
        [(cx - inner_in, temple_y), (cx - rx * 0.96, side_bottom)],
    ])
    cv.polygon(shape, p["hair_rgb"])
    _draw_hair_strands(cv, p, out_rx, out_ry)


def _draw_hair_strands(cv: _Canvas, p, out_rx, out_ry):
    # A few darker and lighter arcs over the crown keep the hair from reading as a flat hat.
    for k, start, length, shade in p["strands"]:
        arc = _arc(p["cx"], p["eye_y"], out_rx * k, out_ry * k,
                   start * np.pi, (start + length) * np.pi, 8)
        cv.line(arc, (*_scale(p["hair_rgb"], shade), 90), 0.01 * p["s"])


def _draw_glasses(cv: _Canvas, p):
    if not p["glasses"]:
        return
    s, frame = p["s"], p["glasses_rgb"]
    lw, lh = p["eye_w"] * 1.55, p["eye_w"] * 1.2
    width, y = 0.012 * s, p["eye_y"] + 0.01 * s
    tint = (25, 25, 30, 235) if p["sunglasses"] else (255, 255, 255, 25)
    for side in (-1, 1):
        x = p["cx"] + side * p["eye_dx"]
        if p["glasses_round"]:
            cv.ellipse(x, y, lw, lh, fill=tint, outline=frame, width=width)
        else:
            cv.draw.rounded_rectangle(cv.box(x, y, lw, lh), radius=lh * cv.px * 0.5, fill=tint,
                                      outline=frame, width=cv.width(width))
        cv.line([(x + side * lw, y - lh * 0.5), (p["cx"] + side * p["rx"], y - lh * 0.6)], frame, width)
    bridge = _arc(p["cx"], y, p["eye_dx"] - lw, lh * 0.5, np.pi * 1.1, np.pi * 1.9, 6)
    cv.line(bridge, frame, width)


@lru_cache(maxsize=8)
def _pixel_centres(size: int) -> np.ndarray:
    return (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size


def _shade(image: np.ndarray, p, face_mask: np.ndarray) -> np.ndarray:
    """Soft light across the face: a linear gradient plus darkening toward the rim.

    Both terms are ~0 over the cheeks, so the painted skin colour survives there.
    """
    yy, xx = _pixel_centres(image.shape[0])
    dx = (xx - p["cx"]) / p["rx"]
    dy = (yy - (p["eye_y"] + 0.13 * p["s"])) / (p["chin_y"] - p["eye_y"])
    rim = np.clip(dx * dx + dy * dy - 0.45, 0, None) ** 1.5
    gain = 1 + face_mask * (p["light"][0] * dx + p["light"][1] * dy - 0.22 * rim)
    return np.clip(image * gain[..., None], 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- public API

def _supersample(size: int) -> int:
    # ~256 px of drawing resolution is enough detail; more only costs time.
    return int(np.clip(256 // size, 2, 4))


def _render(p, size: int) -> np.ndarray:
    px = size * _supersample(size)
    image = _background(p, px)
    cv = _Canvas(image)
    _draw_back_hair(cv, p)
    _draw_shoulders(cv, p)
    _draw_ears(cv, p)
    outline = _draw_face_shape(cv, p)
    mask = Image.new("L", (px, px), 0)
    ImageDraw.Draw(mask).polygon(cv.pts(outline), fill=255)
    _draw_eyes(cv, p)
    _draw_brows(cv, p)
    _draw_nose(cv, p)
    _draw_beard(cv, p, outline)
    _draw_mouth(cv, p)
    _draw_front_hair(cv, p)
    _draw_glasses(cv, p)
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    face_mask = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255
    return _shade(small, p, face_mask)


def _attributes(p, size: int) -> dict:
    s = p["s"]
    face_box = (p["cx"] - p["rx"], p["hairline_y"], p["cx"] + p["rx"], p["chin_y"])
    # Below the eye sockets and glasses, above nostrils, moustache and beard line.
    cheek_box = (p["cx"] - 0.15 * s, p["eye_y"] + 0.10 * s, p["cx"] + 0.15 * s, p["eye_y"] + 0.15 * s)
    return dict(
        skin_tone=p["tone"], skin_rgb=p["skin"], hair_color=p["hair_color"],
        hair_style=p["hair_style"], eye_color=p["eye_color"], mouth=p["mouth"],
        beard=p["beard"], glasses=p["glasses"],
        face_box=tuple(float(v) * size for v in face_box),
        cheek_box=tuple(float(v) * size for v in cheek_box),
    )


def _check_size(size: int):
    if not 8 <= size <= 1024:
        raise ValueError(f"size must be between 8 and 1024 pixels, got {size}")


def draw_face(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, dict]:
    """One (size, size, 3) uint8 face and its attributes (see FACE_ATTRIBUTES)."""
    _check_size(size)
    p = _sample_face(rng)
    return _render(p, size), _attributes(p, size)


def face_rng(seed: int, index: int) -> np.random.Generator:
    """The RNG that draws image `index` of the dataset with `seed`."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


def _draw_range(start: int, stop: int, size: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    images = np.empty((stop - start, size, size, 3), np.uint8)
    attributes = []
    for k, index in enumerate(range(start, stop)):
        images[k], attrs = draw_face(face_rng(seed, index), size)
        attributes.append(attrs)
    return images, attributes


_ATTRIBUTE_DTYPES = {"skin_tone": np.float64, "skin_rgb": np.uint8, "glasses": bool,
                     "face_box": np.float32, "cheek_box": np.float32}
_ATTRIBUTE_COLUMNS = {"skin_rgb": ("r", "g", "b"), "face_box": ("x0", "y0", "x1", "y1"),
                      "cheek_box": ("x0", "y0", "x1", "y1")}


def _stack_attributes(attributes: list[dict]) -> dict[str, np.ndarray]:
    stacked = {}
    for name in FACE_ATTRIBUTES:
        values = np.array([a[name] for a in attributes], dtype=_ATTRIBUTE_DTYPES.get(name, str))
        # Reshaping keeps vector attributes 2-D even when n == 0.
        width = len(_ATTRIBUTE_COLUMNS.get(name, ()))
        stacked[name] = values.reshape(len(attributes), width) if width else values
    return stacked


def _available_cpus() -> int:
    # The CPUs this process may run on, which under taskset or a container can be
    # fewer than os.cpu_count(); more workers than that only adds overhead.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_faces(n: int, size: int = 64, seed: int = 0,
               workers: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """n faces as a (n, size, size, 3) uint8 array plus per-image attribute arrays.

    Large batches are split over processes; the result is identical for any `workers`.
    """
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be non-negative, got n={n}, seed={seed}")
    _check_size(size)
    workers = _available_cpus() if workers is None else workers
    if n < _PARALLEL_MIN_N or workers <= 1:
        images, attributes = _draw_range(0, n, size, seed)
        return images, _stack_attributes(attributes)
    # A few chunks per worker balance the load without much pickling overhead.
    bounds = np.linspace(0, n, workers * 4 + 1).astype(int).tolist()
    images = np.empty((n, size, size, 3), np.uint8)
    attributes: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {start: pool.submit(_draw_range, start, stop, size, seed)
                   for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start}
        for start, future in futures.items():
            chunk, chunk_attributes = future.result()
            images[start:start + len(chunk)] = chunk
            attributes.extend(chunk_attributes)
    return images, _stack_attributes(attributes)


ATTRIBUTES_NAME = "attributes.csv"
# The files synth wrote into a folder, one name a line: only those may be rewritten or removed.
MANIFEST_NAME = ".facegan-synth"
MANIFEST_HEADER = "# written by `facegan synth`: it rewrites or removes only the files named below"


def write_face_folder(out_dir: str | Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """Write n faces as 000000.png... plus attributes.csv, each file replaced atomically.
    A folder holding images (or an attributes.csv) that synth did not write is refused, untouched."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"synth {out_dir}: it is a file, not a folder; give a new or empty folder")
    ours = _synth_files(out_dir) if out_dir.is_dir() else set()
    make_folder(out_dir)
    images, attributes = make_faces(n, size, seed)
    names = [f"{index:06d}.png" for index in range(n)]
    # Named before written, so a folder cut short by a kill is still known to be synth's own.
    _write_manifest(out_dir, ours | {*names, ATTRIBUTES_NAME})
    # A smaller rewrite must not leave old faces behind for folder loaders to pick up.
    for name in sorted(ours - set(names) - {ATTRIBUTES_NAME}):
        (out_dir / name).unlink(missing_ok=True)
    for name, image in zip(names, images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        with atomic_open(out_dir / name, "wb") as f:
            f.write(buffer.getvalue())
    with atomic_open(out_dir / ATTRIBUTES_NAME, "w") as f:
        _write_attributes_csv(f, attributes, n)
    _write_manifest(out_dir, {*names, ATTRIBUTES_NAME})
    return out_dir


def _write_manifest(out_dir: Path, names: set[str]) -> None:
    atomic_write_text(out_dir / MANIFEST_NAME, "\n".join([MANIFEST_HEADER, *sorted(names)]) + "\n")


def _synth_files(out_dir: Path) -> set[str]:
    """The files of out_dir synth may replace; refuses a folder with images it did not write."""
    present = {p.name for p in out_dir.iterdir()
               if p.name == ATTRIBUTES_NAME or p.suffix.lower() in IMAGE_EXTENSIONS}
    ours = _manifest(out_dir)
    if ours is None:
        ours = _legacy_synth_files(out_dir, present)
    foreign = sorted(present - ours)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise DataError(f"synth {out_dir}: the folder holds files synth did not write ({foreign[0]}{more}); "
                        f"they were left untouched: give a new or empty folder")
    return ours


def _manifest(out_dir: Path) -> set[str] | None:
    path = out_dir / MANIFEST_NAME
    if not path.is_file() or path.is_symlink():
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != MANIFEST_HEADER:
        return None
    return {line for line in lines[1:] if line and "/" not in line and line not in (".", "..")}


def _legacy_synth_files(out_dir: Path, present: set[str]) -> set[str]:
    """A folder from a synth without the manifest: its attributes.csv, in synth's columns, names
    exactly the images there. Anything else is not recognised (an empty set)."""
    if ATTRIBUTES_NAME not in present:
        return set()
    try:
        with open(out_dir / ATTRIBUTES_NAME, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return set()
    header = next(csv.reader(io.StringIO(_attributes_header())))
    if not rows or rows[0] != header:
        return set()
    listed = {row[0] for row in rows[1:] if row}
    images = present - {ATTRIBUTES_NAME}
    return {*listed, ATTRIBUTES_NAME} if listed == images else set()


def _attributes_header() -> str:
    columns = ["file"]
    for name in FACE_ATTRIBUTES:
        suffixes = _ATTRIBUTE_COLUMNS.get(name)
        columns += [f"{name}_{suffix}" for suffix in suffixes] if suffixes else [name]
    return ",".join(columns)


def _write_attributes_csv(f, attributes: dict[str, np.ndarray], n: int):
    columns = {"file": [f"{i:06d}.png" for i in range(n)]}
    for name in FACE_ATTRIBUTES:
        values = attributes[name]
        if values.ndim == 1:
            columns[name] = values.tolist()
        else:
            for j, suffix in enumerate(_ATTRIBUTE_COLUMNS[name]):
                columns[f"{name}_{suffix}"] = values[:, j].tolist()
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values()))
