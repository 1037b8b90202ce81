"""The docs stay true: README.md and docs/*.md are checked against the code they describe.

- every relative link and image points at a file that exists, and every #anchor at a heading;
- the README stays a few screens long;
- every command in a fenced block that runs facegan, helper.py, a bench script or make parses
  with the real parser (so every subcommand and option the docs name exists), and every
  `--option` quoted in inline code exists somewhere;
- the README's main commands run, scaled down to the tiny preset.
"""
import argparse
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facegan.commands.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 160

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.S | re.M)
SHELL = {"bash", "sh", "shell"}  # every line a command; in a bare or ```console block only "$ " lines are
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
INLINE = re.compile(r"`([^`\n]+)`")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return FENCE.sub("", text)


def _blocks(text: str) -> list[str]:
    """The shell commands of the fenced blocks: all of a ```bash block; the "$ " lines (prompt
    dropped, with their continuation lines) of a bare or ```console transcript, whose other
    lines are output; nothing of ```python and the like."""
    blocks = []
    for lang, body in FENCE.findall(text):
        lang = lang.strip()
        if lang in SHELL:
            blocks.append(body)
        elif lang in ("", "console"):
            commands, going_on = [], False
            for line in body.splitlines():
                if line.startswith("$ ") or going_on:
                    commands.append(line.removeprefix("$ "))
                    going_on = line.endswith("\\")
            blocks.append("\n".join(commands) + "\n")
    return blocks


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------------------------------------
# 1. links and images


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(path.read_text()).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            slug = _slug(m.group(1))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_relative_link_and_image_points_at_something_that_exists(doc):
    broken = []
    for target in LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {_name(file)}")
    assert not broken, f"{_name(doc)}: " + "; ".join(broken)


def test_the_slugs_follow_github():
    assert _slug("The `quality` preset, chosen by FID") == "the-quality-preset-chosen-by-fid"
    assert _slug("What happens when...") == "what-happens-when"
    assert _slug("Scaling out: many GPUs, many nodes") == "scaling-out-many-gpus-many-nodes"


# docs/sweep.md is written by another engineer, in parallel with this file (issue 21): its links
# and commands are checked like every doc's, its opening is left to its author.
OPENING_EXEMPT = {"sweep.md"}


def test_every_doc_starts_with_a_title_and_links_back_to_the_readme():
    for doc in DOCS[1:]:
        text = doc.read_text()
        assert text.startswith("# "), _name(doc)
        if doc.name not in OPENING_EXEMPT:
            assert "../README.md" in text.split("\n\n", 2)[1], f"{_name(doc)} does not link back to the README"
        assert f"(docs/{doc.name})" in README.read_text(), f"the README's Documentation list lacks {_name(doc)}"


# ---------------------------------------------------------------------------------------------
# 2. the README stays short


def test_the_readme_is_a_few_screens():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


# ---------------------------------------------------------------------------------------------
# 3. every command the docs show parses, and every option they quote exists


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _helper_parser() -> argparse.ArgumentParser:
    import helper  # the repo root is on sys.path (conftest.py)
    return helper._build_parser()


def _bench_options(script: Path) -> set[str]:
    """The options a bench script declares, with those of the bench modules it imports (such as
    bench.protocol's --faces)."""
    text = script.read_text()
    options = set(re.findall(r"add_argument\(\s*\"(--[a-z][a-z0-9_-]*)\"", text))
    for module in re.findall(r"^from (bench\.[\w.]+) import", text, re.M):
        imported = ROOT / (module.replace(".", "/") + ".py")
        if imported.is_file() and imported != script:
            options |= set(re.findall(r"add_argument\(\s*\"(--[a-z][a-z0-9_-]*)\"", imported.read_text()))
    return options


def _commands(text: str) -> list[list[str]]:
    """Every command line of the shell blocks, as tokens: continuations joined, comments and
    env assignments dropped, `a && b` split in two."""
    commands = []
    for block in _blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:  # an output line with a stray quote, not a command
                continue
            command: list[str] = []
            for token in [*tokens, "&&"]:
                if token in ("&&", "||", ";", "|"):
                    while command and "=" in command[0] and not command[0].startswith("-"):
                        command.pop(0)  # C=runs/... or OMP_NUM_THREADS=1 before a command
                    if command:
                        commands.append(command)
                    command = []
                else:
                    command.append(token)
    return commands


def _facegan_argv(tokens: list[str]) -> list[str] | None:
    """The arguments after `python -m facegan` (also under torchrun) or a `facegan` command."""
    for i in range(len(tokens) - 1):
        if tokens[i] == "-m" and tokens[i + 1] == "facegan":
            return tokens[i + 2:]
    if Path(tokens[0]).name == "facegan":
        return tokens[1:]
    return None


def _parses(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None when argv parses (or asks for --help); else argparse's one-line complaint."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {e.code}"
    return None


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for line in re.findall(r"^([\w .$()/-]+?)\s*:(?!=)", text, re.M) for t in line.split()}


def _check_command(tokens: list[str], parser, helper_parser) -> str | None:
    argv = _facegan_argv(tokens)
    if argv is not None:
        # "..." in `train ... --eval-every 5` stands for the reader's own options
        return _parses(parser, [t for t in argv if t != "..."])
    scripts = [t for t in tokens if t.endswith(".py")]
    modules = [tokens[i + 1] for i in range(len(tokens) - 1) if tokens[i] == "-m" and tokens[i + 1].startswith("bench.")]
    if modules:  # python -m bench.experiments.quality ...: the module's own options
        script = ROOT / (modules[0].replace(".", "/") + ".py")
        if not script.exists():
            return f"no module {modules[0]}"
        unknown = [t for t in tokens[tokens.index(modules[0]) + 1:]
                   if t.startswith("--") and t.split("=")[0] not in _bench_options(script) | {"--help"}]
        return f"{modules[0]} has no {unknown}" if unknown else None
    if scripts and Path(scripts[0]).name == "helper.py":
        return _parses(helper_parser, tokens[tokens.index(scripts[0]) + 1:])
    if scripts and scripts[0].startswith("bench/"):
        script = ROOT / scripts[0]
        if not script.exists():
            return f"{scripts[0]} does not exist"
        unknown = [t for t in tokens[tokens.index(scripts[0]) + 1:]
                   if t.startswith("--") and t.split("=")[0] not in _bench_options(script)]
        return f"{scripts[0]} has no {unknown}" if unknown else None
    if tokens[0] == "make":
        missing = [t for t in tokens[1:] if not t.startswith("-") and t not in _make_targets()]
        return f"no make target {missing}" if missing else None
    return None


def test_the_command_extraction_finds_what_it_should():
    text = ("```\n$ facegan report runs/x\nreport written\n```\n```bash\nC=x.pt\n.venv/bin/python -m facegan sample --checkpoint $C \\\n    --n 4 --out g.png  # a grid\n"
            "make demo   # train\npip install x && facegan view runs/demo\n```\n"
            "```python\nimport facegan\n```\n")
    commands = _commands(text)
    assert [_facegan_argv(c) for c in commands] == [
        ["report", "runs/x"], ["sample", "--checkpoint", "$C", "--n", "4", "--out", "g.png"], None, None, ["view", "runs/demo"]]
    assert _check_command(["make", "demo"], None, None) is None
    assert _check_command(["make", "nonesuch"], None, None)
    parser = build_parser()
    assert _check_command(["python", "-m", "facegan", "train", "--no-such-flag"], parser, None)
    assert _check_command(["python", "-m", "facegan", "nonesuch"], parser, None)


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_command_in_the_docs_parses(doc):
    parser, helper_parser = build_parser(), _helper_parser()
    failures = []
    for tokens in _commands(doc.read_text()):
        problem = _check_command(tokens, parser, helper_parser)
        if problem:
            failures.append(f"{shlex.join(tokens)}\n    -> {problem}")
    assert not failures, f"{_name(doc)}:\n" + "\n".join(failures)


# Options quoted in inline code that belong to other programs, not to facegan, helper.py or bench/.
NOT_OURS = {
    "--nproc_per_node", "--nnodes", "--node_rank", "--rdzv_backend", "--rdzv_endpoint", "--rdzv_id",  # torchrun's
    "--logdir",  # tensorboard's (`.venv/bin/tensorboard --logdir runs`)
}


SEED_SUFFIX = re.compile(r"-s\d+$")


def _all_options() -> tuple[set[str], dict[str, set[str]]]:
    subs = _subparsers(build_parser())
    per_command = {name: set(p._option_string_actions) for name, p in subs.items()}
    helper_commands = _subparsers(_helper_parser()).values()
    everywhere = set().union(*per_command.values(), *(p._option_string_actions for p in helper_commands))
    for script in (ROOT / "bench").rglob("*.py"):
        everywhere |= _bench_options(script)
    return everywhere, per_command


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_option_quoted_in_the_docs_exists(doc):
    everywhere, per_command = _all_options()
    unknown = []
    for code in INLINE.findall(_prose(doc.read_text())):
        words = code.split()
        argv = _facegan_argv(words) if words else None
        if argv is None and words and words[0] in per_command:
            argv = words  # `sample --seed S`: the options of that subcommand
        known = per_command.get(argv[0], set()) if argv else everywhere
        for option in OPTION.findall(code):
            option = SEED_SUFFIX.sub("", option)  # a bench run's label, 'cpu --sle-s0', ends in its seed
            if option not in known and option not in NOT_OURS:
                unknown.append(f"{option} (in `{code}`)")
    assert not unknown, f"{_name(doc)} names options nothing has: " + "; ".join(unknown)


# ---------------------------------------------------------------------------------------------
# 4. the README's main commands run


def _main_commands() -> list[str]:
    """The README's "Main commands" block, one command a line, with $C expanded."""
    section = README.read_text().split("## Main commands", 1)[1]
    block = _blocks(section)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    checkpoint = next(line.split("=", 1)[1] for line in lines if line.startswith("C="))
    return [line.replace("$C", checkpoint) for line in lines if line and not line.startswith("C=")]


# The same commands at test scale. Each substitution keeps the command and its options; only the
# sizes shrink (the demo's 20 epochs become the tiny preset's 1, then 2 on resume; 64 faces
# become 4; 10,000 reference images become 8) and the run is tiny's, so runs/demo is runs/tiny.
TINY = [
    (r"^\.venv/bin/python ", ""),
    (r"--preset demo", "--preset tiny --quiet"),
    (r"runs/demo", "runs/tiny"),
    (r"--resume --epochs \d+", "--resume --epochs 2 --quiet"),
    (r"sample (.*)--n \d+", r"sample \1--n 4"),
    (r"--n 10000", "--n 32"),  # a batch of the tiny preset (16) fits
]
# Not run here, only parsed (above): --help; serve (it serves until stopped; tests/commands/test_explorer.py
# drives it); the CelebA run (it downloads the data set); evaluate (InceptionV3 on a CPU would
# double this test's time; tests/eval/test_metrics.py runs the same command on a tiny checkpoint);
# sweep (its trials each train and score FID; tests/commands/test_search.py runs a 3-trial study).
SKIP = re.compile(r"--help|^-m facegan (serve|evaluate|sweep) |--data celeba")


# A time budget's commands, scaled: seconds instead of minutes, a few synthetic faces instead of CelebA.
BUDGET_SCALE = [(r"^\.venv/bin/python -m facegan ", ""), (r"--minutes \d+", "--minutes 0.05"),
                (r"--data celeba", "--data synthetic --synthetic-n 128")]


def _budget_commands() -> list[tuple[Path, str]]:
    """Every `facegan train ... --minutes M` line of the README's and docs' code blocks (no --resume)."""
    found = []
    for doc in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for block in _blocks(doc.read_text()):
            for line in block.splitlines():
                line = line.split("#", 1)[0].strip()
                if re.match(r"^\.venv/bin/python -m facegan train .*--minutes \d", line) and "--resume" not in line:
                    found.append((doc, line))
    return found


def test_the_time_budget_commands_of_the_docs_train_for_their_minutes(tmp_path, monkeypatch, capsys):
    from facegan.training import autopreset, steplog

    commands = _budget_commands()
    assert any(doc == README for doc, _ in commands), "the README shows a --minutes command"
    monkeypatch.setattr(autopreset, "MEASURE_SECONDS", 0.2)
    monkeypatch.setattr(steplog, "FORECAST_AFTER_S", 0.5)
    monkeypatch.chdir(tmp_path)
    for i, (doc, line) in enumerate(commands):
        for pattern, replacement in BUDGET_SCALE:
            line = re.sub(pattern, replacement, line)
        argv = [*shlex.split(line), "--out", f"run{i}", "--quiet"]
        started = time.time()
        assert main(argv) == 0, f"{_name(doc)}: {line}"
        took, out = time.time() - started, capsys.readouterr().out
        config = json.loads((tmp_path / f"run{i}/config.json").read_text())
        assert took >= 3 and "done (the 0.05-min time budget is spent)" in out, f"{_name(doc)}: {line}\n{out}"
        if "--epochs" not in line:
            assert config["epochs"] == 0, f"{_name(doc)}: {line} is not bounded by its budget alone"
        if "--preset" not in line:
            assert "--preset auto: on " in out, f"{_name(doc)}: {line} picked no recipe"


def test_the_readme_main_commands_run_at_tiny_scale(tmp_path, monkeypatch):
    commands = []
    for line in _main_commands():
        for pattern, replacement in TINY:
            line = re.sub(pattern, replacement, line)
        assert line.startswith("-m facegan "), line
        if not SKIP.search(line):
            commands.append(shlex.split(line)[2:])
    names = [c[0] for c in commands]
    for needed in ("train", "sample", "export", "view"):
        assert needed in names, f"the README's main commands no longer {needed}"
    assert any("--resume" in c for c in commands)

    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    monkeypatch.chdir(tmp_path)
    # training and the first sample run exactly as a user types them, in processes of their own ...
    train = next(c for c in commands if c[0] == "train" and "--resume" not in c)
    sample = next(c for c in commands if c[0] == "sample")
    commands = [c for c in commands if c is not train and c is not sample]
    for argv in (train, sample):
        done = subprocess.run([sys.executable, "-m", "facegan", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        if argv is train:
            # the lines make demo ends with, as the README quotes them
            assert "samples:   runs/tiny/samples/epoch_001.png" in done.stdout, done.stdout
            assert "loss plot: runs/tiny/losses.png" in done.stdout, done.stdout
    # ... the rest in this one, which saves a few seconds of imports each
    for argv in commands:
        assert main(argv) == 0, shlex.join(argv)

    run = tmp_path / "runs/tiny"
    assert (run / "samples/epoch_002.png").exists()  # resumed to a second epoch
    outputs = ["grid.png", "data/synthetic_faces", "g.safetensors", "g.json", "g.pt2", "runs/tiny/view_samples.png"]
    assert [o for o in outputs if not (tmp_path / o).exists()] == []
    # every file "Where the outputs go" names is in the run folder
    where = README.read_text().split("## Where the outputs go", 1)[1].split("\n## ", 1)[0]
    named = [n for n in INLINE.findall(where) if re.fullmatch(r"[\w/]+(\.\w+|/)", n) and n != "runs/"]
    assert len(named) >= 6, named
    assert [n for n in named if not (run / n).exists()] == []


# ---------------------------------------------------------------------------------------------
# 5. the README reads in a minute, and its figures are the ledger's

README_MAX_WORDS = 900  # prose words, outside code blocks and comments (1,314 before the ledger; 866 after)
README_MAX_WIDTH = 120  # characters a prose line; code blocks and tables may be wider

SPREAD = re.compile(r"\d+\.\d+ ?(?:±|\+-) ?\d+\.\d+")


def _readable(text: str) -> str:
    """What a reader reads: the prose, without HTML comments."""
    return re.sub(r"<!--.*?-->", "", _prose(text), flags=re.S)


def test_the_readme_reads_in_a_minute():
    text = README.read_text()
    words = len(_readable(text).split())
    assert words <= README_MAX_WORDS, f"README.md has {words} words of prose; move detail into docs/"
    wide = [line for line in _prose(text).splitlines() if len(line) > README_MAX_WIDTH and not line.startswith("|")]
    assert not wide, f"README.md has prose lines over {README_MAX_WIDTH} characters: {wide}"


def test_every_figure_the_readme_quotes_from_the_ledger_matches_it():
    from bench import ledger

    text, rows = README.read_text(), ledger.load()
    QUOTED = ledger.QUOTED  # a figure, then its key: 39.2 ± 2.8 (3 seeds)<!-- ledger: EXP/RECIPE -->
    quotes = QUOTED.findall(text)
    assert len(quotes) >= 3, "the README quotes the ledger's headline figures, each marked <!-- ledger: EXP/RECIPE -->"
    assert len(quotes) == text.count("<!-- ledger:"), "a ledger marker must follow its figure: 'M ± S (N seeds)<!-- ...'"
    wrong = []
    for mean, sd, seeds, experiment, recipe in quotes:
        quoted = f"{mean} ± {sd} ({seeds} seeds)" if sd else f"{mean} ({seeds} seed{'' if seeds == '1' else 's'})"
        try:
            expected = ledger.quote(rows, experiment, recipe)
        except LookupError as e:
            wrong.append(str(e))
            continue
        if quoted != expected:
            wrong.append(f"{experiment}/{recipe}: the README says {quoted}, the ledger {expected}")
    assert not wrong, "; ".join(wrong) + " (.venv/bin/python -m bench.ledger rewrites them)"
    assert ledger.refresh_quotes(text, rows) == text
    # and no other mean ± sd: a figure typed into the README without its source drifts
    unmarked = SPREAD.findall(QUOTED.sub("", text))
    assert not unmarked, f"README.md quotes {unmarked} without a <!-- ledger: ... --> marker"


def test_the_ledger_summarises_seeds_as_the_docs_quote_them():
    from bench import ledger

    rows = [dict(experiment="e", recipe="r", seed=s, fid=f) for s, f in ((0, 36.1), (1, 41.6), (2, 39.9))]
    mean, sd, seeds = ledger.summary(rows, "e", "r")
    assert (round(mean, 1), round(sd, 1), seeds) == (39.2, 2.8, 3)  # the sample standard deviation
    assert ledger.quote(rows, "e", "r") == "39.2 ± 2.8 (3 seeds)"
    assert ledger.quote(rows[:1], "e", "r") == "36.1 (1 seed)"
    assert ledger.quote([dict(experiment="e", recipe="r", seed=None, fid=44.5)], "e", "r") == "44.5"  # a mean alone
    with pytest.raises(LookupError):
        ledger.summary(rows, "e", "nonesuch")


def test_every_ledger_row_is_complete_and_belongs_to_a_described_experiment():
    from bench import ledger

    rows, described = ledger.load(), ledger.experiments()
    for row in rows:
        ledger.validate(row)
    assert {r["experiment"] for r in rows} <= set(described)
    for key, info in described.items():
        assert {"title", "protocol", "log"} <= set(info), key
        log = info["log"].partition("#")
        assert (ROOT / "docs" / log[0]).is_file(), f"{key}: no docs/{log[0]}"
        assert not log[2] or log[2] in _anchors(ROOT / "docs" / log[0]), f"{key}: no #{log[2]} in docs/{log[0]}"


def test_the_ledger_appends_whole_rows_atomically(tmp_path):
    from bench import ledger

    path = tmp_path / "ledger.json"
    row = dict(experiment="e", recipe="cpu", flags="--preset cpu", seed=0, images=603136, minutes=30.0,
               machine="2 CPU cores", fid=39.9, kid=0.029, n=2000, date="2026-12-07", command="make demo")
    ledger.record([row], path)
    ledger.record([{**row, "seed": 1, "fid": 41.6, "note": "alone"}], path)
    assert [r["fid"] for r in ledger.load(path)] == [39.9, 41.6]
    before = path.read_text()
    for bad in ({k: v for k, v in row.items() if k != "fid"}, {**row, "colour": "red"}, {**row, "seed": "0"},
                {**row, "date": "7 Dec 2026"}):
        with pytest.raises(ledger.LedgerError):
            ledger.record([row, bad], path)  # one bad row: none is written
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.json"]  # no temporary file left behind
    assert ledger.train_flags("cpu", {"lr_d": 8e-4, "augment": "", "amp": False, "seed": 2}) == \
        "--preset cpu --lr-d 0.0008 --augment '' --no-amp"


def test_docs_results_md_is_the_ledgers_rendering():
    from bench import ledger

    assert (ROOT / "docs/results.md").read_text() == ledger.render_table(), \
        "docs/results.md is stale: run .venv/bin/python -m bench.ledger"


def test_the_recipe_table_of_preset_auto_is_the_ledgers():
    from bench import ledger

    table = json.loads((ROOT / "facegan/training/recipe_fid.json").read_text())
    assert table == ledger.recipe_curves(ledger.load()), "stale: run .venv/bin/python -m bench.ledger"
    assert {"cpu", "quality"} <= set(table["recipes"])  # the CPU and the GPU recipe, at least
