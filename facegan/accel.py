"""The fast training path: small switches the loop applies once, never per-step branches.

- `fast` (numerics-preserving in fp32): channels_last tensors for the convolutions,
  foreach Adam on CPU and fused Adam on CUDA, cudnn.benchmark, and (in data.py) the
  whole uint8 dataset resident on the GPU with flips done there.
- `amp`: bf16 autocast on CUDA; CPU always trains in fp32.
- `compile`: torch.compile of both networks; "reduce-overhead" adds CUDA graphs.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` as CUDA when there is a GPU, else the CPU; a device that is not here is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


def setup_backends(device: torch.device, fast: bool) -> None:
    if device.type == "cuda" and fast:
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once


def memory_format(device: torch.device, fast: bool) -> torch.memory_format:
    """channels_last where it helps: tensor cores want NHWC; on CPU oneDNN does too."""
    return torch.channels_last if fast else torch.contiguous_format


def prepare_model(model: nn.Module, device: torch.device, fast: bool) -> nn.Module:
    return model.to(device=device, memory_format=memory_format(device, fast))


def adam_options(device: torch.device, fast: bool) -> dict:
    """One multi-tensor (foreach) or fused kernel per step instead of one per parameter."""
    if not fast:
        return {"foreach": False}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def amp_enabled(device: torch.device, amp: bool) -> bool:
    return amp and device.type == "cuda"


def maybe_compile(model: nn.Module, mode: str) -> nn.Module:
    if mode == "off":
        return model
    return torch.compile(model, mode=None if mode == "default" else mode)
