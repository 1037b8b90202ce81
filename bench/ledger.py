"""The results ledger: every measured figure of the project, one row per run, in one file.

bench/results/ledger.json holds {"experiments": {KEY: {title, protocol, log}}, "rows": [...]}; each
row is one measured run (ROW_KEYS). docs/results.md is rendered from it, and the README quotes it
(tests/test_docs.py checks both), so a figure is typed once. Run from the repo root:
    .venv/bin/python -m bench.ledger            # rewrite docs/results.md and the README's quoted figures
    .venv/bin/python -m bench.ledger --check    # exit 1 if either is stale
A new measurement is appended with record() (e.g. `python -m bench.experiments.quality --record
EXPERIMENT ...`); a row of a new experiment also needs the experiment's entry (title, protocol, log).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "bench/results/ledger.json"
RESULTS_DOC = ROOT / "docs/results.md"
README = ROOT / "README.md"
RECIPE_TABLE = ROOT / "facegan/training/recipe_fid.json"  # what --preset auto reads (facegan/training/autopreset.py)
# A figure the README quotes carries the ledger's key right after it, so this module can rewrite it:
#   39.2 ± 2.8 (3 seeds)<!-- ledger: recipes-30min-cpu2/cpu -->
QUOTED = re.compile(r"(\d+\.\d)(?: ± (\d+\.\d))? \((\d+) seeds?\)<!-- ledger: ([^/]+?)/(.+?) -->")

# key -> the types its value may take; `note` alone may be left out
ROW_KEYS: dict[str, tuple[type, ...]] = {
    "experiment": (str,), "recipe": (str,), "flags": (str,), "seed": (int, type(None)),
    "images": (int, type(None)), "minutes": (int, float, type(None)), "machine": (str,),
    "fid": (int, float, type(None)), "kid": (int, float, type(None)), "n": (int, type(None)),
    "date": (str,), "command": (str,), "note": (str,),
}
OPTIONAL_KEYS = {"note"}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class LedgerError(ValueError):
    """A row the ledger refuses: a key missing or unknown, or a value of the wrong type."""


def validate(row: dict) -> None:
    """Raise LedgerError naming every problem of one row."""
    problems = [f"missing {k!r}" for k in ROW_KEYS if k not in row and k not in OPTIONAL_KEYS]
    problems += [f"unknown key {k!r}" for k in row if k not in ROW_KEYS]
    for key, types in ROW_KEYS.items():
        value = row.get(key)
        if key in row and (isinstance(value, bool) or not isinstance(value, types)):
            problems.append(f"{key}={value!r} is not {' or '.join(t.__name__ for t in types)}")
    if isinstance(row.get("date"), str) and not DATE.fullmatch(row["date"]):
        problems.append(f"date={row['date']!r} is not YYYY-MM-DD")
    if problems:
        raise LedgerError(f"ledger row {row.get('experiment')}/{row.get('recipe')}: " + "; ".join(problems))


def _read(path: Path) -> dict:
    if not Path(path).is_file():
        return {"experiments": {}, "rows": []}
    data = json.loads(Path(path).read_text())
    data.setdefault("experiments", {})
    return data


def load(path: Path | str = LEDGER) -> list[dict]:
    """The ledger's rows, in the order they were recorded."""
    return _read(Path(path))["rows"]


def experiments(path: Path | str = LEDGER) -> dict[str, dict]:
    """Each experiment's title, protocol and log (the doc that tells how it was run)."""
    return _read(Path(path))["experiments"]


def _dumps(data: dict) -> str:
    """The ledger's text: experiments indented, one row a line (a new row is a one-line diff)."""
    experiment_lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                                  for k, v in data["experiments"].items())
    row_lines = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in data["rows"])
    return f'{{\n "experiments": {{\n{experiment_lines}\n }},\n "rows": [\n{row_lines}\n ]\n}}\n'


def record(rows: list[dict], path: Path | str = LEDGER) -> None:
    """Append rows to the ledger, all or none: each is validated first, then the whole file is
    written to a temporary file beside it and moved over it (os.replace), so a crash never
    leaves half a ledger."""
    for row in rows:
        validate(row)
    path = Path(path)
    data = _read(path)
    data["rows"] = [*data["rows"], *rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_dumps(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def train_flags(preset: str, overrides: dict) -> str:
    """A row's `flags`: the `facegan train` flags of a preset plus FIELD=VALUE overrides (the
    seed and minutes aside), e.g. train_flags("cpu", {"lr_d": 8e-4}) == "--preset cpu --lr-d 0.0008"."""
    flags = [f"--preset {preset}"]
    for field, value in overrides.items():
        if field in ("seed", "minutes"):  # columns of their own
            continue
        flag = "--" + field.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else f"--no-{field.replace('_', '-')}")
        else:
            flags.append(f"{flag} {value if value != '' else chr(39) * 2}")
    return " ".join(flags)


def _group(rows: list[dict], experiment: str, recipe: str) -> list[dict]:
    return [r for r in rows if r["experiment"] == experiment and r["recipe"] == recipe]


def summary(rows: list[dict], experiment: str, recipe: str) -> tuple[float, float | None, int | None]:
    """FID of a recipe in an experiment: (mean, sample standard deviation, seeds) over its rows
    with a seed; the standard deviation is None for one seed. Where the ledger holds only a
    mean (rows without a seed), that mean, None, None. LookupError when it holds no FID."""
    group = [r for r in _group(rows, experiment, recipe) if r["fid"] is not None]
    seeded = [r["fid"] for r in group if r["seed"] is not None]
    if seeded:
        return statistics.mean(seeded), (statistics.stdev(seeded) if len(seeded) > 1 else None), len(seeded)
    if group:
        return group[0]["fid"], None, None
    raise LookupError(f"the ledger has no FID for {experiment}/{recipe}")


def quote(rows: list[dict], experiment: str, recipe: str) -> str:
    """How the docs quote a recipe's FID: "39.2 ± 2.8 (3 seeds)", "24.4 (1 seed)" or "55.0"."""
    mean, sd, seeds = summary(rows, experiment, recipe)
    if seeds is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {sd:.1f} ({seeds} seeds)" if sd is not None else f"{mean:.1f} (1 seed)"


# ---------------------------------------------------------------------------------------------
# docs/results.md

def _figure(value: float) -> str:
    """A figure as recorded: 41.74 stays 41.74, 50.0 stays 50.0."""
    return f"{value:.2f}" if round(value, 1) != value else f"{value:.1f}"


def _per_seed(group: list[dict], key: str, fmt) -> str:
    """One value for the group when its runs agree, else each seed's in seed order ("-": not recorded)."""
    runs = sorted((r for r in group if r["seed"] is not None), key=lambda r: r["seed"]) or group
    values = [r[key] for r in runs]
    if all(v is None for v in values):
        return "-"
    if len(set(values)) == 1:
        return fmt(values[0])
    return " / ".join("-" if v is None else fmt(v) for v in values)


def _notes(group: list[dict]) -> str:
    """The group's notes; where its runs' notes differ, each says whose it is."""
    by_note: dict[str, list] = {}
    for r in group:
        if r.get("note"):
            by_note.setdefault(r["note"], []).append(r["seed"])
    if not by_note:
        return "-"
    if len(by_note) == 1 and len(next(iter(by_note.values()))) == len(group):
        return next(iter(by_note))
    parts = []
    for note, seeds in by_note.items():
        named = [s for s in seeds if s is not None]
        who = (f"seed{'s' if len(named) > 1 else ''} {', '.join(map(str, named))}" if named else "the mean")
        parts.append(f"{who}: {note}")
    return "; ".join(parts)


def _commands(group: list[dict]) -> str:
    """The group's commands; the seeds' runs of one command are named once."""
    seeded = [r for r in group if r["seed"] is not None] or group
    first = seeded[0]
    others = []
    for row in seeded[1:]:
        if row["command"] == first["command"]:
            continue
        same = re.sub(rf"(seed=|-s){row['seed']}\b", rf"\g<1>{first['seed']}", row["command"])
        if same == first["command"]:
            others.append(f"seed={row['seed']}")
        elif f"`{row['command']}`" not in others:
            others.append(f"`{row['command']}`")
    text = f"`{first['command']}`"
    if others:
        text += " (and " + ", ".join(others) + ")"
    return text


def _row(rows: list[dict], experiment: str, recipe: str) -> str:
    group = _group(rows, experiment, recipe)
    scored = [r for r in group if r["fid"] is not None]
    if scored:
        mean, sd, seeds = summary(rows, experiment, recipe)
        per_seed = [r for r in scored if r["seed"] is not None]
        if seeds is None:
            fid = _figure(mean)
        elif seeds == 1:
            fid = f"{_figure(per_seed[0]['fid'])} (seed {per_seed[0]['seed']})"
        else:
            values = ", ".join(_figure(r["fid"]) for r in sorted(per_seed, key=lambda r: r["seed"]))
            fid = f"**{mean:.1f} ± {sd:.1f}** ({seeds} seeds: {values})"
    else:
        fid = "-"
    means = [r["kid"] for r in group if r["seed"] is None and r["kid"] is not None]
    kids = means or [r["kid"] for r in group if r["kid"] is not None]
    kid = f"{statistics.mean(kids):.3f}" if kids else "-"
    flags = group[0]["flags"]
    cells = [recipe, f"`{flags}`" if flags else "-", _per_seed(group, "machine", str),
             _per_seed(group, "images", "{:,}".format), _per_seed(group, "minutes", "{:g}".format), fid, kid,
             max(r["date"] for r in group), _commands(group), _notes(group)]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _sort_key(rows: list[dict], experiment: str):
    def key(recipe: str):
        try:
            return (0, summary(rows, experiment, recipe)[0])
        except LookupError:
            return (1, 0.0)
    return key


def _slug(key: str) -> str:
    return re.sub(r"[^\w\- ]", "", key.lower()).replace(" ", "-")


HEADER = """\
# Results

Generated from [bench/results/ledger.json](../bench/results/ledger.json) by `python -m bench.ledger`: do not edit it; \
add a row with `bench.ledger.record(rows)` (`python -m bench.experiments.quality --record EXPERIMENT ...` does) \
and rerun that command. Back to the [README](../README.md).

Every measured figure of facegan, one table per experiment and one row per recipe. FID and KID are \
lower-is-better; **mean ± sd** is the mean over seeds and their sample standard deviation (for two \
seeds, 0.71x their gap); a figure of one seed names the seed. `flags` are the `facegan train` flags \
of the runs (the data, the seed and the budget aside): a flag such as `--ema-norm-samples 0` \
reproduces a run scored before today's default. `images` are the images seen in training, \
`minutes` its wall-clock time where it was timed. How each experiment was run, and what it says: \
its log.
"""


def render_table(path: Path | str = LEDGER) -> str:
    """docs/results.md: the header, a list of the experiments, then one table per experiment."""
    data = _read(Path(path))
    rows, meta = data["rows"], data["experiments"]
    order = list(meta) + [e for e in dict.fromkeys(r["experiment"] for r in rows) if e not in meta]
    out = [HEADER]
    out += [f"- [{e}](#{_slug(e)}): {meta.get(e, {}).get('title', e)}" for e in order]
    for experiment in order:
        info = meta.get(experiment, {})
        recipes = sorted(dict.fromkeys(r["recipe"] for r in rows if r["experiment"] == experiment),
                         key=_sort_key(rows, experiment))
        out += ["", f"## {experiment}", "",
                f"**{info.get('title', experiment)}.** {info.get('protocol', '')[:1].upper()}"
                f"{info.get('protocol', '')[1:]}. "
                + (f"Log: [{info['log']}]({info['log']})." if info.get("log") else ""), "",
                "| recipe | flags | machine | images | minutes | FID | KID | date | command | note |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        out += [_row(rows, experiment, recipe) for recipe in recipes]
    return "\n".join(out) + "\n"


def refresh_quotes(text: str, rows: list[dict]) -> str:
    """`text` with every figure marked `<!-- ledger: EXPERIMENT/RECIPE -->` set to the ledger's quote."""
    return QUOTED.sub(lambda m: f"{quote(rows, m.group(4), m.group(5))}<!-- ledger: {m.group(4)}/{m.group(5)} -->",
                      text)


# ---------------------------------------------------------------------------------------------
# facegan/training/recipe_fid.json

# A row trained a preset as it is when its flags are the preset's alone; --ema-norm-samples 0 only
# changes how G_ema's BatchNorm statistics were set for scoring, not the training.
AS_IS = re.compile(r"--preset ([\w-]+)(?: --ema-norm-samples 0)?")
# Rows that trained a preset's exact config before it had its own name.
SAME_AS = {"--preset cpu --lr-g 0.0002": "--preset cpu-fast"}
# Rows that fit AS_IS but are not a preset as it trains today, or count a run twice.
NOT_AS_IS = {"recipes-63k-cpu2/quality, D's spectral weights at torch's init"}  # the code before a fix
RESCORED = {"ema-norms"}  # checkpoints of other experiments' runs, scored again


def recipe_curves(rows: list[dict]) -> dict:
    """--preset auto's table: for each 64-px preset, its mean FID against images seen, one point
    per experiment that trained it as it is (the mean over that experiment's seeds)."""
    from facegan.config import PRESETS

    curves: dict[str, list[dict]] = {}
    for experiment, recipe in dict.fromkeys((r["experiment"], r["recipe"]) for r in rows):
        group = [r for r in _group(rows, experiment, recipe)
                 if r["fid"] is not None and r["images"] is not None and r["seed"] is not None]
        if experiment in RESCORED or f"{experiment}/{recipe}" in NOT_AS_IS:
            continue
        match = AS_IS.fullmatch(SAME_AS.get(group[0]["flags"], group[0]["flags"])) if group else None
        if not match or match.group(1) not in PRESETS or PRESETS[match.group(1)].get("image_size", 64) != 64:
            continue
        curves.setdefault(match.group(1), []).append(
            {"images": round(statistics.mean(r["images"] for r in group)),
             "fid": round(statistics.mean(r["fid"] for r in group), 1), "seeds": len(group),
             "from": f"{experiment}/{recipe}"})
    return {"about": "FID (n=2000) against images seen on the CelebA subset at 64 px, per preset; written by "
                     "`python -m bench.ledger` from bench/results/ledger.json",
            "image_size": 64,
            "recipes": {name: sorted(points, key=lambda p: p["images"]) for name, points in sorted(curves.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is not the ledger's "
                        "rendering (write nothing)")
    args = parser.parse_args(argv)
    for row in load():
        validate(row)
    rows = load()
    wanted = {RESULTS_DOC: render_table(), README: refresh_quotes(README.read_text(), rows),
              RECIPE_TABLE: json.dumps(recipe_curves(rows), indent=1) + "\n"}
    stale = [path for path, text in wanted.items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run .venv/bin/python -m bench.ledger", file=sys.stderr)
        if not stale:
            print(f"{RESULTS_DOC.relative_to(ROOT)}, the README's figures and {RECIPE_TABLE.relative_to(ROOT)} are "
                  f"up to date ({len(rows)} rows)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)} from {len(rows)} rows")
    return 0

if __name__ == "__main__":
    sys.exit(main())
