"""One self-contained HTML page per run: config, loss curves, FID over time, sample grids by epoch.

Every image is inlined as a base64 PNG, so RUN_DIR/report.html can be mailed, attached
to an issue or opened from disk with no server. Training rewrites it every 30 s or so;
`python -m facegan report RUN_DIR` rebuilds it from the run folder alone.
"""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import numpy as np

from ..generate.sample import image_grid, load_train_samples, png_bytes
from ..utils import jsonfile
from ..utils.atomic import atomic_write_text
from .plots import figure_png, plot_losses, plot_scores, rows_with
from .runlog import read_metrics

MAX_EPOCH_GRIDS = 24  # a long run shows this many epochs, evenly spaced, the last always among them

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; }
td { padding: 2px 12px 2px 0; border-bottom: 1px solid #eee; } td:first-child { color: #555; }
.epochs { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { text-align: center; color: #555; font-size: 0.9em; }
img.grid { image-rendering: pixelated; width: 320px; }
img.latest { image-rendering: pixelated; width: 640px; }
.warn { background: #fff4e5; border-left: 4px solid #f0a020; padding: 4px 8px; margin: 4px 0; }
"""


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def shown_epochs(n: int, limit: int = MAX_EPOCH_GRIDS) -> list[int]:
    """Indices of the epochs to show: all of them up to `limit`, else evenly spaced with the last."""
    if n <= limit:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def read_run_config(run_dir: Path) -> tuple[dict, str | None]:
    """The run's config.json as a dict, or ({}, why) when it is not a JSON object: the report
    still shows the run's losses, scores and samples, only without its config table."""
    path = run_dir / "config.json"
    try:
        config = jsonfile.read_json(path)
    except (OSError, jsonfile.BadJSON) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        return {}, f"{path} cannot be read ({why}); the report leaves out the config table"
    if not isinstance(config, dict):
        return {}, (f"{path} holds a JSON {type(config).__name__}, not an object of config fields; "
                    f"the report leaves out the config table")
    return config, None


def render_report(run_dir: str | Path, log=lambda message: None) -> str:
    """The page; a config.json that is not a JSON object is said through `log` and on the page."""
    run_dir = Path(run_dir)
    config, config_problem = read_run_config(run_dir)
    if config_problem:
        log(config_problem)
    name = config.get("name")
    name = name if isinstance(name, str) else run_dir.name
    metrics = run_dir / "metrics.jsonl"
    rows = read_metrics(metrics) if metrics.exists() else []
    samples_path = run_dir / "train_samples.pkl"
    samples = load_train_samples(samples_path) if samples_path.exists() else []
    parts = [f"<h1>facegan run: {html.escape(name)}</h1>",
             f"<p class='sub'>{html.escape(str(run_dir.resolve()))} &middot; {_summary(rows, samples)}"
             f" &middot; written {time.strftime('%Y-%m-%d %H:%M')}</p>"]
    parts += [f"<div class='warn'>{html.escape(r['warning'])}</div>" for r in rows if "warning" in r]
    if samples:
        latest = image_grid(samples[-1], nrow=min(8, len(samples[-1])))
        parts.append(_section(f"Latest samples (epoch {len(samples)})", _img(png_bytes(latest), "latest", "latest")))
    if any("d_loss" in r for r in rows):
        parts.append(_section("Losses", _img(figure_png(plot_losses(rows)), "loss curves")))
    if any("fid" in r for r in rows):
        parts.append(_section("FID over time", _img(figure_png(plot_scores(rows)), "FID over time")))
    if samples:
        parts.append(_section("Samples by epoch (the same fixed z each epoch)", _epoch_grids(samples)))
    if config_problem:
        parts.append(_section("Config", f"<div class='warn'>{html.escape(config_problem)}</div>"))
    else:
        parts.append(_section("Config", _config_table(config)))
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>facegan: {html.escape(name)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>\n")


def write_report(run_dir: str | Path, log=lambda message: None) -> Path:
    out = Path(run_dir) / "report.html"
    atomic_write_text(out, render_report(run_dir, log))
    return out


def _summary(rows: list[dict], samples: list) -> str:
    losses = rows_with(rows, "step", "images", "d_loss")
    scores = rows_with(rows, "fid", "epoch")
    text = f"{len(samples)} epochs"
    if losses:
        text += f", {losses[-1]['step']} steps, {losses[-1]['images']:,} images seen"
    if scores:
        best = min(scores, key=lambda r: r["fid"])
        text += (f", last FID {scores[-1]['fid']:.1f} (best {best['fid']:.1f} at epoch {best['epoch']}, "
                 f"kept in checkpoints/best.pt)")
    return text


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _img(png: bytes, alt: str, cls: str = "") -> str:
    return f"<img class='{cls}' alt='{html.escape(alt)}' src='{png_data_uri(png)}'>"


def _epoch_grids(samples: list[np.ndarray]) -> str:
    figures = []
    for i in shown_epochs(len(samples)):
        grid = image_grid(samples[i], nrow=min(8, len(samples[i])))
        figures.append(f"<figure>{_img(png_bytes(grid), f'epoch {i + 1}', 'grid')}"
                       f"<figcaption>epoch {i + 1}</figcaption></figure>")
    return f"<div class='epochs'>{''.join(figures)}</div>"


def _config_table(config: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_shown(v))}</td></tr>"
                   for k, v in config.items())
    return f"<table>{rows}</table>"


def _shown(value) -> str:
    try:
        return json.dumps(value)
    except (RecursionError, ValueError):  # nested about as deep as the parser allows
        return "(nested too deeply to show)"
