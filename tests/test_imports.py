"""The package's import structure (issue 17): no module of facegan/ imports, directly or
through others, a module that imports it back, and the training path stays free of matplotlib."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "facegan"
INIT = "facegan"  # the package itself: facegan/__init__.py


def module_name(path: Path) -> str:
    return INIT if path.stem == "__init__" else path.stem


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The facegan modules that `path` imports anywhere in it (at module level or inside a
    function: a lazy import only defers a cycle, the design still has it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == INIT:
                    found.add(parts[1] if len(parts) > 1 else INIT)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:             # from .x import y / from . import x
                base = node.module
            elif node.level == 0 and node.module and node.module.split(".")[0] == INIT:
                base = node.module.split(".", 1)[1] if "." in node.module else None
            else:
                continue
            if base is not None:            # from .x import y: module x
                found.add(base.split(".")[0])
            else:                           # from . import x: module x, or a name of __init__
                found.update(alias.name if alias.name in modules else INIT for alias in node.names)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.glob("*.py"))
    modules = {module_name(p) for p in paths}
    # Any `import facegan.x` also runs __init__; that is Python's doing, not an edge of the design.
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle reachable by depth-first search, each once (started at its
    alphabetically first module), as [a, b, ..., a]."""
    cycles = set()

    def visit(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                cycles.add(tuple(path + [start]))
            elif nxt > start and nxt not in path:
                visit(start, nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, start, [start])
    return [list(c) for c in sorted(cycles, key=lambda c: (len(c), c))]


def test_the_graph_sees_every_kind_of_import(tmp_path):
    modules = {INIT, "a", "b", "c", "d", "e", "f"}
    source = tmp_path / "x.py"
    source.write_text("import facegan.a\nfrom facegan.b import thing\nfrom . import c, Generator\n"
                      "from .d import y\nimport numpy\nfrom facegan import e\n"
                      "def lazy():\n    from .f import z\n", encoding="utf-8")
    assert imported_modules(source, modules) == {"a", "b", "c", INIT, "d", "e", "f"}
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}) == [["d", "d"], ["a", "b", "c", "a"]]


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert "tone" in graph and "soft_ita" not in graph  # the graph is of modules, and sees facegan/
    cycles = find_cycles(graph)
    assert not cycles, "import cycles in facegan/: " + "; ".join(" -> ".join(c) for c in cycles)


def test_training_does_not_import_matplotlib():
    code = ("import sys\n"
            "import facegan.train, facegan.step, facegan.recorder, facegan.data, facegan.losses, facegan.tone\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
            "print(loaded[:5])\n"
            "sys.exit(1 if loaded else 0)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"the training path imports matplotlib: {run.stdout}{run.stderr}"
