"""The exercise notebook (`python -m facegan exercise`, facegan/commands/exercise_notebook.py): generated from the
solution notebook, so the two cannot drift apart.

Two tests execute notebooks on the tiny parameters of tests/test_notebook.py: the exercise stops at
its first stub with that stub's hint, and the exercise with each solution pasted back passes
every check of sections 2 to 8. That second run stops after section 8's check of the
training step, before the full training run (tests/test_notebook.py runs that).
"""
import json
import os

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from facegan.commands.cli import main
from facegan.commands.exercise_notebook import (
    BEGIN,
    END,
    EXERCISE_NAME,
    HINT,
    TODO,
    exercise_notebook,
    find_solution_notebook,
    solution_regions,
    stub_source,
)
from facegan.errors import ConfigError
from tests.conftest import one_line_error
from tests.test_notebook import NOTEBOOK, ROOT, TINY, with_parameters


def solution() -> dict:
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def code(cell: dict) -> str:
    return "".join(cell["source"])


def paste_solutions_back(exercise: dict, solution: dict) -> dict:
    """What a learner who writes exactly the solutions hands in: each stub of the exercise
    replaced by the code of its solution region (without the markers and the hint)."""
    filled = json.loads(json.dumps(exercise))
    for cell, original in zip(filled["cells"], solution["cells"]):
        regions = iter(solution_regions(code(original)))
        lines, out = code(cell).splitlines(keepends=True), []
        i = 0
        while i < len(lines):
            if lines[i].lstrip().startswith(TODO):
                region = next(regions)
                stub = f"raise NotImplementedError({json.dumps(region.hint, ensure_ascii=False)})"
                assert lines[i + 1].strip() == stub
                out += region.body
                i += 2
            else:
                out.append(lines[i])
                i += 1
        assert next(regions, None) is None, "a solution region has no stub in the exercise"
        cell["source"] = "".join(out)
    return filled


def run(nb: dict, cwd, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    node = with_parameters(nbformat.reads(json.dumps(nb), as_version=4), TINY)  # sources joined into strings
    NotebookClient(node, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return node


def test_every_solution_region_becomes_a_stub_with_its_hint():
    sol = solution()
    ex, stubbed = exercise_notebook(sol)
    regions = [r for c in sol["cells"] if c["cell_type"] == "code" for r in solution_regions(code(c))]
    assert stubbed == len(regions) >= 9  # scale, D (2), G (2), init, losses (2), optimizers, train_step
    assert len(ex["cells"]) == len(sol["cells"])
    text = "".join(code(c) for c in ex["cells"] if c["cell_type"] == "code")
    for marker in (BEGIN, END, HINT):
        assert marker not in text
    for region in regions:
        assert f"{TODO} {region.hint}\n" in text and f'raise NotImplementedError("{region.hint}")' in text
        for line in region.body:  # no line of a solution is left in the exercise
            if line.strip() and not line.strip().startswith("#"):
                assert line not in text.splitlines(keepends=True), line
    for cell, original in zip(ex["cells"], sol["cells"]):
        assert cell["cell_type"] == original["cell_type"] and cell.get("id") == original.get("id")
        if cell["cell_type"] == "markdown":
            assert cell == original
        else:
            assert cell["outputs"] == [] and cell["execution_count"] is None
            assert "execution" not in cell["metadata"]
    assert any(c.get("outputs") for c in sol["cells"]), "the solution itself was left as it was"
    nbformat.validate(nbformat.reads(json.dumps(ex), as_version=4))
    # the pasted-back solutions are the solution notebook's code, markers and hints aside
    filled = paste_solutions_back(ex, sol)
    for cell, original in zip(filled["cells"], sol["cells"]):
        kept = [line for line in code(original).splitlines(keepends=True)
                if line.strip() not in (BEGIN, END) and not line.strip().startswith(HINT)]
        assert code(cell) == "".join(kept)


@pytest.mark.parametrize("source,problem", [
    (f"x = 1\n{BEGIN}\ny = 2\n{END}\n", "must start with its hint"),
    (f"{BEGIN}\n{HINT}  \ny = 2\n{END}\n", "must start with its hint"),
    (f"{BEGIN}\n{HINT} h\ny = 2\n", "never closed"),
    (f"{BEGIN}\n{HINT} h\n{BEGIN}\n{HINT} h\n{END}\n{END}\n", "inside the region"),
    (f"y = 2\n{END}\n", "without a"),
])
def test_broken_markers_are_refused_naming_the_cell(source, problem):
    with pytest.raises(ConfigError, match=problem) as e:
        stub_source(source, "code cell 7")
    assert "code cell 7" in str(e.value) and "\n" not in str(e.value)


def test_a_stub_keeps_the_indentation_and_quotes_its_hint():
    source = f'def f():\n    {BEGIN}\n    {HINT} say "hi" \\ twice\n    return 1\n    {END}\n\nf()'
    stubbed, n = stub_source(source)
    assert n == 1
    assert stubbed == (f'def f():\n    {TODO} say "hi" \\ twice\n'
                       f'    raise NotImplementedError("say \\"hi\\" \\\\ twice")\n\nf()')
    namespace = {}
    exec(stubbed.replace("\nf()", ""), namespace)
    with pytest.raises(NotImplementedError, match=r'say "hi" \\ twice'):
        namespace["f"]()


def test_the_command_writes_the_exercise_and_never_the_solution(tmp_path, capsys):
    before = NOTEBOOK.read_bytes()
    out = tmp_path / "mine.ipynb"
    assert main(["exercise", "--out", str(out)]) == 0
    assert "TODO" in capsys.readouterr().out
    assert json.loads(out.read_text(encoding="utf-8")) == exercise_notebook(solution())[0]
    for target in (NOTEBOOK, tmp_path / NOTEBOOK.name):
        assert main(["exercise", "--out", str(target)]) == 1
        err = capsys.readouterr().err.strip()
        assert "would overwrite the solution notebook" in err and EXERCISE_NAME in err and "\n" not in err
    assert NOTEBOOK.read_bytes() == before and not (tmp_path / NOTEBOOK.name).exists()
    again = ["exercise", "--out", str(tmp_path / "again.ipynb"), "--notebook", str(out)]
    assert main(again) == 1  # an exercise has no solutions left to take out
    assert "no ### BEGIN SOLUTION regions" in capsys.readouterr().err


def test_an_existing_out_is_refused_and_force_replaces_it(tmp_path, monkeypatch, capsys):
    # The README's command, run a second time, must not replace the learner's work.
    monkeypatch.chdir(tmp_path)
    readme = ["exercise", "--out", "my_face_generation.ipynb"]
    assert main(readme) == 0
    mine = tmp_path / "my_face_generation.ipynb"
    mine.write_text('{"my": "work"}', encoding="utf-8")
    before = mine.read_bytes()
    capsys.readouterr()
    assert main(readme) == 1
    one_line_error(capsys, "my_face_generation.ipynb", "already exists", "--force")
    assert mine.read_bytes() == before
    assert main([*readme, "--force"]) == 0
    assert json.loads(mine.read_text(encoding="utf-8")) == exercise_notebook(solution())[0]


def test_force_never_overwrites_the_solution_notebook_even_through_a_symlink(tmp_path, capsys):
    before = NOTEBOOK.read_bytes()
    copy = tmp_path / "copy" / NOTEBOOK.name
    copy.parent.mkdir()
    copy.write_bytes(before)
    (tmp_path / "link.ipynb").symlink_to(NOTEBOOK)
    (tmp_path / "link-to-copy.ipynb").symlink_to(copy)
    for target in (NOTEBOOK, tmp_path / "link.ipynb", tmp_path / "link-to-copy.ipynb", copy):
        assert main(["exercise", "--out", str(target), "--force"]) == 1
        one_line_error(capsys, "would overwrite the solution notebook")
    assert NOTEBOOK.read_bytes() == before and copy.read_bytes() == before
    assert (tmp_path / "link.ipynb").is_symlink() and (tmp_path / "link-to-copy.ipynb").is_symlink()


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not a readable notebook"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"nbformat": 4, "cells": {"0": 1}}', "nbformat 4"),
    ('[1, 2]', "nbformat 4"),
    ('{"nbformat": 4, "cells": [3]}', "cell 0"),
    ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": [1, 2]}]}', "cell 0"),
    ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": "", "metadata": []}]}', "cell 0"),
    ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": "x", "metadata": {"a": '
     + "[" * 5000 + "]" * 5000 + "}}]}", "nested too deeply"),
], ids=["not-json", "deep-json", "cells-not-list", "not-object", "cell-not-object", "source-not-text",
        "metadata-not-object", "deep-inside-a-cell"])
def test_a_malformed_notebook_gets_one_line_and_nothing_is_written(tmp_path, capsys, content, needle):
    bad = tmp_path / "bad.ipynb"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "out.ipynb"
    assert main(["exercise", "--notebook", str(bad), "--out", str(out)]) == 1
    one_line_error(capsys, str(bad), needle)
    assert not out.exists() and bad.read_text(encoding="utf-8") == content


def test_the_default_output_is_in_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no notebook here: it is found at the root of the repository
    assert main(["exercise"]) == 0
    assert (tmp_path / EXERCISE_NAME).is_file()


def test_without_the_notebook_the_error_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError) as e:
        find_solution_notebook(search=[tmp_path])
    message = str(e.value)
    assert "not installed with the facegan package" in message and "--notebook" in message
    assert "clone of the facegan repository" in message and "\n" not in message


def test_the_exercise_stops_at_its_first_stub_with_its_hint(tmp_path, monkeypatch):
    sol = solution()
    first = next(r for c in sol["cells"] if c["cell_type"] == "code" for r in solution_regions(code(c)))
    ex, _ = exercise_notebook(sol)
    with pytest.raises(CellExecutionError) as e:
        run(ex, tmp_path, monkeypatch)
    assert e.value.ename == "NotImplementedError"
    assert e.value.evalue == first.hint


def test_pasting_the_solutions_back_passes_every_check(tmp_path, monkeypatch):
    sol = solution()
    filled = paste_solutions_back(exercise_notebook(sol)[0], sol)
    # up to section 8's check of the training step; the full training run is test_notebook.py's
    last = next(i for i, c in enumerate(filled["cells"]) if "tests.check_train_step" in code(c))
    filled["cells"] = filled["cells"][:last + 1]
    nb = run(filled, tmp_path, monkeypatch)
    called = sum(code(c).count("tests.check_") for c in nb.cells if c.cell_type == "code")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert called >= 7 and outputs.count("Tests Passed") == called
    assert "Tests Passed: train_step" in outputs
