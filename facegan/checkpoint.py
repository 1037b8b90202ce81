"""A snapshot is one dict holding everything needed to continue a run exactly.

Keys: format, config, epoch (completed), step, images_seen, G, D, G_ema (None until
EMA exists), opt_d, opt_g, fixed_z, z_generator, rng, schedule. Written atomically
(temp file + os.replace) and loaded with `weights_only=True`, so a checkpoint from
elsewhere cannot run code.
"""
from __future__ import annotations

import random
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_open

FORMAT = "facegan-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or from an incompatible run."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP or torch.compile wrappers, so saved keys carry no prefix."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path | str, snapshot: dict) -> None:
    try:
        with atomic_open(path, "wb") as f:
            torch.save({"format": FORMAT, **snapshot}, f)
    except OSError as e:
        raise CheckpointError(f"could not write {path} ({e.strerror or e}); the previous checkpoint "
                              f"there is intact: free disk space or choose another --out, then --resume") from e


def load_checkpoint(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first or pass the path of a .pt file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated or foreign files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} is not a readable facegan checkpoint ({first_line[:120]}); "
                              f"use another snapshot from the run's checkpoints/ folder") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a facegan checkpoint (format {FORMAT} expected)")
    return ckpt
