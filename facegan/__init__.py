"""facegan: generate faces with a DCGAN, from the course notebook to real 64x64 training.

The stable API the notebook, problem_unittests.py, helper.py and users import is below;
everything else is found by its folder: utils/, data/, nets/, generate/, eval/, training/,
commands/ (docs/architecture.md says what each may import).
"""
from . import moved
from .config import PRESETS, TrainConfig, preset

__version__ = "0.1.0"

# name -> the module that defines it. Loaded on first use: the nets and the loop need torch,
# which takes seconds to import, and `python helper.py --help` or the config alone should not wait.
_LAZY = {
    "Discriminator": "nets.models", "Generator": "nets.models", "weights_init_normal": "nets.models",
    "build_models": "nets.models",
    "scale": "data.images",
    "real_loss": "training.losses", "fake_loss": "training.losses", "d_loss": "training.losses",
    "g_loss": "training.losses",
    "train": "training.loop", "train_step": "training.step", "make_optimizers": "training.step",
    "load_generator": "generate.export",
    "FaceganError": "errors",
}
__all__ = ["TrainConfig", "PRESETS", "preset", *_LAZY]

moved.install()


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"facegan.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'facegan' has no attribute {name!r}")
