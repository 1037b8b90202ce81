"""Skin-tone audit: does the generator reproduce, or narrow, the data's range of skin tones?

A GAN can drop rare modes, and darker skin is rare in CelebA, so a sharp FID can hide a
generator that whitens faces. This module puts every face on the Individual Typology
Angle (ITA) scale dermatology uses (estimated by `facegan.data.tone`, which says how and what
it cannot tell), bins it into the six standard categories and compares the category
shares of real and generated faces by total variation distance (0: same shares, 1: no
overlap): `audit` as a JSON-ready dict, `plot_shares` as a chart, `run_audit` for the CLI.

Read the shares as a comparison of two sets under the same estimator, not as a
measurement of anyone's skin. The estimator itself is `facegan.data.tone`, which training
imports without this module's matplotlib.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..data.tone import (
    CATEGORIES,
    ITA_THRESHOLDS,
    UNIFORM,
    categorize,
    category_counts,
    image_ita,
    occluded,
    shares,
    total_variation,
)
from ..utils.atomic import atomic_write_text
from .plots import save_figure

# ---------------------------------------------------------------- the audit

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
        from ..generate.export import load_generator
        G = load_generator(checkpoint)
    size = image_size or (G.image_size if G is not None else 64)
    if G is not None and size != G.image_size:
        raise ValueError(f"image_size={size} but the generator makes {G.image_size} px faces; "
                         f"leave --image-size out to compare at the generator's size")
    real = generated = None
    if data_dir is not None:
        from ..data.images import cached_image_array
        real = cached_image_array(data_dir, size, cache_dir, progress)
    if G is not None:
        from ..generate.sample import faces_from_seeds
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
