"""facegan: generate faces with a DCGAN, from the course notebook to real 64x64 training.

The stable API the notebook, problem_unittests.py, helper.py and users import is below;
everything else is found by its folder: utils/, data/, nets/, generate/, eval/, training/,
commands/ (docs/architecture.md says what each may import).
"""
from . import moved
from .config import PRESETS, TrainConfig, preset

__version__ = "0.2.0"

# name -> the module that defines it. Loaded on first use: the nets and the loop need torch,
# which takes seconds to import, and `python helper.py --help` or the config alone should not wait.
_LAZY = {
    # the course's steps: data, nets, init, losses, optimizers, the step and the loop
    "IMAGE_SIZES": "config",
    "scale": "data.images", "get_dataloader": "data.images", "cached_image_array": "data.images",
    "balance_weights": "data.images", "write_face_folder": "data.synthetic",
    "Discriminator": "nets.models", "Generator": "nets.models", "weights_init_normal": "nets.models",
    "build_models": "nets.models", "split_latent": "nets.models",
    "real_loss": "training.losses", "fake_loss": "training.losses", "d_loss": "training.losses",
    "g_loss": "training.losses", "sorted_gap": "training.losses", "tone_gap": "training.losses",
    "make_optimizers": "training.step", "train_step": "training.step", "train": "training.loop",
    # what a run leaves: samples, metrics, plots, a generator to load
    "load_train_samples": "generate.sample", "image_grid": "generate.sample", "faces_from_seeds": "generate.sample",
    "load_generator": "generate.export",
    "read_metrics": "eval.runlog", "plot_losses": "eval.plots", "view_samples": "eval.plots",
    # the skin-tone audit
    "ita_degrees": "data.tone", "image_ita": "data.tone", "categorize": "data.tone", "shares": "data.tone",
    "tone_weights": "data.tone", "audit": "eval.audit", "plot_shares": "eval.audit", "summary_line": "eval.audit",
    "FaceganError": "errors",
}
__all__ = ["TrainConfig", "PRESETS", "preset", *_LAZY]

moved.install()


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"facegan.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'facegan' has no attribute {name!r}")
