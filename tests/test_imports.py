"""The package's import structure: no module of facegan/ imports, directly or through others, a
module that imports it back; each layer imports only the layers below it, as docs/architecture.md
states; and the training path stays free of matplotlib."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facegan"
INIT = "facegan"  # the package itself: facegan/__init__.py
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    """facegan/training/loop.py -> 'training.loop'; a package's __init__ is the package's name."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or INIT


def _resolve(base: str, modules: set[str]) -> str | None:
    """The longest known module that `base` (dotted, below facegan) names or lies in."""
    parts = base.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return ".".join(parts[:i])
    return None


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The facegan modules that `path` imports anywhere in it (at module level or inside a
    function: a lazy import only defers a cycle, the design still has it)."""
    me = module_name(path)
    package = me if path.stem == "__init__" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == INIT:
                    found.add(_resolve(alias.name.partition(".")[2], modules) or INIT)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package if package != INIT else ""
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = ".".join(p for p in (anchor, node.module or "") if p)
            elif node.module and node.module.split(".")[0] == INIT:
                base = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:  # `from .x import y`: module x.y when y is one, else x
                target = _resolve(".".join(p for p in (base, alias.name) if p), modules) or _resolve(base, modules)
                found.add(target or INIT)
    return found & (modules | {INIT})


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    # Any `import facegan.x` also runs __init__; that is Python's doing, not an edge of the design.
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle reachable by depth-first search, each once (started at its
    alphabetically first module), as [a, b, ..., a]."""
    cycles = set()

    def visit(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                cycles.add(tuple(path + [start]))
            elif nxt > start and nxt not in path:
                visit(start, nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, start, [start])
    return [list(c) for c in sorted(cycles, key=lambda c: (len(c), c))]


def documented_layers(text: str) -> list[list[str]]:
    """The layers docs/architecture.md states, top first: the ```text block after its
    <!-- layers --> marker, one layer a line, its units (subpackages or modules) by name."""
    block = re.search(r"<!-- layers -->\s*```text\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no <!-- layers --> block"
    return [line.split("#")[0].split() for line in block.group(1).splitlines() if line.split("#")[0].strip()]


def unit_of(module: str) -> str:
    return module.split(".")[0]


def layering_violations(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Imports of a unit by a unit not above it: each unit may import its own modules and
    those of the layers below its own."""
    rank = {unit: len(layers) - i for i, layer in enumerate(layers) for unit in layer}
    bad = []
    for module, targets in sorted(graph.items()):
        here = unit_of(module)
        if here not in rank:
            continue  # facegan/__init__ and __main__ stand above every layer
        for target in sorted(targets):
            there = unit_of(target)
            if there != here and rank.get(there, len(layers) + 1) >= rank[here]:
                bad.append(f"{module} -> {target}")
    return bad


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "facegan"
    (pkg / "sub").mkdir(parents=True)
    source = pkg / "sub" / "x.py"
    source.write_text("import facegan.a\nfrom facegan.b import thing\nfrom .. import c, Generator\n"
                      "from ..d import y\nimport numpy\nfrom facegan import e\nfrom . import w\n"
                      "def lazy():\n    from ..f.g import z\n", encoding="utf-8")
    global PACKAGE
    saved, PACKAGE = PACKAGE, pkg
    try:
        modules = {"a", "b", "c", "d", "e", "f", "f.g", "sub", "sub.w", "sub.x"}
        assert imported_modules(source, modules) == {"a", "b", "c", INIT, "d", "e", "f.g", "sub.w"}
    finally:
        PACKAGE = saved
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}) == [["d", "d"], ["a", "b", "c", "a"]]


def test_the_layer_check_catches_an_import_from_above():
    layers = [["training"], ["data", "nets"], ["utils"]]
    assert layering_violations({"training.loop": {"data.images", "utils.atomic"}}, layers) == []
    assert layering_violations({"data.images": {"training.loop", "nets.models", "data.tone"}}, layers) == [
        "data.images -> nets.models", "data.images -> training.loop"]


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert "data.tone" in graph and "soft_ita" not in graph  # the graph is of modules, and sees facegan/
    assert "training.step" in graph["training.loop"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in facegan/: " + "; ".join(" -> ".join(c) for c in cycles)


def test_each_layer_imports_only_the_layers_below_it_as_the_docs_state():
    layers = documented_layers(ARCHITECTURE.read_text(encoding="utf-8"))
    graph = import_graph()
    units = {unit_of(m) for m in graph} - {INIT, "__main__"}
    documented = {u for layer in layers for u in layer}
    assert units == documented, f"docs/architecture.md's layers name {sorted(documented)}, facegan/ has {sorted(units)}"
    bad = layering_violations(graph, layers)
    assert not bad, "imports against docs/architecture.md's layers: " + "; ".join(bad)


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_subpackage_says_what_lives_there_and_what_it_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "May import:" in doc, f"facegan/{package}/__init__.py's docstring says what it may import"


def test_training_does_not_import_matplotlib():
    code = ("import sys\n"
            "import facegan.training.loop, facegan.training.step, facegan.data.images, facegan.training.losses\n"
            "import facegan.data.tone\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
            "print(loaded[:5])\n"
            "sys.exit(1 if loaded else 0)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the training path imports matplotlib: {run.stdout}{run.stderr}"


def test_the_notebook_and_its_checks_import_only_the_public_api():
    import nbformat

    import facegan

    sources = {"problem_unittests.py": (ROOT / "problem_unittests.py").read_text(encoding="utf-8")}
    notebook = nbformat.read(ROOT / "dlnd_face_generation.ipynb", as_version=4)
    sources.update({f"notebook cell {i}": c.source for i, c in enumerate(notebook.cells) if c.cell_type == "code"})
    internal, unknown = [], []
    for where, source in sources.items():
        for node in ast.walk(ast.parse("\n".join(line for line in source.splitlines()
                                                 if not line.lstrip().startswith(("%", "!"))))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(INIT):
                if node.module != INIT:
                    internal.append(f"{where}: from {node.module}")
                unknown += [f"{where}: {a.name}" for a in node.names if a.name not in facegan.__all__]
    assert not internal, "import these from facegan (add them to its API): " + "; ".join(internal)
    assert not unknown, "not in facegan.__all__: " + "; ".join(unknown)
