"""How fast a config trains here: images/s of the training loop's own step (GAN + make_step).

Used by `--preset auto` to learn what a time budget buys on this machine, and by bench/ to
time recipes. Only the step is timed: no data loading, samples, snapshots or evaluations.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..config import TrainConfig
from ..data.images import FaceBatches
from ..generate.sample import sample_z
from ..utils import accel
from .distributed import Dist
from .step import GAN, make_step


def noise_faces(n: int, size: int, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 noise: a step costs the same on any images of the right shape."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def step_rate(cfg: TrainConfig, images: np.ndarray, device: torch.device, *, steps: int | None = None,
              seconds: float | None = None, warmup: int = 2, progress: float | None = None) -> tuple[float, float]:
    """(images/s, peak GiB on CUDA) over `steps` timed steps, or as many as fit in `seconds`,
    after `warmup` untimed ones. `progress` pins the run's progress (0..1) the step sees, e.g. a
    progressive run's resolution; by default it advances over the steps."""
    if (steps is None) == (seconds is None):
        raise ValueError("give steps or seconds")
    accel.setup_backends(device, cfg.fast)
    gan = GAN.build(cfg, device)
    step = make_step(cfg, gan, Dist())
    batches = FaceBatches(images, cfg.batch_size, device=device, channels_last=cfg.fast)
    z_gen = torch.Generator(device=device).manual_seed(1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    planned = warmup + (steps if steps is not None else 10**9)
    done, timed, epoch, start, last = 0, 0, 0, 0.0, None
    while done < planned:
        for real in batches.epoch(epoch):
            if done == warmup:
                _wait(last, device)
                start = time.perf_counter()
            z = sample_z(len(real) * cfg.g_steps, cfg.z_size, z_gen, device)  # a batch per G update
            last = step(real, None, z, done, done / planned if progress is None else progress)
            done += 1
            timed = done - warmup
            if done == planned or (seconds is not None and timed > 0 and time.perf_counter() - start >= seconds):
                planned = done
                break
        epoch += 1
    _wait(last, device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    return timed * cfg.batch_size / elapsed, peak


def _wait(stats: dict | None, device: torch.device) -> None:
    """Let the device finish the steps queued so far (a float of a loss syncs)."""
    if stats is not None:
        float(stats["d_loss"])
    if device.type == "cuda":
        torch.cuda.synchronize()
