"""facegan: generate faces with a DCGAN, from the course notebook to real 64x64 training."""
from .config import PRESETS, TrainConfig, preset
from .models import Discriminator, Generator, weights_init_normal

__version__ = "0.1.0"
__all__ = ["TrainConfig", "PRESETS", "preset", "Discriminator", "Generator", "weights_init_normal"]
