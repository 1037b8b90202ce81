"""The fast training path: small switches the loop applies once, never per-step branches.

- `fast` (numerics-preserving in fp32): channels_last tensors for the convolutions,
  foreach Adam on CPU and fused Adam on CUDA, cudnn.benchmark, and (in data/images.py) the
  whole uint8 dataset resident on the GPU with flips done there.
- `amp`: bf16 autocast on CUDA, and on CPUs with native bf16 (AVX512-BF16 or AMX), where it
  is 1.6-1.9x faster; other CPUs train in fp32, where bf16 would be emulated and slower.
- `compile`: torch.compile of both networks; "reduce-overhead" adds CUDA graphs.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..errors import ConfigError


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


def memory_format(fast: bool) -> torch.memory_format:
    """channels_last when `fast` (tensor cores want NHWC, and so does oneDNN on CPU), else the
    default contiguous layout."""
    return torch.channels_last if fast else torch.contiguous_format


def prepare_model(model: nn.Module, device: torch.device, fast: bool) -> nn.Module:
    return model.to(device=device, memory_format=memory_format(fast))


def adam_options(device: torch.device, fast: bool) -> dict:
    """One multi-tensor (foreach) or fused kernel per step instead of one per parameter."""
    if not fast:
        return {"foreach": False}
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX), not by emulation.
    Asked once per process: every step builder and feature extraction reads it."""
    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is not None for probe in probes):
        return any(probe() for probe in probes if probe is not None)
    try:  # an older torch: the flags Linux reports
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def amp_enabled(device: torch.device, amp: bool) -> bool:
    """Whether `amp` means bf16 autocast on this device."""
    if not amp:
        return False
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def precision_note(device: torch.device, amp: bool) -> str:
    """The line a run starts with: which precision, and how to change it."""
    if amp_enabled(device, amp):
        return f"precision: bf16 autocast on {device.type.upper()} (--no-amp trains in fp32)"
    if amp and device.type == "cpu":
        return "precision: fp32 (this CPU has no native bf16, where autocast would be slower)"
    return "precision: fp32" + (" (--no-amp)" if not amp else "")


def maybe_compile(model: nn.Module, mode: str) -> nn.Module:
    if mode == "off":
        return model
    return torch.compile(model, mode=None if mode == "default" else mode)
