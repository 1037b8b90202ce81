"""Executes dlnd_face_generation.ipynb end to end on tiny synthetic data.

Like papermill: a cell of overrides is inserted after the cell tagged "parameters".
The notebook runs in a temporary folder, so its data and runs stay out of the repo.

Maintainers refresh the committed notebook's outputs (default parameters, a few
minutes on CPU) with:  .venv/bin/python tests/test_notebook.py --write

The notebook's own D and G (sections 3 and 4) are also run here outside it: they must keep
the library's parameter shapes, and train with the library's loop (`train(cfg, D=, G=)`).
"""
import ast
import os
import re
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "dlnd_face_generation.ipynb"

TINY = """
IMAGE_SIZE = 32
BATCH_SIZE = 16
CONV_DIM = 8
Z_SIZE = 16
EPOCHS = 2
N_SYNTHETIC = 64
"""


def with_parameters(nb, overrides: str):
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(overrides))
    return nb


def _final_line_state(text: str) -> str:
    """What a terminal shows: for each line, only what follows its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def coalesce_streams(nb):
    """Merge consecutive stream outputs and drop overwritten progress-bar frames."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if merged and out.output_type == "stream" and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = re.sub(r"\n{3,}", "\n\n", _final_line_state(out.text))
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]
    return nb


def execute(nb, cwd: Path, timeout: int = 900):
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return coalesce_streams(nb)


def test_notebook_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = execute(with_parameters(nbformat.read(NOTEBOOK, as_version=4), TINY), tmp_path, timeout=300)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # every problem_unittests check the notebook calls printed its verdict
    called = sum(c.source.count("tests.check_") for c in nb.cells if c.cell_type == "code")
    assert called >= 8 and outputs.count("Tests Passed") == called
    assert (tmp_path / "runs/notebook/train_samples.pkl").exists()
    assert (tmp_path / "runs/notebook_quality/train_samples.pkl").exists()  # the quality section's run
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    # training images, loss plot, view_samples, progression, course vs quality, tone audit, balanced draws
    assert len(images) >= 7
    assert "TV(real, generated)" in outputs  # the bias section audited real against generated faces
    assert "\r" not in outputs  # progress bars were collapsed to their final state


def test_notebook_switches_to_celeba_with_one_line():
    source = "".join(c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells)
    assert source.count('DATASET = "synthetic"') == 1
    assert 'if DATASET == "celeba"' in source


def test_committed_notebook_has_outputs_without_errors():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(o.output_type != "error" for c in code for o in c.outputs)
    # A cell whose code changed has its outputs cleared (execution count None) until the
    # next refresh; every cell that was run must show its outputs.
    ran = [c for c in code if c.execution_count is not None]
    if len(ran) < len(code):
        warnings.warn(f"{len(code) - len(ran)} code cells of {NOTEBOOK.name} await an output refresh: "
                      f".venv/bin/python tests/test_notebook.py --write", stacklevel=1)
    assert sum(bool(c.outputs) for c in ran) >= len(ran) - 3, "refresh outputs: see module docstring"


# ---------------------------------------------------------------- the notebook's own nets

def notebook_code(image_size: int = 32) -> dict:
    """The functions and classes the notebook's solution cells define, run outside it: a
    namespace holding scale, Discriminator, Generator, weights_init_normal, ..., train_step."""
    import math

    import torch.nn.functional as F
    from torch import nn

    namespace = {"IMAGE_SIZE": image_size, "math": math, "torch": torch, "nn": nn, "F": F}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            tree = ast.parse(cell.source)
            definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Import,
                                                                   ast.ImportFrom))]
            exec(compile(ast.Module(definitions, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def shapes(net) -> list:
    return [tuple(p.shape) for p in net.parameters()]


@pytest.mark.parametrize("image_size", [32, 64, 128])
@pytest.mark.parametrize("conv_dim,z_size", [(64, 100), (8, 16)])
def test_the_notebooks_nets_have_the_librarys_shapes(image_size, conv_dim, z_size):
    from facegan.nets.models import Discriminator, Generator

    nb = notebook_code(image_size)
    D, G = nb["Discriminator"](conv_dim), nb["Generator"](z_size, conv_dim)
    library_D, library_G = Discriminator(conv_dim, image_size), Generator(z_size, conv_dim, image_size)
    assert shapes(D) == shapes(library_D)
    assert shapes(G) == shapes(library_G)
    # Section 12 loads the notebook's checkpoint into the library's Generator, which needs its names too.
    assert list(G.state_dict()) == list(library_G.state_dict())
    assert list(D.state_dict()) == list(library_D.state_dict())


def test_train_trains_the_notebooks_nets_and_resumes_them(tiny_cfg):
    from facegan.generate.export import load_generator
    from facegan.training.loop import train
    from problem_unittests import check_training_run

    nb = notebook_code()

    def nets():
        torch.manual_seed(0)
        D, G = nb["Discriminator"](8), nb["Generator"](16, 8)
        D.apply(nb["weights_init_normal"])
        G.apply(nb["weights_init_normal"])
        return D, G

    straight = train(tiny_cfg(epochs=2, out=tiny_cfg().out + "_straight"), progress=False, D=nets()[0],
                     G=nets()[1])  # the reference: two epochs without a break

    cfg = tiny_cfg(epochs=1)
    D, G = nets()
    initial = [p.detach().clone() for p in G.parameters()]
    first = train(cfg, progress=False, D=D, G=G)
    assert not all(torch.equal(a, b) for a, b in zip(initial, G.parameters()))  # trained in place
    check_training_run(cfg.run_dir)
    for name in ("checkpoints/latest.pt", "train_samples.pkl", "losses.png", "report.html", "samples/epoch_001.png"):
        assert (cfg.run_dir / name).is_file(), name
    D, G = nets()  # a new session: the same kind of nets, restored from the checkpoint
    resumed = train(tiny_cfg(epochs=2), resume=True, progress=False, D=D, G=G)
    assert (first["epochs"], resumed["epochs"]) == (1, 2)
    assert resumed["weights_sha1"] == straight["weights_sha1"]  # resume continues exactly
    assert load_generator(cfg.run_dir / "checkpoints/latest.pt").z_size == 16  # the library's tools read it


@pytest.mark.parametrize("which,net,complaint", [
    ("G", lambda nb: nb["Generator"](32, 8), "failed on an input of shape (2, 16)"),
    ("G", lambda nb: nb["Generator"](16, 8, image_size=64), "maps input (2, 16) to (2, 3, 64, 64)"),
    ("D", lambda nb: torch.nn.Sequential(nb["Discriminator"](8), torch.nn.Flatten(0)), "to (2,)"),
    ("D", lambda nb: "not a net", "must be a torch nn.Module"),
])
def test_train_refuses_nets_that_do_not_fit_in_one_line(tiny_cfg, which, net, complaint):
    from facegan.errors import ConfigError
    from facegan.training.loop import train

    cfg = tiny_cfg()
    with pytest.raises(ConfigError) as e:
        train(cfg, progress=False, **{which: net(notebook_code())})
    assert complaint in str(e.value) and "\n" not in str(e.value)
    assert not cfg.run_dir.exists()  # refused before anything was written


if __name__ == "__main__" and "--write" in sys.argv:
    os.chdir(ROOT)  # data/ and runs/ of the default run are git-ignored there
    nbformat.write(execute(nbformat.read(NOTEBOOK, as_version=4), ROOT, timeout=3600), NOTEBOOK)
    print(f"refreshed outputs of {NOTEBOOK.name}")
