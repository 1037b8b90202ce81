"""Skin-tone audit (issue 10): does the generator reproduce, or narrow, the data's range of skin tones?

A GAN can drop rare modes, and darker skin is rare in CelebA, so a sharp FID can hide a
generator that whitens faces. This module puts every face on the Individual Typology
Angle (ITA) scale dermatology uses, ITA = arctan((L* - 50) / b*) in degrees from CIELAB,
bins it into the six standard categories and compares the category shares of real and
generated faces by total variation distance (0: same shares, 1: no overlap).

The estimate only sees pixels: a fixed central box of a tight face crop (below the eyes,
above the mouth: cheeks and nose), robust to the stray hair, glasses, beard or shadow
that falls inside it. It is validated on the synthetic faces, whose painted skin tone
is known (tests/test_audit.py). ITA from a photo mixes skin with lighting and camera,
so read the shares as a comparison of two sets under the same estimator, not as a
measurement of anyone's skin.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .config import TONE_CATEGORIES
from .io import atomic_write_text
from .plots import save_figure

CATEGORIES = TONE_CATEGORIES
# Lower bounds of the first five categories (degrees), lightest first. A value exactly on
# a bound goes to the darker side: 55 is "light", -30 is "dark".
ITA_THRESHOLDS = (55.0, 41.0, 28.0, 10.0, -30.0)
UNIFORM = np.full(len(CATEGORIES), 1 / len(CATEGORIES))
UNIFORM.setflags(write=False)

# The skin box as fractions (x0, y0, x1, y1) of a tight face crop: the cheeks and nose
# between the eyes (40-47% down, in the course's CelebA crops and the synthetic faces
# alike) and the mouth (70-75%). Its top stays below glasses (lenses end by ~52%) and
# the shadowed hollow under the eyes (a box from 52% down puts CelebA's median ITA 8
# degrees lower); lower, it would meet nostrils, moustaches and open mouths. Hair, beards
# and background lie outside it on the sides. Sunglasses reaching the cheeks leak in.
SKIN_BOX = (0.32, 0.55, 0.68, 0.65)
# L* outside this is shadow, black hair or a specular highlight, not skin colour.
SKIN_L_RANGE = (8.0, 97.0)
# A pixel further than this many typical deviations (CIELAB distance) from the box's
# median colour is something else (a nostril, a moustache, a glasses frame): dropped.
OUTLIER_SPREADS = 2.5
# ... but never closer than this (delta E): on a flat patch the typical deviation is ~0.
MIN_OUTLIER_DELTA_E = 4.0

# Skin of any tone keeps some colour (CIELAB chroma) even in shadow; sunglasses, a black
# mask or a deep shadow are dark and grey. A face whose skin box is mostly that (over
# OCCLUDED_SHARE of its pixels) is flagged as occluded: its ITA reads "dark" whatever the
# skin. On the held-out CelebA faces this flags 33 of 2,000, nearly all of them sunglasses.
OCCLUDER_L_MAX, OCCLUDER_CHROMA_MAX, OCCLUDED_SHARE = 30.0, 8.0, 0.25

_SRGB_TO_XYZ = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
])
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_FROM_LINEAR = (_SRGB_TO_XYZ / _D65_WHITE[:, None]).T  # row vectors: xyz = rgb @ this, white-normalised


# ---------------------------------------------------------------- colour

def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB in 0..255 (uint8 or float, shape (..., 3)) -> CIELAB (D65, 2 degree observer), float64."""
    return _lab(np.asarray(rgb, dtype=np.float64) / 255.0, np, _XYZ_FROM_LINEAR)


def _lab(c, xp, xyz_from_linear):
    """sRGB in 0..1 -> CIELAB with the array module xp (numpy, or torch for gradients).

    Each power takes its argument clipped to where its branch applies, so the branch that
    `where` discards never produces a NaN gradient."""
    linear = xp.where(c <= 0.04045, c / 12.92, ((xp.clip(c, 0.04045, None) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ xyz_from_linear
    eps = (6 / 29) ** 3
    f = xp.where(xyz > eps, xp.clip(xyz, eps, None) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return xp.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ita_degrees(L, b) -> np.ndarray:
    """Individual Typology Angle arctan((L* - 50) / b*) in degrees, in [-90, 90].

    Computed as arctan2(L* - 50, b*), which is the same angle wherever b* > 0 (all skin),
    then clipped to +-90: at b* <= 0 (grey or bluish, not skin) the plain formula flips
    sign, calling a light grey "dark", while this saturates by lightness instead:
    L* > 50 reads 90 ("very light"), L* < 50 reads -90 ("dark").
    """
    angle = np.degrees(np.arctan2(np.asarray(L, np.float64) - 50.0, np.asarray(b, np.float64)))
    return np.clip(angle, -90.0, 90.0)


# ---------------------------------------------------------------- estimation

def _box_slices(height: int, width: int, box=SKIN_BOX) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    r0, c0 = round(y0 * height), round(x0 * width)
    # At least one pixel each way, so even a tiny image has a region.
    r1, c1 = max(r0 + 1, round(y1 * height)), max(c0 + 1, round(x1 * width))
    return slice(r0, r1), slice(c0, c1)


def _batch(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images have shape {images.shape}; expected a batch (N, H, W, 3) of RGB "
                         f"faces (use images[None] for one)")
    return images


def skin_region(images: np.ndarray, box=SKIN_BOX) -> np.ndarray:
    """The skin box of each face in a (N, H, W, 3) batch: (N, h, w, 3), a view."""
    images = _batch(images)
    rows, cols = _box_slices(*images.shape[1:3], box)
    return images[:, rows, cols, :]


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over the last axis of the entries where mask is True; each row needs one."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=-1)
    k = mask.sum(axis=-1, keepdims=True)
    lo = np.take_along_axis(ordered, (k - 1) // 2, axis=-1)
    hi = np.take_along_axis(ordered, k // 2, axis=-1)
    return ((lo + hi) / 2)[..., 0]


def skin_lab(images: np.ndarray, box=SKIN_BOX) -> np.ndarray:
    """(N, 3) robust skin colour (median L*, a*, b*) of each (N, H, W, 3) uint8 face."""
    region = skin_region(images, box)
    lab = srgb_to_lab(region.reshape(len(region), -1, 3))                  # (N, P, 3)
    L = lab[..., 0]
    plausible = (L > SKIN_L_RANGE[0]) & (L < SKIN_L_RANGE[1])
    # A face with no plausible pixel (a black or blown-out image) falls back to all of them.
    plausible |= ~plausible.any(axis=1, keepdims=True)
    centre = np.stack([_masked_median(lab[..., i], plausible) for i in range(3)], axis=-1)
    distance = np.linalg.norm(lab - centre[:, None, :], axis=-1)
    spread = _masked_median(distance, plausible)
    limit = np.maximum(OUTLIER_SPREADS * spread, MIN_OUTLIER_DELTA_E)
    skin = plausible & (distance <= limit[:, None])
    skin |= plausible & ~skin.any(axis=1, keepdims=True)
    return np.stack([_masked_median(lab[..., i], skin) for i in range(3)], axis=-1)


def occluded(images: np.ndarray, box=SKIN_BOX) -> np.ndarray:
    """(N,) bool: the skin box is mostly dark and grey (sunglasses, deep shadow), not skin."""
    lab = srgb_to_lab(skin_region(images, box).reshape(len(images), -1, 3))
    grey_dark = (lab[..., 0] < OCCLUDER_L_MAX) & (np.hypot(lab[..., 1], lab[..., 2]) < OCCLUDER_CHROMA_MAX)
    return grey_dark.mean(axis=1) > OCCLUDED_SHARE


def image_ita(images: np.ndarray, box=SKIN_BOX, chunk: int = 4096) -> np.ndarray:
    """(N,) ITA in degrees of each (N, H, W, 3) uint8 face (tight crop, eyes ~45% down)."""
    images = _batch(images)
    # Chunks bound the float64 working set for a memory-mapped dataset of any size.
    parts = [skin_lab(images[i:i + chunk], box) for i in range(0, len(images), chunk)]
    lab = np.concatenate(parts) if parts else np.empty((0, 3))
    return ita_degrees(lab[:, 0], lab[:, 2])


def soft_ita(images):
    """(N,) ITA in degrees of a torch batch (N, 3, H, W) in [-1, 1], differentiable.

    The training-time twin of `image_ita`: the mean L* and b* over the same skin box, as
    the robust median has no useful gradient. Stray hair in the box pulls it a little,
    the same way for real and generated faces, which is all a comparison of the two needs.
    """
    import torch  # only training needs gradients; the audit itself stays numpy

    rows, cols = _box_slices(*images.shape[-2:])
    rgb = ((images[:, :, rows, cols].float() + 1) / 2).clamp(0, 1).movedim(1, -1)
    lab = _lab(rgb, torch, torch.as_tensor(_XYZ_FROM_LINEAR, dtype=rgb.dtype, device=rgb.device))
    L, b = lab[..., 0].mean(dim=(1, 2)), lab[..., 2].mean(dim=(1, 2))
    return torch.rad2deg(torch.atan2(L - 50, b))


# ---------------------------------------------------------------- categories and distances

def categorize(ita) -> np.ndarray:
    """Category index (into CATEGORIES) of each ITA: how many thresholds it does not exceed."""
    ita = np.asarray(ita, np.float64)
    return (ita[..., None] <= np.asarray(ITA_THRESHOLDS)).sum(axis=-1)


def category_counts(ita) -> np.ndarray:
    return np.bincount(categorize(ita).ravel(), minlength=len(CATEGORIES))


def shares(ita) -> np.ndarray:
    """Fraction of the faces in each category (sums to 1)."""
    counts = category_counts(ita)
    if counts.sum() == 0:
        raise ValueError("no faces to take shares of: the image set is empty")
    return counts / counts.sum()


def total_variation(p, q) -> float:
    """Total variation distance 0.5 * sum|p - q|: the share of faces that would have to
    change category to turn one distribution into the other (0 same, 1 disjoint)."""
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


# ---------------------------------------------------------------- the audit

def tone_weights(images: np.ndarray, cap: float = 5.0) -> np.ndarray:
    """Sampling probabilities that give each ITA category the same share of draws.

    An image's weight is inversely proportional to its category's size, so a category of
    100 faces is drawn as often as one of 10,000; `cap` bounds any image at that many times
    the average weight, so a category of three faces is not repeated thousands of times.
    """
    return balanced_weights(categorize(image_ita(images)), cap)


def balanced_weights(categories: np.ndarray, cap: float = 5.0) -> np.ndarray:
    """`tone_weights` from each image's category index, already estimated."""
    category = np.asarray(categories, dtype=np.int64)
    weights = 1.0 / np.bincount(category, minlength=len(CATEGORIES))[category]
    weights = weights / weights.mean()
    for _ in range(100):  # capping lowers the mean, which lifts the capped again: iterate to the fixed point
        if weights.max() <= cap * (1 + 1e-9):
            break
        weights = np.minimum(weights, cap)
        weights = weights / weights.mean()
    return weights / weights.sum()


def _describe(images: np.ndarray) -> dict:
    ita = image_ita(images)
    if len(ita) == 0:
        raise ValueError("an image set to audit is empty; give it at least one face")
    p = shares(ita)
    hidden = np.concatenate([occluded(images[i:i + 4096]) for i in range(0, len(images), 4096)])
    return {"n": len(ita), "counts": category_counts(ita).tolist(), "shares": p.tolist(),
            "ita_median": float(np.median(ita)), "tv_to_uniform": total_variation(p, UNIFORM),
            # per category: faces whose box is sunglasses or shadow rather than skin
            "occluded_counts": np.bincount(categorize(ita)[hidden], minlength=len(CATEGORIES)).tolist()}


def audit(real_images: np.ndarray | None = None, generated_images: np.ndarray | None = None) -> dict:
    """Category shares of each given set, their distances, as a JSON-ready dict.

    Keys: categories, ita_thresholds, then "real" and/or "generated" (each with n, counts,
    shares, ita_median, tv_to_uniform, occluded_counts: per category, the faces whose skin
    box is hidden, see `occluded`), and tv_real_generated when both are given.
    """
    if real_images is None and generated_images is None:
        raise ValueError("nothing to audit: give real_images, generated_images or both")
    result = {"categories": list(CATEGORIES), "ita_thresholds": list(ITA_THRESHOLDS)}
    for name, images in (("real", real_images), ("generated", generated_images)):
        if images is not None:
            result[name] = _describe(images)
    if "real" in result and "generated" in result:
        result["tv_real_generated"] = total_variation(result["real"]["shares"],
                                                      result["generated"]["shares"])
    return result


def summary_line(result: dict) -> str:
    """The audit in one line: TV(real, generated) first, then each set's TV to uniform."""
    sets = [name for name in ("real", "generated") if name in result]
    to_uniform = ", ".join(f"{name} {result[name]['tv_to_uniform']:.2f}" for name in sets)
    head = f"TV(real, generated) = {result['tv_real_generated']:.2f}; " if "tv_real_generated" in result else ""
    return f"{head}TV to uniform: {to_uniform}"


def plot_shares(result: dict, title: str | None = None) -> Figure:
    """Grouped bars of category shares, one colour per image set in `result` (real beside
    generated, or any sets named by their keys), over a dashed uniform line."""
    sets = [name for name, value in result.items() if isinstance(value, dict) and "shares" in value]
    fig = Figure(figsize=(8, 4.2))
    ax = fig.subplots()
    x = np.arange(len(CATEGORIES))
    width = 0.8 / len(sets)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    for k, name in enumerate(sets):
        offset = (k - (len(sets) - 1) / 2) * width
        ax.bar(x + offset, result[name]["shares"], width, color=colours[k % len(colours)],
               label=f"{name} (n={result[name]['n']})")
    ax.axhline(1 / len(CATEGORIES), color="grey", ls="--", lw=1, label="uniform (1/6)")
    ax.set_xticks(x, [f"{c}\n{_range_label(i)}" for i, c in enumerate(CATEGORIES)])
    ax.set_ylabel("share of faces")
    ax.set_title(f"Skin tone (ITA) categories\n{title or summary_line(result)}", fontsize=10)
    tallest = max(max(result[name]["shares"]) for name in sets)
    ax.set_ylim(0, max(tallest, 1 / len(CATEGORIES)) * (1.25 + 0.08 * len(sets)))  # room for the legend
    ax.legend(frameon=False, loc="upper right", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _range_label(i: int) -> str:
    bounds = (None, *ITA_THRESHOLDS, None)
    lo, hi = bounds[i + 1], bounds[i]
    if hi is None:
        return f"> {lo:g}°"
    if lo is None:
        return f"<= {hi:g}°"
    return f"{lo:g}° to {hi:g}°"


def run_audit(data_dir: str | Path | None = None, checkpoint: str | Path | None = None, n: int = 2000,
              out: str | Path = "audit.json", cache_dir: str | Path = "data/cache",
              image_size: int | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Audit real faces (a folder) and/or a generator's faces (seeds seed..seed+n-1); write
    `out` (JSON) and the chart beside it (same name, .png); return the result.

    Images are compared at the generator's size (or `image_size`, default 64), so real and
    generated faces pass the estimator at the same resolution.
    """
    if data_dir is None and checkpoint is None:
        raise ValueError("nothing to audit: give --data-dir (a folder of real faces), "
                         "--checkpoint (a generator) or both")
    # torch loads only here, so the estimator itself stays a light numpy import.
    G = None
    if checkpoint is not None:
        if n < 1:
            raise ValueError(f"n={n}: need at least one generated face; pass e.g. --n 2000")
        from .export import load_generator
        G = load_generator(checkpoint)
    size = image_size or (G.image_size if G is not None else 64)
    if G is not None and size != G.image_size:
        raise ValueError(f"image_size={size} but the generator makes {G.image_size} px faces; "
                         f"leave --image-size out to compare at the generator's size")
    real = generated = None
    if data_dir is not None:
        from .data import cached_image_array
        real = cached_image_array(data_dir, size, cache_dir, progress)
    if G is not None:
        from .sample import faces_from_seeds
        generated = faces_from_seeds(G, list(range(seed, seed + n)))
    result = audit(real, generated)
    result["inputs"] = {"data_dir": None if data_dir is None else str(data_dir),
                        "checkpoint": None if checkpoint is None else str(checkpoint),
                        "image_size": size, "seed": seed}
    _write(result, Path(out))
    return result


def _write(result: dict, out: Path) -> None:
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    save_figure(plot_shares(result), out.with_suffix(".png"))
