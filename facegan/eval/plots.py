"""Figures a run produces: the loss curves and the course's `view_samples`.

Figures are built with `matplotlib.figure.Figure` (no pyplot state), so training can
save them headless while a notebook still shows them inline.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..utils.atomic import atomic_write_bytes


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Figure, path: Path | str, dpi: int = 100) -> None:
    atomic_write_bytes(path, figure_png(fig, dpi))


def view_samples(epoch: int, samples: list[np.ndarray], nrows: int = 2, ncols: int = 8) -> Figure:
    """The course's sample viewer: the fixed-z images after `epoch` (-1 for the last)."""
    images = samples[epoch]
    fig = Figure(figsize=(ncols * 1.6, nrows * 1.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, img in zip(axes.flat, images):
        ax.imshow(img)
    shown = epoch if epoch >= 0 else len(samples) + epoch
    fig.suptitle(f"fixed-z samples after epoch {shown + 1}")
    return fig


def rows_with(rows: list[dict], *keys: str) -> list[dict]:
    """The rows that hold a number under each key: a hand-edited or damaged metrics.jsonl row
    costs the plot that point, not the whole report."""
    return [r for r in rows if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                   for k in keys)]


def plot_losses(rows: list[dict]) -> Figure:
    """D and G losses (and D's accuracy) against images seen."""
    rows = rows_with(rows, "images", "d_loss")  # evaluation rows carry metrics, not losses
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    images = [r["images"] for r in rows]
    ax.plot(images, [r["d_loss"] for r in rows], label="Discriminator", alpha=0.8)
    ax.plot(images, [r.get("g_loss", np.nan) for r in rows], label="Generator", alpha=0.8)
    ax.set_xlabel("training images seen")
    ax.set_ylabel("loss")
    ax.set_title("Training losses")
    ax.grid(alpha=0.3)
    acc_ax = ax.twinx()
    acc_ax.plot(images, [r.get("d_acc", np.nan) for r in rows], color="grey", lw=0.8, alpha=0.6,
                label="D accuracy")
    acc_ax.set_ylim(0, 1.05)
    acc_ax.set_ylabel("D accuracy")
    lines = ax.get_legend_handles_labels()
    acc_lines = acc_ax.get_legend_handles_labels()
    ax.legend(lines[0] + acc_lines[0], lines[1] + acc_lines[1], loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)  # below: curves fill the axes
    return fig


def plot_scores(rows: list[dict]) -> Figure:
    """FID (and KID) against images seen, from the evaluation rows of metrics.jsonl."""
    rows = rows_with(rows, "images", "fid")
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    images = [r["images"] for r in rows]
    ax.plot(images, [r["fid"] for r in rows], "o-", label="FID")
    ax.set_xlabel("training images seen")
    ax.set_ylabel(f"FID (n={rows[-1]['eval_n']}, lower is better)" if rows else "FID")
    ax.set_title("Sample quality over training")
    ax.grid(alpha=0.3)
    kid_ax = ax.twinx()
    kid_ax.plot(images, [r.get("kid", np.nan) for r in rows], "s--", color="grey", alpha=0.7, label="KID")
    kid_ax.set_ylabel("KID")
    lines, labels = ax.get_legend_handles_labels()
    kid_lines, kid_labels = kid_ax.get_legend_handles_labels()
    ax.legend(lines + kid_lines, labels + kid_labels, loc="upper right")
    return fig
