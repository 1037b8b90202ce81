"""The learner's copy of the course notebook: each solution taken out, a hint left in its place.

Solutions are marked as nbgrader marks them, and each carries its hint on the line right
after BEGIN SOLUTION, in a code cell of dlnd_face_generation.ipynb:

    def scale(x, feature_range=(-1, 1)):
        ### BEGIN SOLUTION
        # HINT: stretch [0, 1] to the width of feature_range, then shift it to its minimum
        lo, hi = feature_range
        return x * (hi - lo) + lo
        ### END SOLUTION

`exercise_notebook` replaces each region, markers and hint included, at the indentation of
its BEGIN line, by

        # TODO: stretch [0, 1] to the width of feature_range, then shift it to its minimum
        raise NotImplementedError("stretch [0, 1] to the width of feature_range, then shift it to its minimum")

so running the exercise stops at the first piece left to write, with its hint. It also
clears every code cell's outputs and execution count. A region without its hint line, or
left open, nested or closed without opening, is refused (naming the cell), so a broken
marker can never carry a solution into the exercise.

The notebook is plain JSON (nbformat 4), read and written here without nbformat, which is
only a test dependency. It is not part of the installed package: `facegan exercise` finds
it in the current folder or in the repository facegan runs from, or takes --notebook.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..utils.atomic import atomic_write_bytes

SOLUTION_NAME = "dlnd_face_generation.ipynb"
EXERCISE_NAME = "dlnd_face_generation_exercise.ipynb"
BEGIN, END, HINT = "### BEGIN SOLUTION", "### END SOLUTION", "# HINT:"
TODO = "# TODO:"


@dataclass
class Region:
    """One solution region of a cell's source: lines [begin, end] (the markers included)."""
    begin: int
    end: int
    indent: str
    hint: str
    body: list[str]  # the solution's lines, between the hint and END

    def stub(self) -> list[str]:
        return [f"{self.indent}{TODO} {self.hint}\n",
                f"{self.indent}raise NotImplementedError({json.dumps(self.hint, ensure_ascii=False)})\n"]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def solution_regions(source: str, where: str = "the cell") -> list[Region]:
    """The solution regions of one cell's source, in order; a malformed one raises ConfigError."""
    lines = source.splitlines(keepends=True)
    regions, open_at = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == BEGIN:
            if open_at is not None:
                raise ConfigError(f"{where}, line {i + 1}: {BEGIN} inside the region opened on line "
                                  f"{open_at + 1}; close it with {END} first")
            open_at = i
        elif text == END:
            if open_at is None:
                raise ConfigError(f"{where}, line {i + 1}: {END} without a {BEGIN} before it")
            hint_line = lines[open_at + 1].strip() if open_at + 1 < i else ""
            hint = hint_line[len(HINT):].strip() if hint_line.startswith(HINT) else ""
            if not hint:
                raise ConfigError(f"{where}, line {open_at + 2}: a solution region must start with its hint, "
                                  f"a line '{HINT} <what to write>' right after {BEGIN}")
            indent = lines[open_at][:len(lines[open_at]) - len(lines[open_at].lstrip())]
            regions.append(Region(open_at, i, indent, hint, lines[open_at + 2:i]))
            open_at = None
    if open_at is not None:
        raise ConfigError(f"{where}, line {open_at + 1}: {BEGIN} is never closed by {END}")
    return regions


def stub_source(source: str, where: str = "the cell") -> tuple[str, int]:
    """The source with each solution region replaced by its stub, and how many there were."""
    lines = source.splitlines(keepends=True)
    regions = solution_regions(source, where)
    for region in reversed(regions):  # from the end, so earlier line numbers stay valid
        stub = region.stub()
        if region.end + 1 == len(lines) and not lines[region.end].endswith("\n"):
            stub[-1] = stub[-1].rstrip("\n")  # the cell ended with the region: no new trailing newline
        lines[region.begin:region.end + 1] = stub
    return "".join(lines), len(regions)


def exercise_notebook(solution: dict) -> tuple[dict, int]:
    """The exercise built from a solution notebook (nbformat 4 JSON as a dict), and the number
    of regions stubbed; the solution is not changed."""
    if not isinstance(solution, dict) or solution.get("nbformat") != 4 or not isinstance(solution.get("cells"), list):
        raise ConfigError("not a Jupyter notebook in nbformat 4 (a JSON object with 'cells')")
    _check_cells(solution["cells"])
    nb, stubbed = copy.deepcopy(solution), 0
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source, n = stub_source(_source(cell), f"code cell {index}")
        if n:
            cell["source"] = source.splitlines(keepends=True)
            stubbed += n
        cell["outputs"] = []
        cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)  # timings of the run that made the outputs
    if not stubbed:
        raise ConfigError(f"the notebook has no {BEGIN} regions: nothing for an exercise to leave out")
    return nb, stubbed


def _check_cells(cells: list) -> None:
    """Each cell the shape nbformat 4 gives it, so a hand-edited or foreign file is named, not a traceback."""
    for index, cell in enumerate(cells):
        where = f"not a Jupyter notebook in nbformat 4: cell {index}"
        if not isinstance(cell, dict):
            raise ConfigError(f"{where} is a JSON {type(cell).__name__}, not an object")
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(s, str) for s in source)):
            raise ConfigError(f"{where} has a 'source' that is not text or a list of lines")
        if not isinstance(cell.get("metadata", {}), dict):
            raise ConfigError(f"{where} has a 'metadata' that is not an object")


def find_solution_notebook(notebook: str | Path | None = None, search: list[Path] | None = None) -> Path:
    """The solution notebook: `notebook` if given, else the first of `search` (default: the
    current folder, then the root of the repository this package runs from) that holds it."""
    if notebook is not None:
        path = Path(notebook)
        if not path.is_file():
            raise ConfigError(f"--notebook {path}: no such file; give the path of {SOLUTION_NAME}")
        return path
    if search is None:
        search = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for folder in search:
        if (folder / SOLUTION_NAME).is_file():
            return folder / SOLUTION_NAME
    raise ConfigError(f"{SOLUTION_NAME} is not installed with the facegan package: run this in a clone of "
                      f"the facegan repository (the notebook is at its root), or pass --notebook PATH")


def _is_solution(out: Path, source: Path) -> bool:
    """`out` is the solution notebook: by name, or through a symlink, or as the same file."""
    try:
        resolved = out.resolve()
    except (OSError, RuntimeError):  # a symlink loop: not a notebook of ours
        resolved = out
    return SOLUTION_NAME in (out.name, resolved.name) or _same_file(out, source)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_exercise(out: str | Path = EXERCISE_NAME, notebook: str | Path | None = None,
                   force: bool = False) -> tuple[Path, int]:
    """Write the exercise of the solution notebook to `out`; returns (out, regions stubbed).
    Refuses, before writing, an `out` that is the solution notebook or bears its name (even with
    force), and an `out` that exists unless force: it may be the learner's own work."""
    source = find_solution_notebook(notebook)
    out = Path(out)
    if _is_solution(out, source):
        raise ConfigError(f"--out {out} would overwrite the solution notebook; choose another name, "
                          f"e.g. --out {EXERCISE_NAME}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name, e.g. --out {out / EXERCISE_NAME}")
    if not force and (out.exists() or out.is_symlink()):
        raise ConfigError(f"--out {out} already exists and may hold your work; choose another --out, or "
                          f"pass --force to replace it with a fresh exercise")
    try:
        solution = json.loads(source.read_text(encoding="utf-8"))
    except RecursionError:
        raise ConfigError(f"{source} is not a notebook (its JSON is nested too deeply); "
                          f"restore it from the repository") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{source} is not a readable notebook ({e}); restore it from the repository") from None
    try:
        nb, stubbed = exercise_notebook(solution)
        # nbformat's own layout (Jupyter writes the same), so the file diffs cleanly against the solution
        text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    except RecursionError:  # deep enough to load, too deep to copy or write
        raise ConfigError(f"{source} is not a usable notebook (its JSON is nested too deeply); "
                          f"restore it from the repository") from None
    atomic_write_bytes(out, text.encode("utf-8"))
    return out, stubbed
