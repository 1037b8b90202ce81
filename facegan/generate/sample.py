"""Turning a generator's output into images: uint8 arrays, grids, PNGs, train_samples.pkl.

`train_samples.pkl` format: a pickled Python list with one entry per completed epoch;
entry e is a uint8 numpy array of shape (n_fixed, H, W, 3), RGB, the generator's
images for the run's fixed latent batch after epoch e (G in eval mode). It is read
back with a restricted unpickler that only accepts numpy arrays and plain containers.
"""
from __future__ import annotations

import io
import math
import os
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


class _NdarrayClass:
    """Stands for numpy.ndarray in a pickle: usable only as _reconstruct's subtype, never called,
    since ndarray(shape) would allocate whatever shape the file asks for."""

    def __init__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing to call numpy.ndarray directly (numpy never pickles that way)")


class _BoundedArray(np.ndarray):
    """An array being unpickled: its state is checked before numpy allocates anything for it."""

    budget = 0  # bytes: an array's data must be in the file, so no array holds more than its size

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array state is not numpy's")
        shape, dtype, rawdata = state[-4], state[-3], state[-1]
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise pickle.UnpicklingError("an array holds Python objects, not numbers")
        nbytes = _checked_nbytes(shape, dtype, self.budget)
        if not isinstance(rawdata, (bytes, bytearray)) or len(rawdata) != nbytes:
            raise pickle.UnpicklingError(f"an array of shape {shape} does not carry its {nbytes} bytes")
        super().__setstate__(state)


def _checked_nbytes(shape, dtype: np.dtype, budget: int) -> int:
    """shape x itemsize, refused when it is not a shape or exceeds `budget`, before any allocation."""
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"an array shape {str(shape)[:80]} is not a tuple of sizes")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > budget:
        raise pickle.UnpicklingError(f"an array of shape {shape} would need {nbytes:,} bytes, more than "
                                     f"the {budget:,} bytes of the file")
    return nbytes


def _safe_dtype(spec) -> np.dtype:
    try:
        dtype = np.dtype(spec)
    except (TypeError, ValueError):
        raise pickle.UnpicklingError("an array dtype is not one numpy knows") from None
    if dtype.hasobject:
        raise pickle.UnpicklingError("an array holds Python objects, not numbers")
    return dtype


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers; refuses every other global. Every allocation
    an allowed constructor could make is bounded by the file's size before it is made."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("builtins", "list"), ("builtins", "tuple"), ("builtins", "dict"),
    }

    def __init__(self, file, budget: int):
        super().__init__(file)
        self.budget = budget

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "ndarray":
            return _NdarrayClass
        if name == "_reconstruct":
            return self._reconstruct
        if name == "scalar":
            real = super().find_class(module, name)
            return lambda dtype, *data: self._scalar(real, dtype, *data)
        return super().find_class(module, name)

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not _NdarrayClass:
            raise pickle.UnpicklingError("_reconstruct is allowed for numpy.ndarray only")
        dtype = _safe_dtype(dtype)
        _checked_nbytes(shape, dtype, self.budget)
        array = np.ndarray.__new__(_BoundedArray, shape, dtype)
        array.budget = self.budget
        return array

    @staticmethod
    def _scalar(scalar, dtype, *data):
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.itemsize > 64 or len(data) > 1:
            raise pickle.UnpicklingError("a numpy scalar is not a plain number")
        return scalar(dtype, *data)


class _CappedReader:
    """A file whose read(n) never asks for more than the file holds: pickletools reads a counted
    argument with read(n), and a crafted count would otherwise allocate n bytes first."""

    def __init__(self, f, size: int):
        self._f, self._size = f, size

    def read(self, n: int = -1) -> bytes:
        left = max(self._size - self._f.tell(), 0)
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline()

    def tell(self) -> int:
        return self._f.tell()


def _check_opcodes(f, size: int) -> None:
    """Walks the pickle without building anything: every counted length (bytes, strings,
    frames) must fit in what is left of the file, since the unpickler allocates a counted
    argument before reading it."""
    import pickletools

    for op, arg, pos in pickletools.genops(_CappedReader(f, size)):
        if op.name == "FRAME" and arg > size - pos - 9:  # genops does not read a frame's bytes
            raise pickle.UnpicklingError(f"a frame of {arg:,} bytes is longer than the file")


def load_train_samples(path: Path | str) -> list[np.ndarray]:
    """Read train_samples.pkl safely: a list of (n, H, W, 3) uint8 arrays, one per epoch.

    Anything else (a folder, a corrupt or hostile pickle, arrays of another shape or type)
    raises RunFolderError in one line; sizes are checked before anything is allocated."""
    from ..errors import RunFolderError

    path = Path(path)
    fix = "it may be corrupt or from elsewhere: move it away (training writes a new one as it goes)"
    if path.is_dir():
        raise RunFolderError(f"{path} is a folder, not facegan's train_samples.pkl; move it away")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            _check_opcodes(f, size)
            f.seek(0)
            samples = _ArraysOnlyUnpickler(_CappedReader(f, size), budget=size).load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; train a run first (training writes it as it goes)") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError, KeyError,
            IndexError, OverflowError, MemoryError, RecursionError) as e:
        raise RunFolderError(f"{path} is not a facegan train_samples.pkl "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else 'unreadable'}); "
                             f"{fix}") from None
    except OSError as e:
        raise RunFolderError(f"cannot read {path} ({e.strerror or type(e).__name__}); check its permissions") from None
    if not isinstance(samples, list) or not all(isinstance(s, np.ndarray) for s in samples):
        raise RunFolderError(f"{path} does not hold a list of arrays; {fix}")
    for epoch, s in enumerate(samples):
        if s.dtype != np.uint8 or s.ndim != 4 or s.shape[-1] != 3 or 0 in s.shape:
            raise RunFolderError(f"{path}: epoch {epoch}'s samples are a {s.dtype} array of shape {s.shape}, not "
                                 f"(n, H, W, 3) uint8 images; {fix}")
    return [s.view(np.ndarray) for s in samples]
