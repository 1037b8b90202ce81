"""A run's checkpoints/ folder: latest.pt, the newest epoch_XXX.pt, and best.pt.

latest.pt is the whole run as it stands (resume.py lists its keys), rewritten atomically at
each epoch's end and at a mid-epoch stop. epoch_XXX.pt and best.pt are the same bytes as
latest.pt was when they were kept: hard links where the disk allows, so no second write.
Only rank 0 calls these.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

from ..checkpoint import save_checkpoint, unwrap
from ..config import TrainConfig
from .resume import RunState, latest_checkpoint


def best_checkpoint(run_dir: Path) -> Path:
    return latest_checkpoint(run_dir).with_name("best.pt")


class Snapshots:
    """Writes a run's snapshots of `parts` (PART_KEYS to the run's modules and helpers)."""

    def __init__(self, cfg: TrainConfig, parts: dict):
        self.cfg, self.parts = cfg, parts
        self.latest = latest_checkpoint(cfg.run_dir)
        self.best = best_checkpoint(cfg.run_dir)

    def save(self, state: RunState) -> None:
        save_checkpoint(self.latest, state.snapshot(self.cfg, self.parts))

    def keep_epoch(self, epoch: int) -> None:
        """Keep latest.pt as epoch_XXX.pt too, and only the newest `keep_checkpoints` of those."""
        keep = self.cfg.keep_checkpoints
        if keep <= 0:
            return
        link_or_copy(self.latest, self.latest.with_name(f"epoch_{epoch:03d}.pt"))
        for old in sorted(self.latest.parent.glob("epoch_*.pt"))[:-keep]:
            old.unlink(missing_ok=True)

    def keep_best(self) -> None:
        """best.pt becomes latest.pt: call it right after scoring the weights latest.pt holds."""
        link_or_copy(self.latest, self.best)

    def drop_best(self) -> None:
        """A new run in the folder: an older run's best.pt is not its own."""
        self.best.unlink(missing_ok=True)


def link_or_copy(source: Path, target: Path) -> None:
    """`target` becomes the bytes of `source`, swapped in whole: a hard link when the disk
    allows, else a copy."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)
    # Renaming onto another link to the same file does nothing (POSIX), leaving the partial name
    partial.unlink(missing_ok=True)


def weights_fingerprint(*models: torch.nn.Module) -> str:
    """A hash of the parameters: equal across DDP ranks, and across identical runs.

    BatchNorm's running statistics are left out: each rank updates them from its own
    batches (rank 0's are saved), unless sync_bn shares the batch statistics.
    """
    h = hashlib.sha1()
    for model in models:
        for name, t in unwrap(model).named_parameters():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
