"""Face images in, training batches out.

Two paths serve two audiences:
- The course path: `FaceFolder` + `get_dataloader` decode with PIL per item, as the
  course notebook does, and `scale` maps [0, 1] tensors to [-1, 1].
- The training path: a folder is decoded once into a uint8 (N, H, W, 3) array cached as
  a memory-mapped `.npy` (rebuilt when the folder's files change), and `FaceBatches`
  slices shuffled batches straight from it: no per-batch decode.
The embedded default (`data="synthetic"`) draws procedural faces, so all of it works offline.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from ..config import IMAGE_EXTENSIONS
from ..errors import DataError
from ..utils.atomic import atomic_open, make_folder
from ..utils.seeds import epoch_seed
from . import celeba
from .celeba import CELEBA_SUBDIR

__all__ = ["DataError", "IMAGE_EXTENSIONS", "CELEBA_SUBDIR", "scale", "FaceFolder", "get_dataloader",
           "cached_image_array", "FaceBatches", "training_images", "training_batches"]

def scale(x: torch.Tensor, feature_range=(-1, 1)) -> torch.Tensor:
    """Map x from [0, 1] (as ToTensor gives) to feature_range, the range tanh outputs."""
    lo, hi = feature_range
    return x * (hi - lo) + lo


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder; pass --data-dir pointing at the folder that "
                        f"holds the .jpg/.png faces")
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist; pass --data-dir pointing at a "
                        f"folder of .jpg/.png faces (or use --data synthetic)")
    files = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise DataError(f"image folder {folder} has no .jpg/.jpeg/.png files; "
                        f"point --data-dir at the folder that holds the images")
    return files


# Transparent pixels hold no colour of their own, so they are laid over mid-grey: it
# scales to 0 in the networks' [-1, 1] range, pulling G towards neither black nor white.
TRANSPARENT_BACKGROUND = (128, 128, 128)
# Greyscale with more than 8 bits: 16-bit PNGs open as I;16 (older Pillows: I).
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _wide_grey_to_l(im: Image.Image) -> Image.Image:
    # convert("RGB") clips these at 255, turning most of a 16-bit image white; keep the
    # top 8 of the 16 bits instead (v * 257 maps back to exactly v).
    values = np.clip(np.asarray(im, dtype=np.int64), 0, 65535) >> 8
    return Image.fromarray(values.astype(np.uint8), "L")


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _flatten_alpha(im: Image.Image) -> Image.Image:
    # Plain convert("RGB") would keep whatever colour hides under transparent pixels
    # (often black, sometimes noise); compositing gives them the background instead.
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*TRANSPARENT_BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB: 16-bit greyscale rescaled, transparency composited."""
    if im.mode in WIDE_GREY_MODES:
        im = _wide_grey_to_l(im)
    if _has_alpha(im):
        return _flatten_alpha(im)
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr: PIL's own conversions are right for these


def _centre_square(im: Image.Image, image_size: int) -> Image.Image:
    if im.size == (image_size, image_size):
        return im
    # Centre-crop to a square first so faces are never squashed.
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return im.resize((image_size, image_size), Image.BICUBIC, reducing_gap=3.0)


def load_rgb(path: Path, image_size: int) -> np.ndarray:
    """Decode one image as (S, S, 3) uint8 via `to_rgb`, centre-cropped and resized.

    A file that cannot be decoded raises OSError, ValueError or SyntaxError.
    """
    try:
        with Image.open(path) as im:
            square = _centre_square(to_rgb(im), image_size)
    except Image.DecompressionBombError as e:
        # A header claiming billions of pixels (one flipped byte is enough) is no usable face,
        # and PIL's error for it is no OSError: callers skipping bad files would crash on it.
        raise ValueError(f"{path}: {e}") from None
    return np.array(square, dtype=np.uint8)  # a writable copy: torch refuses read-only arrays


class FaceFolder(Dataset):
    """Every image under a folder (recursively), as (3, S, S) float tensors.

    value_range=(-1, 1) gives what the networks train on; (0, 1) gives what
    torchvision's ToTensor gives, as the course's get_dataloader does.
    """

    def __init__(self, folder: str | Path, image_size: int = 64, value_range=(-1, 1)):
        self.files = find_images(folder)
        self.image_size = image_size
        self.value_range = value_range

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = torch.from_numpy(load_rgb(self.files[i], self.image_size)).permute(2, 0, 1)
        return scale(x.float() / 255, self.value_range)


def get_dataloader(batch_size: int, image_size: int, data_dir: str = CELEBA_SUBDIR,
                   num_workers: int = 0) -> DataLoader:
    """The course's loader: shuffled batches of (B, 3, S, S) images in [0, 1]; call `scale` next."""
    dataset = FaceFolder(data_dir, image_size, value_range=(0, 1))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)


# ---------------------------------------------------------------- the uint8 cache

def folder_fingerprint(files: list[Path], root: Path, image_size: int) -> str:
    """Changes whenever a file is added, removed, resized or touched, or the size changes."""
    h = hashlib.sha1(f"v1:{image_size}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _decode_all(files: list[Path], image_size: int, out: np.ndarray, progress: bool) -> int:
    """Decode files into out; returns how many were kept (unreadable ones are skipped)."""
    from ..utils.bars import progress_bar

    kept = 0
    for p in progress_bar(files, desc="decoding images", unit="img", disable=not progress, leave=False):
        try:
            out[kept] = load_rgb(p, image_size)
            kept += 1
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            continue
    return kept


def cached_image_array(folder: str | Path, image_size: int, cache_dir: str | Path,
                       progress: bool = True, log=print) -> np.ndarray:
    """The folder's images as a read-only memory-mapped (N, S, S, 3) uint8 array.

    The first call decodes every image and writes `<cache_dir>/<name>-<size>px-<fp>.npy`
    atomically; later calls with unchanged files just map it. A stale cache for the
    same folder is removed when the folder changes, and an unreadable one (truncated,
    overwritten, not the array it should be) is said so through `log`, deleted and rebuilt.
    """
    folder = Path(folder).resolve()
    files = find_images(folder)
    stem, path = _cache_names(folder, files, image_size, cache_dir)
    cache_dir = Path(cache_dir)
    if path.exists():
        cached = _read_cache(path, image_size, len(files))
        if cached is not None:
            return cached
        log(f"cache {path} was unreadable; rebuilt it from the images in {folder}")
        path.unlink(missing_ok=True)
    _write_cache(files, folder, image_size, cache_dir, stem, path, progress, log)
    cached = _read_cache(path, image_size, len(files))
    if cached is None:
        raise DataError(f"cache {path} could not be read back after writing it; check the disk "
                        f"holding --cache-dir {cache_dir} (or pass another --cache-dir)")
    return cached


def cache_path(folder: str | Path, image_size: int, cache_dir: str | Path) -> Path:
    """Where `cached_image_array` keeps the folder's images as they are now (a benchmark
    writes a large synthetic cache there instead of decoding as many files)."""
    folder = Path(folder).resolve()
    return _cache_names(folder, find_images(folder), image_size, cache_dir)[1]


def _cache_names(folder: Path, files: list[Path], image_size: int, cache_dir: str | Path) -> tuple[str, Path]:
    """The stem every cache of this folder at this size shares, and the path of the current one."""
    stem = f"{folder.name}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}-{image_size}px"
    return stem, Path(cache_dir) / f"{stem}-{folder_fingerprint(files, folder, image_size)}.npy"


def _read_cache(path: Path, image_size: int, n_files: int) -> np.ndarray | None:
    """The cached array, or None when the file is not the (N, S, S, 3) uint8 array it should be."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError):  # truncated ("mmap length is greater..."), garbage, empty
        return None
    if (not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 4
            or arr.shape[1:] != (image_size, image_size, 3) or not 0 < arr.shape[0] <= n_files):
        return None
    return arr


def _write_cache(files: list[Path], folder: Path, image_size: int, cache_dir: Path, stem: str,
                 path: Path, progress: bool, log) -> None:
    """Decode every image into the cache at path (atomically) and remove the folder's stale caches."""
    make_folder(cache_dir)
    decoded = np.empty((len(files), image_size, image_size, 3), np.uint8)
    kept = _decode_all(files, image_size, decoded, progress)
    if kept == 0:
        raise DataError(f"none of the {len(files)} images in {folder} could be decoded; "
                        f"check that they are valid JPEG/PNG files")
    if kept < len(files):
        log(f"skipped {len(files) - kept} unreadable image(s) of {len(files)} in {folder}")
    with atomic_open(path) as f:
        np.save(f, decoded[:kept])
    for stale in cache_dir.glob(f"{stem}-*.npy"):
        if stale != path:
            stale.unlink(missing_ok=True)


# ---------------------------------------------------------------- training batches

class FaceBatches:
    """Shuffled (B, 3, S, S) float batches in [-1, 1], sliced from a uint8 NHWC array.

    Each epoch's order and flips come from a generator seeded by (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would. On a GPU the whole
    uint8 array is copied there once and batches are cut, flipped and scaled on the device.
    On the CPU each batch is gathered from the array as given, so a memory-mapped cache is
    never copied whole: torchrun's processes share its pages in the OS's page cache, and
    each one's own memory holds only its batches.
    """

    def __init__(self, images: np.ndarray, batch_size: int, seed: int = 0, hflip: bool = True,
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 rank: int = 0, world_size: int = 1, weights: np.ndarray | None = None,
                 labels: np.ndarray | None = None, epoch_images: int = 0):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise DataError(f"expected a (N, S, S, 3) uint8 array, got {images.shape} {images.dtype}")
        if len(images) < batch_size * world_size:
            raise DataError(f"the dataset has {len(images)} images, fewer than batch_size="
                            f"{batch_size} x {world_size} process(es); lower --batch-size or add images")
        _check_epoch_images(epoch_images, len(images), batch_size * world_size, weights is not None)
        self.device = torch.device(device)
        if self.device.type == "cuda":  # uploaded once (a memmap via one copy in RAM, then freed)
            self.images = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(self.device)
        else:  # a memmap stays one: a copy per process would cost N x H x W x 3 bytes each
            self.images = images
        self.home = self.device if self.device.type == "cuda" else torch.device("cpu")
        self.batch_size, self.seed, self.hflip = batch_size, seed, hflip
        self.rank, self.world_size = rank, world_size
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # Balanced sampling: each epoch draws N images with replacement by these probabilities.
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        # Class labels (conditional training) travel with their images through every shuffle.
        self.labels = None if labels is None else torch.as_tensor(labels, dtype=torch.long).to(self.home)
        # A random subset of this many images per epoch (0: all), drawn anew each (seed, epoch).
        self.per_epoch = epoch_images or len(images)

    def __len__(self) -> int:
        # Whole batches of this rank's shard: a ragged last batch would skew BatchNorm's statistics.
        return self.per_epoch // self.world_size // self.batch_size

    def epoch(self, epoch: int, start: int = 0):
        """The epoch's batches from batch `start` on (a resumed run skips those already done)."""
        for images, _ in self.labelled_epoch(epoch, start):
            yield images

    def labelled_epoch(self, epoch: int, start: int = 0):
        """The same batches as `epoch`, each as (images, labels (B,) or None without labels)."""
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        # Every rank draws the same permutation and takes its own interleaved shard of it.
        order = self._order(g)[self.rank::self.world_size].to(self.home)
        flips = (torch.rand(len(self.images), generator=g) < 0.5).to(self.home)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self._gather(idx)  # (B, H, W, C) uint8: flipping bytes is 4x cheaper than floats
            if self.hflip:
                flip = flips[idx]
                x[flip] = x[flip].flip(2)
            x = x.to(self.device, non_blocking=True).permute(0, 3, 1, 2)  # a channels_last view
            x = x.float().mul_(1 / 127.5).sub_(1).contiguous(memory_format=self.memory_format)
            yield x, None if self.labels is None else self.labels[idx].to(self.device, non_blocking=True)

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        """The batch's images, a new (B, H, W, C) uint8 tensor of their own (flipped in place next)."""
        if isinstance(self.images, torch.Tensor):
            return self.images[idx]
        # numpy's fancy indexing reads only these rows of a memmap, into a new writable array
        return torch.from_numpy(np.ascontiguousarray(self.images[idx.numpy()]))

    def _order(self, g: torch.Generator) -> torch.Tensor:
        """The epoch's image indices: a permutation (or its first per_epoch entries, a subset
        without repeats), or per_epoch weighted draws with replacement when balancing."""
        if self.weights is None:
            return torch.randperm(len(self.images), generator=g)[:self.per_epoch]
        return torch.multinomial(self.weights, self.per_epoch, replacement=True, generator=g)


def _check_epoch_images(n: int, available: int, step_images: int, weighted: bool) -> None:
    if n and n < step_images:
        raise DataError(f"epoch_images={n} is fewer than one step's {step_images} images; raise --epoch-images "
                        f"or lower --batch-size")
    if n > available and not weighted:
        raise DataError(f"epoch_images={n} exceeds the {available} training images; lower --epoch-images "
                        f"(or 0 for all of them)")


def tone_categories(images: np.ndarray) -> np.ndarray:
    """(N,) skin-tone (ITA) category of each image, indices into tone.CATEGORIES.

    For a cached folder they are stored beside the image cache (same fingerprint), so the
    estimate runs once per dataset, not once per run.
    """
    from .tone import categorize, image_ita

    cache = getattr(images, "filename", None)
    path = Path(cache).with_suffix(".tone-categories.npy") if cache else None
    if path is not None and path.exists():
        cached = _read_tone_cache(path, len(images))
        if cached is not None:
            return cached
    categories = categorize(image_ita(images)).astype(np.int8)
    if path is not None:
        with atomic_open(path) as f:
            np.save(f, categories)
    return categories


def _read_tone_cache(path: Path, n: int) -> np.ndarray | None:
    """The cached categories, or None (to recompute them) when the file is unreadable or wrong."""
    try:
        cached = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    ok = isinstance(cached, np.ndarray) and cached.shape == (n,) and cached.dtype == np.int8
    return cached if ok and cached.min(initial=0) >= 0 and cached.max(initial=0) < 6 else None


def balance_weights(cfg, images: np.ndarray, log=print) -> np.ndarray | None:
    """Per-image sampling probabilities for cfg.balance ("tone"), or None for uniform shuffling."""
    if cfg.balance == "none":
        return None
    from .tone import balanced_weights

    weights = balanced_weights(tone_categories(images), cfg.balance_cap)
    log(f"balance tone: the rarest skin tones are drawn up to {weights.max() * len(weights):.1f}x "
        f"as often as average (cap {cfg.balance_cap:g})")
    return weights


def condition_labels(cfg, images: np.ndarray) -> np.ndarray | None:
    """Per-image class labels for cfg.condition ("tone": the ITA category), or None."""
    return tone_categories(images) if cfg.condition == "tone" else None


def celeba_folder(data_dir: str | Path) -> Path:
    """The course's CelebA crops under data_dir, downloaded and extracted if missing.

    Failures raise DataError with a one-line message (facegan.data.celeba, download and unzip make them so).
    """
    folder = Path(data_dir) / CELEBA_SUBDIR
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    return Path(celeba.download_extract(data_dir=str(data_dir)))


def training_batches(cfg, images: np.ndarray, device: torch.device, dist, log=print) -> FaceBatches:
    """This rank's batches of the training images, drawn as the config says."""
    return FaceBatches(images, cfg.batch_size, cfg.seed, cfg.hflip, device, channels_last=cfg.fast,
                       weights=balance_weights(cfg, images, log), labels=condition_labels(cfg, images),
                       rank=dist.rank, world_size=dist.world_size, epoch_images=cfg.epoch_images)


def training_images(cfg, progress: bool = True, log=print) -> np.ndarray:
    """The uint8 (N, S, S, 3) training set a TrainConfig names."""
    if cfg.data == "synthetic":
        from .synthetic import make_faces
        images, _ = make_faces(cfg.synthetic_n, cfg.image_size, seed=cfg.seed)
        return images
    folder = celeba_folder(cfg.data_dir) if cfg.data == "celeba" else Path(cfg.data_dir)
    return cached_image_array(folder, cfg.image_size, cfg.cache_dir, progress, log)
