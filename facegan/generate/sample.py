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

from ..utils.atomic import atomic_write_bytes


def sample_z(n: int, z_size: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Latent vectors ~ N(0, I), drawn on the generator's device, then moved to `device`.

    A CPU generator makes a seed mean the same z on any device (fixed samples); a CUDA
    generator avoids a host-to-device copy, and its wait, on every training step.
    """
    gen_device = generator.device if generator is not None else "cpu"
    return torch.randn(n, z_size, generator=generator, device=gen_device).to(device)


# Coordinates beyond the truncation are redrawn: below this, that redrawing would (nearly) never end.
MIN_TRUNCATION = 0.05


def latents_for_seeds(seeds: list[int], z_size: int, truncation: float | None = None) -> torch.Tensor:
    """One z per seed, each from its own generator: seed s is the same face whatever else is drawn.

    `truncation` t redraws every coordinate with |z| > t (the truncation trick of BigGAN):
    samples move toward the typical face, trading variety for fidelity.
    """
    if truncation is not None and not truncation >= MIN_TRUNCATION:
        raise ValueError(f"truncation={truncation}: must be at least {MIN_TRUNCATION} (about 0.5 to 1 "
                         f"is usual; omit it for none)")
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(z_size, generator=gen)
        while truncation is not None and (outside := z.abs() > truncation).any():
            z[outside] = torch.randn(int(outside.sum()), generator=gen)
        rows.append(z)
    return torch.stack(rows)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: Gaussian z lives near a sphere, and a straight line between
    two points cuts through its low-density interior (faces fade out mid-way)."""
    a_unit, b_unit = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(-1, keepdim=True).clamp(-1, 1))
    t = torch.as_tensor(t, dtype=a.dtype)
    if float(omega.abs().max()) < 1e-6:  # (nearly) the same direction: the line is the arc
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def latent_walk(keys: torch.Tensor, steps: int, loop: bool = False) -> torch.Tensor:
    """(K, z) key latents -> (segments, steps, z): slerp from each key to the next (and back
    to the first when `loop`), endpoints included."""
    if steps < 2:
        raise ValueError(f"steps={steps}: a walk needs at least 2 steps per segment")
    ends = torch.cat([keys[1:], keys[:1]]) if loop else keys[1:]
    ts = torch.linspace(0, 1, steps)[:, None]
    return torch.stack([slerp(a[None], b[None], ts) for a, b in zip(keys, ends)])


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


def generate_in_chunks(G: torch.nn.Module, z: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """`generate` over many latents without holding every activation at once."""
    device = next(G.parameters()).device
    return np.concatenate([generate(G, part.to(device)) for part in z.split(chunk)])


def faces_from_seeds(G: torch.nn.Module, seeds: list[int], truncation: float | None = None,
                     label: int | None = None) -> np.ndarray:
    """(len(seeds), H, W, 3) uint8: face i is the one seed i always gives. For a conditional
    G, `label` asks every seed for that class (the rest of its latent kept)."""
    z = latents_for_seeds(seeds, G.z_size, truncation)
    if label is not None:
        from ..nets.models import latents_of_class
        z = latents_of_class(z, torch.full((len(z),), label), G.n_classes)
    return generate_in_chunks(G, z)


def walk_faces(G: torch.nn.Module, seeds: list[int], steps: int, truncation: float | None = None,
               loop: bool = False) -> np.ndarray:
    """(segments, steps, H, W, 3) uint8: faces along slerp paths from seed to seed."""
    if len(seeds) < 2:
        raise ValueError(f"seeds={seeds}: a walk needs at least two seeds, e.g. --seeds 1,2,3")
    path = latent_walk(latents_for_seeds(seeds, G.z_size, truncation), steps, loop)
    faces = generate_in_chunks(G, path.flatten(0, 1))
    return faces.reshape(*path.shape[:2], *faces.shape[1:])


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


def png_bytes(image: np.ndarray, upscale: int = 1) -> bytes:
    """An (H, W, 3) uint8 image as PNG bytes, enlarged by nearest neighbour when asked."""
    im = Image.fromarray(image)
    if upscale > 1:
        im = im.resize((im.width * upscale, im.height * upscale), Image.NEAREST)
    buf = io.BytesIO()
    # zlib's fastest level: 3.5x faster than PIL's default on a grid of faces, the file as small
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def save_png(path: Path | str, image: np.ndarray, upscale: int = 1) -> None:
    atomic_write_bytes(path, png_bytes(image, upscale))


def save_gif(path: Path | str, frames: np.ndarray, seconds_per_frame: float = 0.08, upscale: int = 1) -> None:
    """(N, H, W, 3) uint8 frames -> a looping animated GIF, written atomically."""
    ims = [Image.fromarray(f) for f in frames]
    if upscale > 1:
        ims = [im.resize((im.width * upscale, im.height * upscale), Image.NEAREST) for im in ims]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], loop=0,
                duration=round(seconds_per_frame * 1000))
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
        raise FileNotFoundError(f"{path} does not exist; train a run first (training writes it as it goes)") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise ValueError(f"{path} is not a facegan train_samples.pkl ({e}); it may be corrupt "
                         f"or from elsewhere") from None
    if not isinstance(samples, list) or not all(isinstance(s, np.ndarray) for s in samples):
        raise ValueError(f"{path} does not hold a list of arrays; it is not a facegan train_samples.pkl")
    return samples
