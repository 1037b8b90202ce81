"""facegan: generate faces with a DCGAN, from the course notebook to real 64x64 training."""
from .config import PRESETS, TrainConfig, preset

__version__ = "0.1.0"
__all__ = ["TrainConfig", "PRESETS", "preset", "Discriminator", "Generator", "weights_init_normal"]


def __getattr__(name: str):
    # The nets need torch, which takes seconds to import: `python helper.py --help` and
    # the config alone should not wait for it.
    if name in ("Discriminator", "Generator", "weights_init_normal"):
        from . import models
        return getattr(models, name)
    raise AttributeError(f"module 'facegan' has no attribute {name!r}")
