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
import os

import torch
from torch import nn

from ..errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` as CUDA when there is a GPU, else the CPU; a device that is not here (a type this
    torch build lacks, or a GPU index past the ones present) is refused in one line, before
    anything is moved to it: torch would fail later, deep in a command, with a traceback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device={name!r} is not a device name; use --device auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise ConfigError(f"device={name} but CUDA is not available here; use --device cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device={name} but this machine has {count} CUDA device(s), cuda:0 to "
                              f"cuda:{count - 1}; use one of those, or --device auto")
        return device
    backend = getattr(torch.backends, device.type, None)  # mps; other types only through the library
    available = getattr(backend, "is_available", None) or getattr(getattr(torch, device.type, None),
                                                                   "is_available", None)
    if available is None or not available() or device.index:
        raise ConfigError(f"device={name} is not available in this torch build on this machine; "
                          f"use --device cpu or auto")
    return device


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


def ram_bytes() -> int | None:
    """This machine's total RAM, or None where it cannot be read (then nothing is refused for it)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def device_memory_bytes(device: torch.device) -> int | None:
    """What a run on `device` can hold: a CUDA device's own memory, else the machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device.index or 0).total_memory
    return ram_bytes() if device.type == "cpu" else None


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
