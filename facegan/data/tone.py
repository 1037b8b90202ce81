"""Skin tone of a face from its pixels: the Individual Typology Angle (ITA) and its categories.

ITA is the angle dermatology uses to grade skin colour, ITA = arctan((L* - 50) / b*) in
degrees from CIELAB: lighter skin reads higher, darker skin lower, and six standard
categories (CATEGORIES, lightest first) bin it at fixed thresholds (ITA_THRESHOLDS).

The estimator (`image_ita`) only sees pixels: a fixed central box of a tight face crop
(below the eyes, above the mouth: cheeks and nose), whose robust median colour shrugs off
the stray hair, glasses, beard or shadow that falls inside it; `occluded` flags the faces
whose box is mostly sunglasses or deep shadow rather than skin. It is validated on the
synthetic faces, whose painted skin tone is known (tests/eval/test_audit.py). `soft_ita` is
its differentiable twin for training (torch, imported only there), and `tone_weights` /
`balanced_weights` give each category the same share of sampling draws.

What it cannot tell: ITA from a photo mixes skin with lighting and camera (a dim or
blue-tinted photo reads darker), so read category shares as a comparison of two sets
under the same estimator, not as a measurement of anyone's skin.

Only numpy (and torch, lazily, in `soft_ita`): training imports this, never matplotlib.
The audit report and its chart are in `facegan.eval.audit`.
"""
from __future__ import annotations

import numpy as np

from ..config import TONE_CATEGORIES

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
    import torch  # only training needs gradients; the estimator itself stays numpy

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


# ---------------------------------------------------------------- balanced draws

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
