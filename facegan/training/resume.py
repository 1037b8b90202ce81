"""Resuming a run exactly: where the loop stands, and the checkpoint that records it.

A checkpoint is one dict, written atomically by `checkpoint.save_checkpoint` and built
only by `RunState.snapshot`. Its keys (CHECKPOINT_KEYS):

    format          "facegan-checkpoint-v1" (added by save_checkpoint)
    config          the run's TrainConfig as a dict
    epoch           epochs completed
    batch           batches done of the next epoch: 0 at an epoch's end, more after Ctrl-C
    step            training steps taken (each a D and/or a G update)
    images_seen     real images D has seen, over all ranks
    fixed_z         (n_fixed, z_size) latents of the sample grids, on the CPU
    z_generator     state of rank 0's generator of training latents
    rng             torch's (CPU and CUDA) and Python's global generator states
    G, D            the networks' state_dicts, without DDP or torch.compile prefixes
    opt_d, opt_g    the two Adam states
    G_ema           the EMA generator's state_dict, or None without EMA
    schedule        the D/G schedule's state, or None for a schedule that has none
    augmenter       the augmenter's generator state
    lecam           LeCam's two anchors, or None without LeCam
    monitor         the collapse monitor's state
    samples         {"saved": k, "unsaved": (E - k, n_fixed, S, S, 3) uint8}: the fixed-z samples
                    of the finished epochs that train_samples.pkl did not hold yet when it was written

The weights come from the checkpoint; the samples of the finished epochs come from
`train_samples.pkl` beside it (its first k) and from the checkpoint (the rest). The pickle
holds every epoch, so rewriting it after each one would cost time that grows with the run;
it is rewritten only now and then (views.py), and the checkpoint carries the epochs since.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import CheckpointError, check_keys, load_weights, rng_state, set_rng_state, unwrap
from ..config import TrainConfig, resumable_fields, upgrade_keys
from ..generate.sample import load_train_samples, sample_z
from ..utils.seeds import stream_seed

POSITION_KEYS = ("epoch", "batch", "step", "images_seen", "fixed_z", "z_generator", "rng")
PART_KEYS = ("G", "D", "opt_d", "opt_g", "G_ema", "schedule", "augmenter", "lecam", "monitor")
CHECKPOINT_KEYS = ("format", "config", *POSITION_KEYS, *PART_KEYS, "samples")
# Older checkpoints lack these (or hold None): a resume starts them fresh (and takes every
# epoch's samples from train_samples.pkl, which they rewrote each epoch).
OPTIONAL_KEYS = ("batch", "G_ema", "schedule", "augmenter", "lecam", "monitor", "samples")
RESUME_KEYS = tuple(k for k in CHECKPOINT_KEYS if k not in OPTIONAL_KEYS)
COUNTER_KEYS = ("epoch", "batch", "step", "images_seen")


def latest_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / "latest.pt"


@dataclass
class RunState:
    """Where the loop stands: counters, the latent streams, and the samples so far."""
    fixed_z: torch.Tensor
    z_gen: torch.Generator
    epoch: int = 0        # epochs completed
    batch: int = 0        # batches done of the current epoch
    step: int = 0
    images_seen: int = 0
    samples: list = field(default_factory=list)  # one uint8 grid batch per finished epoch (rank 0)
    samples_saved: int = 0  # how many of them train_samples.pkl holds
    reseeded: bool = False  # resumed with a fresh latent stream: correct, but not bit for bit

    @classmethod
    def fresh(cls, cfg: TrainConfig, device: torch.device, rank: int = 0) -> "RunState":
        z_gen = torch.Generator(device=device).manual_seed(stream_seed(cfg.seed, "latents", rank))
        # A CPU generator: the same fixed latents on any device, and on every rank.
        fixed = torch.Generator().manual_seed(stream_seed(cfg.seed, "fixed_latents"))
        return cls(sample_z(cfg.n_fixed, cfg.z_size, fixed).to(device), z_gen)

    @property
    def epoch_of_last_step(self) -> int:
        """The 1-based epoch the latest step belonged to (metrics rows name it)."""
        return self.epoch + 1 if self.batch else self.epoch

    def next_latents(self, n: int, z_size: int) -> torch.Tensor:
        return sample_z(n, z_size, self.z_gen, self.fixed_z.device)

    def advance(self, images: int) -> None:
        """One step done on a batch of `images` (counted over all ranks)."""
        self.step += 1
        self.batch += 1
        self.images_seen += images

    def end_epoch(self) -> None:
        self.epoch += 1
        self.batch = 0

    def snapshot(self, cfg: TrainConfig, parts: dict) -> dict:
        """The checkpoint dict (keys in the module docstring); `parts` maps PART_KEYS to
        the run's modules, optimizers and helpers (None for one that is off)."""
        return {"config": cfg.to_dict(), "epoch": self.epoch, "batch": self.batch, "step": self.step,
                "images_seen": self.images_seen, "fixed_z": self.fixed_z.cpu(),
                "z_generator": self.z_gen.get_state(), "rng": rng_state(),
                **{key: _state_of(parts[key]) for key in PART_KEYS}, "samples": self._unsaved_samples()}

    def _unsaved_samples(self) -> dict:
        # Tensors, not numpy arrays: checkpoints are read with torch.load(weights_only=True).
        unsaved = self.samples[self.samples_saved:]
        return {"saved": self.samples_saved,
                "unsaved": torch.from_numpy(np.stack(unsaved)) if unsaved else torch.empty(0, dtype=torch.uint8)}

    def restore(self, ckpt: dict, cfg: TrainConfig, parts: dict, rank: int = 0,
                source: Path | str | None = None) -> None:
        """Load a checkpoint into `parts` (unwrapped) and this state. Where the latent
        stream cannot be restored (another rank, or another device type) it is reseeded.
        A checkpoint that does not fit (keys missing, weights of other shapes) raises a
        one-line CheckpointError naming `source` (default: the run's latest.pt) before
        anything is written."""
        source = Path(source) if source is not None else latest_checkpoint(cfg.run_dir)
        check_keys(ckpt, RESUME_KEYS, source, "to resume")
        check_resumable(ckpt["config"], cfg)
        check_position(ckpt, cfg, source)
        fix = "resume from another snapshot in the run's checkpoints/ folder, or start a new run with another --out"
        for key in PART_KEYS:
            if ckpt.get(key) is not None and parts[key] is not None and hasattr(parts[key], "load_state_dict"):
                load_weights(parts[key], ckpt[key], source, f"{key} state", fix)
        try:
            set_rng_state(ckpt["rng"])
        except (TypeError, ValueError, KeyError, RuntimeError, AttributeError):
            raise CheckpointError(f"{source}: its rng state is not one facegan saves; {fix}") from None
        self.epoch, self.batch = ckpt["epoch"], ckpt.get("batch") or 0
        self.step, self.images_seen = ckpt["step"], ckpt["images_seen"]
        self.fixed_z = ckpt["fixed_z"].to(self.fixed_z.device)
        self.samples, self.samples_saved = _finished_epochs_samples(ckpt, cfg, source)
        self.reseeded = not _restore_latent_stream(self.z_gen, ckpt["z_generator"], rank)
        if self.reseeded:
            self.z_gen.manual_seed(stream_seed(cfg.seed, "latents", rank, step=self.step))


def _finished_epochs_samples(ckpt: dict, cfg: TrainConfig, source: Path) -> tuple[list, int]:
    """The fixed-z samples of the checkpoint's finished epochs, and how many of them came
    from train_samples.pkl (a file written later than the checkpoint holds more: cut)."""
    pkl = cfg.run_dir / "train_samples.pkl"
    saved = load_train_samples(pkl) if pkl.exists() else []
    record = ckpt.get("samples")
    if record is None:  # an older checkpoint: the pickle was rewritten every epoch
        return saved[:ckpt["epoch"]], min(len(saved), ckpt["epoch"])
    k, unsaved = (record.get("saved"), record.get("unsaved")) if isinstance(record, dict) else (None, None)
    shape = (cfg.n_fixed, cfg.image_size, cfg.image_size, 3)
    if not (_is_count(k) and isinstance(unsaved, torch.Tensor) and unsaved.dtype == torch.uint8
            and k + len(unsaved) <= ckpt["epoch"] and (len(unsaved) == 0 or tuple(unsaved.shape[1:]) == shape)):
        raise CheckpointError(f"{source}: its samples record is not one facegan saves (the samples train_samples.pkl "
                              f"lacks, {shape} uint8 each); resume from another snapshot in the run's "
                              f"checkpoints/ folder")
    saved = saved[:k]
    return saved + [t.numpy() for t in unsaved], len(saved)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _state_of(part):
    if part is None:
        return None
    if isinstance(part, nn.Module):
        return unwrap(part).state_dict()
    return part.state_dict() if hasattr(part, "state_dict") else None


def _restore_latent_stream(z_gen: torch.Generator, state: torch.Tensor, rank: int) -> bool:
    """Only rank 0's stream is saved, and a CPU state does not fit a CUDA generator."""
    if rank > 0:
        return False
    try:
        z_gen.set_state(state)
        return True
    except RuntimeError:
        return False


def check_position(ckpt: dict, cfg: TrainConfig, source: Path) -> None:
    """Refuse counters and latents a crafted checkpoint could get wrong."""
    for key in COUNTER_KEYS:
        value = ckpt.get(key, 0)
        if value is None and key == "batch":
            continue
        if not _is_count(value):
            shown = value if isinstance(value, int) else f"a {type(value).__name__}"
            raise CheckpointError(f"{source}: its {key} is {shown}, not a count; resume from another "
                                  f"snapshot in the run's checkpoints/ folder")
    fixed_z = ckpt["fixed_z"]
    if not isinstance(fixed_z, torch.Tensor) or tuple(fixed_z.shape) != (cfg.n_fixed, cfg.z_size):
        shape = tuple(fixed_z.shape) if isinstance(fixed_z, torch.Tensor) else type(fixed_z).__name__
        raise CheckpointError(f"{source}: its fixed_z is {shape}, not ({cfg.n_fixed}, {cfg.z_size}) as its "
                              f"config says; resume from another snapshot in the run's checkpoints/ folder")
    if not isinstance(ckpt["z_generator"], torch.Tensor):
        raise CheckpointError(f"{source}: its z_generator is not a generator state; resume from another "
                              f"snapshot in the run's checkpoints/ folder")


def check_resumable(saved: dict, cfg: TrainConfig) -> None:
    """Refuse a checkpoint whose config differs from cfg in a field a resume may not change."""
    saved, current = upgrade_keys(saved), cfg.to_dict()
    # A key newer than the checkpoint held its default then: a feature that did not exist was off.
    defaults = TrainConfig().to_dict()
    allowed = resumable_fields()
    changed = sorted(k for k in current if k not in allowed and saved.get(k, defaults[k]) != current[k])
    span = (saved.get("grow_epochs") or saved.get("epochs"), current["grow_epochs"] or current["epochs"])
    if saved.get("grow_from") and span[0] != span[1]:
        raise CheckpointError(f"cannot resume: the run grows over its first {span[0]} epochs; keep them with "
                              f"--grow-epochs {span[0]} (the extra epochs then train at full size)")
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise CheckpointError(f"cannot resume: the checkpoint was trained with a different config "
                              f"({diffs}); drop those options or start a new run with another --out")
