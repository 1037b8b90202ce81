"""Code shown in the docs is included from the source, so it cannot drift from it.

A region of a source file is marked by two comment lines,

    # docs: begin NAME
    ...
    # docs: end NAME

and a doc (README.md or docs/*.md) shows it by an HTML comment directly above a fenced block:

    <!-- include: facegan/training/loop.py#loop -->
    ```python
    ...
    ```

The tests hold each such block equal to its region (marker lines left out, leading and trailing
blank lines dropped, dedented), fail on a missing file or marker with a line naming it, and fail
on a marker pair no doc includes. After changing marked code, refresh every included block with

    .venv/bin/python tests/test_doc_excerpts.py --write

(without --write it only checks, and exits 1 naming each stale block). Code not worth marking is
linked to from the docs instead of copied.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WRITE = ".venv/bin/python tests/test_doc_excerpts.py --write"

MARKER = re.compile(r"^[ \t]*# docs: (begin|end) ([\w.-]+)[ \t]*$")
INCLUDE = re.compile(r"^<!-- include: ([^#\s]+)#([\w.-]+) -->[ \t]*$")
FENCE_OPEN = re.compile(r"^```([\w+-]*)[ \t]*$")
LANGUAGES = {".py": "python", ".toml": "toml", ".json": "json", ".sh": "bash"}


def doc_files(root: Path = ROOT) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def source_files(root: Path = ROOT) -> list[Path]:
    return sorted((root / "facegan").rglob("*.py"))


# ---------------------------------------------------------------------------------------------
# the two sides: marked regions of the source, included blocks of the docs


class MarkerError(Exception):
    """A marker pair that is not a pair: one line naming the file, line and fix."""


def regions(path: Path) -> dict[str, str]:
    """The marked regions of a source file, by name: the lines between `# docs: begin NAME` and
    `# docs: end NAME` (any marker line among them left out), without leading or trailing blank
    lines, dedented. Raises MarkerError for an end without a begin, a begin without an end, or
    a name used twice in the file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    open_at: dict[str, int] = {}
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        kind, name = m.groups()
        if kind == "begin":
            if name in open_at or name in found:
                raise MarkerError(f"{path}:{i + 1}: a second '# docs: begin {name}' (a name is used once a file)")
            open_at[name] = i
        else:
            if name not in open_at:
                raise MarkerError(f"{path}:{i + 1}: '# docs: end {name}' without a '# docs: begin {name}' above it")
            body = [line for line in lines[open_at.pop(name) + 1:i] if not MARKER.match(line)]
            while body and not body[0].strip():
                body.pop(0)
            while body and not body[-1].strip():
                body.pop()
            found[name] = textwrap.dedent("\n".join(body) + "\n") if body else ""
    if open_at:
        name, i = next(iter(open_at.items()))
        raise MarkerError(f"{path}:{i + 1}: '# docs: begin {name}' has no '# docs: end {name}' below it")
    return found


@dataclass
class Include:
    doc: Path
    line: int           # 1-based line of the <!-- include: --> comment
    target: str         # the source file, relative to the repository root
    name: str           # the marker pair's name
    language: str       # the fence's info string; "" when there is no fenced block
    body: str | None    # the fenced block's text; None when no block follows the comment
    span: tuple[int, int]  # the lines (0-based, end exclusive) the block occupies, fences included

    @property
    def key(self) -> str:
        return f"{self.target}#{self.name}"

    def where(self, root: Path) -> str:
        return f"{self.doc.relative_to(root)}:{self.line}"


def includes(doc: Path) -> list[Include]:
    """The <!-- include: FILE#NAME --> comments of a doc and the fenced block directly below each."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found = []
    for i, line in enumerate(lines):
        m = INCLUDE.match(line)
        if not m:
            continue
        fence = FENCE_OPEN.match(lines[i + 1]) if i + 1 < len(lines) else None
        end = next((j for j in range(i + 2, len(lines)) if lines[j].rstrip() == "```"), None) if fence else None
        if fence is None or end is None:
            found.append(Include(doc, i + 1, m.group(1), m.group(2), "", None, (i + 1, i + 1)))
        else:
            body = "".join(f"{text}\n" for text in lines[i + 2:end])
            found.append(Include(doc, i + 1, m.group(1), m.group(2), fence.group(1), body, (i + 1, end + 1)))
    return found


# ---------------------------------------------------------------------------------------------
# the check and the refresh


def expected(inc: Include, root: Path = ROOT) -> str:
    """The text the include's block must hold; AssertionError naming the fix when there is none."""
    path = root / inc.target
    if not path.is_file():
        raise AssertionError(f"{inc.where(root)}: includes {inc.key}, but {inc.target} does not exist; "
                             f"fix the path or remove the include")
    try:
        marked = regions(path)
    except MarkerError as e:
        raise AssertionError(f"{inc.where(root)}: includes {inc.key}, but {e}") from None
    if inc.name not in marked:
        raise AssertionError(f"{inc.where(root)}: includes {inc.key}, but {inc.target} has no "
                             f"'# docs: begin {inc.name}' / '# docs: end {inc.name}' pair"
                             + (f" (it has: {', '.join(sorted(marked))})" if marked else ""))
    return marked[inc.name]


def stale(inc: Include, root: Path = ROOT) -> str | None:
    """None when the include's block equals its source region; else what is wrong, with a diff."""
    want = expected(inc, root)
    if inc.body is None:
        return f"{inc.where(root)}: no fenced block directly below the include of {inc.key}; run {WRITE}"
    if inc.body == want:
        return None
    diff = difflib.unified_diff(inc.body.splitlines(), want.splitlines(), f"{inc.doc.name} (the doc)",
                                f"{inc.key} (the source)", lineterm="", n=1)
    shown = list(diff)[:40]
    return (f"{inc.where(root)}: the block differs from {inc.key}; run {WRITE}\n" + "\n".join(shown))


def unused_markers(root: Path = ROOT) -> list[str]:
    """Marker pairs in facegan/ that no doc includes (each as FILE#NAME)."""
    included = {inc.key for doc in doc_files(root) for inc in includes(doc)}
    unused = []
    for path in source_files(root):
        rel = path.relative_to(root).as_posix()
        unused += [f"{rel}#{name}" for name in regions(path) if f"{rel}#{name}" not in included]
    return unused


def problems(root: Path = ROOT) -> list[str]:
    """Everything wrong, one entry per include or marker: what `main()` reports."""
    found = []
    for doc in doc_files(root):
        for inc in includes(doc):
            try:
                problem = stale(inc, root)
            except AssertionError as e:
                problem = str(e)
            if problem:
                found.append(problem)
    try:
        found += [f"{key}: no doc includes this marker pair; include it or remove the markers"
                  for key in unused_markers(root)]
    except MarkerError as e:
        found.append(str(e))
    return found


def write(root: Path = ROOT) -> list[str]:
    """Rewrite every included block from its source region (a block is added below an include
    that has none); returns the includes it changed. An include whose file or marker is missing
    raises AssertionError naming it, before any doc is written."""
    changed = []
    new_texts = {}
    for doc in doc_files(root):
        lines = doc.read_text(encoding="utf-8").splitlines()
        wanted = [(inc, expected(inc, root)) for inc in includes(doc)]
        here: list[str] = []
        for inc, want in reversed(wanted):  # from the bottom, so the earlier spans stay valid
            if inc.body == want:
                continue
            language = inc.language or LANGUAGES.get(Path(inc.target).suffix, "")
            lines[inc.span[0]:inc.span[1]] = [f"```{language}", *want.splitlines(), "```"]
            here.insert(0, f"{inc.where(root)} {inc.key}")
        if here:
            new_texts[doc] = "\n".join(lines) + "\n"
            changed += here
    for doc, text in new_texts.items():
        doc.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check (or with --write, refresh) the code blocks the docs "
                                                 "include from facegan/ by '# docs: begin/end NAME' markers.")
    parser.add_argument("--write", action="store_true", help="rewrite every included block from the source")
    args = parser.parse_args(argv)
    if args.write:
        try:
            changed = write()
        except AssertionError as e:
            print(e, file=sys.stderr)
            return 1
        print("\n".join(f"rewrote {c}" for c in changed) or "every included block is up to date")
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


# ---------------------------------------------------------------------------------------------
# the tests


def _all_includes() -> list[Include]:
    return [inc for doc in doc_files() for inc in includes(doc)]


@pytest.mark.parametrize("inc", _all_includes(), ids=lambda inc: f"{inc.doc.name}:{inc.key}")
def test_each_included_block_equals_its_source_region(inc):
    problem = stale(inc)
    assert problem is None, problem


def test_the_docs_include_something():
    keys = {inc.key for inc in _all_includes()}
    assert "facegan/training/loop.py#loop" in keys, "docs/architecture.md shows the training loop by an include"


def test_every_marker_pair_is_included_by_some_doc():
    unused = unused_markers()
    assert not unused, ("marker pairs no doc includes (include them with <!-- include: FILE#NAME --> or remove "
                        "the markers): " + ", ".join(unused))


def _project(tmp_path: Path, source: str, doc: str) -> Path:
    (tmp_path / "facegan").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "facegan" / "mod.py").write_text(source, encoding="utf-8")
    (tmp_path / "docs" / "guide.md").write_text(doc, encoding="utf-8")
    return tmp_path


SOURCE = """def f(x):
    y = x + 1
    # docs: begin core

    if y > 2:
        return y * 2
    # docs: end core
    return y
"""


def test_the_checker_catches_a_stale_block_and_write_refreshes_it(tmp_path):
    doc = ("# Guide\n\nThe core:\n\n<!-- include: facegan/mod.py#core -->\n```python\nif y > 2:\n"
           "    return y * 3\n```\n\nAfter.\n")
    root = _project(tmp_path, SOURCE, doc)
    (inc,) = includes(root / "docs" / "guide.md")
    assert expected(inc, root) == "if y > 2:\n    return y * 2\n"  # dedented, blank line and markers dropped
    found = problems(root)
    assert len(found) == 1 and "docs/guide.md:5: the block differs from facegan/mod.py#core" in found[0]
    assert "-    return y * 3" in found[0] and "+    return y * 2" in found[0] and "--write" in found[0]

    assert write(root) == ["docs/guide.md:5 facegan/mod.py#core"]
    assert problems(root) == []
    text = (root / "docs" / "guide.md").read_text()
    assert text == doc.replace("y * 3", "y * 2")  # only the block changed
    assert write(root) == []  # nothing left to refresh


def test_write_adds_a_missing_block(tmp_path):
    root = _project(tmp_path, SOURCE, "# Guide\n\n<!-- include: facegan/mod.py#core -->\n\nAfter.\n")
    assert "no fenced block directly below the include of facegan/mod.py#core" in problems(root)[0]
    write(root)
    assert (root / "docs" / "guide.md").read_text() == (
        "# Guide\n\n<!-- include: facegan/mod.py#core -->\n```python\nif y > 2:\n    return y * 2\n```\n\nAfter.\n")
    assert problems(root) == []


def test_a_missing_file_or_marker_fails_with_a_line_naming_it(tmp_path):
    doc = ("<!-- include: facegan/gone.py#core -->\n```python\nx\n```\n"
           "<!-- include: facegan/mod.py#nonesuch -->\n```python\nx\n```\n")
    root = _project(tmp_path, SOURCE, doc)
    found = problems(root)
    assert found[0] == ("docs/guide.md:1: includes facegan/gone.py#core, but facegan/gone.py does not exist; "
                        "fix the path or remove the include")
    assert found[1] == ("docs/guide.md:5: includes facegan/mod.py#nonesuch, but facegan/mod.py has no "
                        "'# docs: begin nonesuch' / '# docs: end nonesuch' pair (it has: core)")
    assert found[2] == "facegan/mod.py#core: no doc includes this marker pair; include it or remove the markers"
    with pytest.raises(AssertionError, match="facegan/gone.py does not exist"):
        write(root)
    assert (root / "docs" / "guide.md").read_text() == doc  # nothing written


@pytest.mark.parametrize("source, complaint", [
    ("# docs: begin a\nx = 1\n", "'# docs: begin a' has no '# docs: end a' below it"),
    ("x = 1\n# docs: end a\n", "'# docs: end a' without a '# docs: begin a' above it"),
    ("# docs: begin a\n# docs: end a\n# docs: begin a\n# docs: end a\n", "a second '# docs: begin a'"),
])
def test_a_broken_marker_pair_is_named(tmp_path, source, complaint):
    root = _project(tmp_path, source, "<!-- include: facegan/mod.py#a -->\n```python\n```\n")
    found = problems(root)
    assert found and complaint in found[0]


if __name__ == "__main__":
    sys.exit(main())
