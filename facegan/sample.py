"""Turning a generator's output into images: uint8 arrays, grids, PNGs, train_samples.pkl.

`train_samples.pkl` format: a pickled Python list with one entry per completed epoch;
entry e is a uint8 numpy array of shape (n_fixed, H, W, 3), RGB, the generator's
images for the run's fixed latent batch after epoch e (G in eval mode). It is read
back with a restricted unpickler that only accepts numpy arrays and plain containers.
"""
from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .io import atomic_write_bytes


def sample_z(n: int, z_size: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Latent vectors ~ N(0, I), drawn on the generator's device, then moved to `device`.

    A CPU generator makes a seed mean the same z on any device (fixed samples); a CUDA
    generator avoids a host-to-device copy, and its wait, on every training step.
    """
    gen_device = generator.device if generator is not None else "cpu"
    return torch.randn(n, z_size, generator=generator, device=gen_device).to(device)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor) -> np.ndarray:
    """G's images for z as uint8 NHWC, with BatchNorm in eval mode (running statistics),
    so a sample does not depend on what else is in the batch; G's mode is restored."""
    was_training = G.training
    G.eval()
    try:
        return to_uint8(G(z))
    finally:
        G.train(was_training)


def image_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """(N, H, W, 3) uint8 -> one (rows*(H+pad)+pad, ...) uint8 grid on a white background."""
    n, h, w, _ = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return grid


def save_png(path: Path | str, image: np.ndarray, upscale: int = 1) -> None:
    im = Image.fromarray(image)
    if upscale > 1:
        im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def save_train_samples(path: Path | str, samples: list[np.ndarray]) -> None:
    atomic_write_bytes(path, pickle.dumps([np.asarray(s, np.uint8) for s in samples], protocol=4))


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; refuses every other global."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"), ("builtins", "tuple"), ("builtins", "dict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_train_samples(path: Path | str) -> list[np.ndarray]:
    """Read train_samples.pkl safely; raises ValueError on anything but arrays in a list."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            samples = _ArraysOnlyUnpickler(f).load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; train a run first (it is written every epoch)") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise ValueError(f"{path} is not a facegan train_samples.pkl ({e}); it may be corrupt "
                         f"or from elsewhere") from None
    if not isinstance(samples, list) or not all(isinstance(s, np.ndarray) for s in samples):
        raise ValueError(f"{path} does not hold a list of arrays; it is not a facegan train_samples.pkl")
    return samples
