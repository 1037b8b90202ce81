"""Data-parallel training across processes with torchrun and DistributedDataParallel.

`torchrun --nproc_per_node=N -m facegan train ...` starts N copies of the same command;
torchrun sets RANK, LOCAL_RANK and WORLD_SIZE, and `Dist.from_env` joins them into one
group: NCCL when CUDA is available, gloo on CPU. Every rank builds the same networks,
DDP averages their gradients, each rank reads its own shard of every epoch, and only
rank 0 writes checkpoints, samples, metrics and progress bars.

On the CPU every rank trains from the same memory-mapped image cache, never a copy of its
own: the OS holds the cache's pages once, in its page cache, for all ranks, so the memory
of N ranks does not grow by N copies of the dataset (`bench/speed/shared_memory.py` measures it).
On GPUs each rank uploads the images to its own device.

The batch size is per rank, so the effective batch is `batch_size * world_size`. The
learning rates are used as given (DCGAN is sensitive to them); when you change the
effective batch, scale them yourself, e.g. linearly, and compare by FID.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Dist":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend)
        return cls(torch_dist.get_rank(), world_size, int(os.environ.get("LOCAL_RANK", "0")), backend)

    def device(self, requested: torch.device) -> torch.device:
        """Each rank on its own GPU; CPU ranks share the CPU."""
        if self.enabled and requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def wrap(self, model: nn.Module, sync_bn: bool) -> nn.Module:
        if not self.enabled:
            return model
        if sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device = next(model.parameters()).device
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over ranks, so every rank logs and decides the same."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
        t = t.cuda() if self.backend == "nccl" else t
        torch_dist.all_reduce(t)
        return {k: v / self.world_size for k, v in zip(keys, t.tolist())}

    def mean_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor's mean over ranks, left on the device (no wait for the host)."""
        if not self.enabled:
            return t
        t = t.clone()
        torch_dist.all_reduce(t)
        return t / self.world_size

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any (a signal reaches ranks at different steps)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        t = t.cuda() if self.backend == "nccl" else t
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()

    def close(self) -> None:
        if self.enabled and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
