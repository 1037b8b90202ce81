"""Shared fixtures: tiny configs that train in about a second on CPU."""
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # helper.py and problem_unittests.py live at the repo root
    sys.path.insert(0, str(ROOT))

from facegan.config import preset  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers (one per core) already fill the cores: more threads each only make them wait
    # on one another. Their subprocesses (the CLI, torchrun, the notebook's kernel) inherit it.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture
def tiny_cfg(tmp_path):
    """A factory: tiny_cfg(epochs=2, ...) -> a TrainConfig writing under tmp_path."""
    def make(**overrides):
        base = dict(out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
        return preset("tiny", **{**base, **overrides})
    return make
