"""The training loop: a D step then a G step per batch, epochs of fixed-z samples and snapshots.

`train_step` is the unit the notebook and the tests call; `train` is a plain loop over
it that writes a self-describing run folder:

    runs/<name>/config.json         the TrainConfig, as JSON
    runs/<name>/metrics.jsonl       one row per `log_every` steps: losses, D accuracy, images seen
    runs/<name>/checkpoints/        latest.pt plus the last `keep_checkpoints` epoch_XXX.pt
    runs/<name>/samples/            reals.png and epoch_XXX.png from the fixed z
    runs/<name>/losses.png          the loss plot
    runs/<name>/train_samples.pkl   the fixed-z images of every epoch (format in sample.py)
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from . import accel, losses
from .checkpoint import (CheckpointError, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state, unwrap)
from .config import TrainConfig
from .data import FaceBatches, balance_weights, condition_labels, training_images
from .distributed import Dist
from .augment import Augmenter
from .ema import EMA
from .monitor import CollapseMonitor
from .models import build_models
from .plots import plot_losses, read_metrics, save_figure
from .sample import generate, image_grid, load_train_samples, sample_z, save_png, save_train_samples
from .report import write_report
from .runlog import RunLog
from .schedules import build_schedule, lr_factor, set_learning_rates


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the losses became NaN); the message says what to do."""


class RunInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after writing a checkpoint; `signum` says which."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopOnSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks between steps, so it can checkpoint.

    A second signal raises KeyboardInterrupt at once (checkpoint writes are atomic, so
    that is still safe). Handlers are installed only from the main thread, where Python
    delivers signals, and the previous ones are restored on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"device={name} but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


def make_optimizers(cfg: TrainConfig, D: torch.nn.Module, G: torch.nn.Module):
    """Adam for each net with its own learning rate (TTUR when lr_d != lr_g)."""
    options = accel.adam_options(next(D.parameters()).device, cfg.fast)
    d_opt = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), **options)
    g_opt = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), **options)
    return d_opt, g_opt


def train_step(real: torch.Tensor, D, G, d_opt, g_opt, z: torch.Tensor, loss: str = "bce",
               real_target: float = 1.0, train_d: bool = True, train_g: bool = True,
               amp: bool = False, augment=None, d_penalty=None, g_penalty=None,
               labels: torch.Tensor | None = None) -> dict:
    """One D update on (real, G(z)), then one G update that tries to fool the updated D.

    Returns detached 0-dim tensors (d_loss, d_acc, and g_loss when G was updated), left
    on the device so the loop need not synchronise with it every step. D's loss and
    accuracy are measured even when the schedule skips its update, because the accuracy
    gate needs them. amp=True runs the forward passes in bf16 autocast (CUDA).
    `augment(x)` transforms everything D sees, real and fake alike (DiffAugment, instance
    noise); `d_penalty(D, real, fake)` adds a regulariser (R1, gradient penalty) to D's loss,
    and `g_penalty(fake, real)` a term (the tone match) to G's, on the unaugmented images.
    The logged g_loss stays the adversarial part alone; the term is logged as g_penalty.
    `labels` (B,) are the real batch's classes for conditional nets; the fakes get the same
    ones, so both sides show D every class in the same proportions.
    """
    augment = augment or (lambda x: x)
    autocast = torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=amp)
    conditioned = () if labels is None else (labels,)  # the nets' extra argument, if any
    # Penalties and G's step call D itself, not a DDP wrapper (see below).
    D_plain = getattr(D, "module", D)
    with autocast, torch.set_grad_enabled(train_g):  # G's graph is only needed for its own step
        fake = G(z, *conditioned)
    with torch.set_grad_enabled(train_d), autocast:
        real_seen, fake_seen = augment(real), augment(fake.detach())
        real_logits = D(real_seen, *conditioned)
        fake_logits = D(fake_seen, *conditioned)
        d_loss = losses.d_loss(real_logits.float(), fake_logits.float(), loss, real_target)
    if train_d:
        total = d_loss
        if d_penalty is not None:
            # Penalties differentiate through D twice, which DDP's wrapper does not support;
            # their gradients still land in the same parameters that DDP synchronises.
            penalty = d_penalty(lambda x: D_plain(x, *conditioned), real_seen, fake_seen)
            total = d_loss + penalty if penalty is not None else d_loss
        d_opt.zero_grad(set_to_none=True)
        total.backward()
        d_opt.step()

    if train_g:
        # Reuse the fake batch: the G forward is already done and its graph is intact.
        # G needs gradients through D, not for D's weights: freezing D skips that work,
        # and the plain module (not a DDP wrapper) runs it, as there is nothing to sync.
        D_plain.requires_grad_(False)
        try:
            with autocast:
                g_logits = D_plain(augment(fake), *conditioned)
            g_loss = losses.g_loss(g_logits.float(), loss)
            g_extra = g_penalty(fake.float(), real) if g_penalty is not None else None
            g_opt.zero_grad(set_to_none=True)
            (g_loss if g_extra is None else g_loss + g_extra).backward()
            g_opt.step()
        finally:
            D_plain.requires_grad_(True)
    stats = {"d_loss": d_loss.detach(),
             "d_acc": losses.d_accuracy(real_logits.detach(), fake_logits.detach(), loss)}
    if train_g:
        stats["g_loss"] = g_loss.detach()
        if g_extra is not None:
            stats["g_penalty"] = g_extra.detach()
    return stats


def make_d_penalty(cfg: TrainConfig, step_of):
    """D's regulariser for this config, or None: WGAN-GP's gradient penalty every step,
    or R1 every `r1_every` steps scaled by that interval (lazy regularisation)."""
    if cfg.loss == "wgan" and cfg.gp_weight > 0:
        return lambda D, real, fake: cfg.gp_weight * losses.gradient_penalty(D, real, fake)
    if cfg.r1_gamma > 0:
        def r1(D, real, fake):
            if step_of() % cfg.r1_every:
                return None
            return 0.5 * cfg.r1_gamma * cfg.r1_every * losses.r1_penalty(D, real)
        return r1
    return None


def make_g_penalty(cfg: TrainConfig):
    """G's extra term for this config, or None: the tone match (losses.tone_gap) weighted
    by cfg.tone_match."""
    if cfg.tone_match > 0:
        return lambda fake, real: cfg.tone_match * losses.tone_gap(fake, real)
    return None


class RunningStats:
    """Sums step statistics on the device; `.read()` syncs once per logging interval."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict) -> None:
        for k, v in stats.items():
            self.sums[k] = self.sums.get(k, 0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def read(self) -> dict:
        out = {k: (v / self.counts[k]).item() for k, v in self.sums.items()}
        self.sums.clear()
        self.counts.clear()
        return out


def _snapshot(cfg, D, G, d_opt, g_opt, fixed_z, z_gen, pieces: dict, epoch, step, images_seen,
              batch: int = 0) -> dict:
    """`epoch` counts completed epochs; `batch` the batches already done of the next one.
    `pieces` are the optional stateful parts (G_ema, schedule, augmenter, monitor)."""
    return {
        "config": cfg.to_dict(), "epoch": epoch, "batch": batch, "step": step, "images_seen": images_seen,
        "G": unwrap(G).state_dict(), "D": unwrap(D).state_dict(),
        "opt_d": d_opt.state_dict(), "opt_g": g_opt.state_dict(),
        "fixed_z": fixed_z.cpu(), "z_generator": z_gen.get_state(), "rng": rng_state(),
        **{name: piece.state_dict() if hasattr(piece, "state_dict") else None for name, piece in pieces.items()},
    }


# Fields that may differ between a checkpoint and the run resuming it.
RESUMABLE_CHANGES = {"epochs", "device", "out", "name", "log_every", "keep_checkpoints", "num_workers",
                     "eval_every", "eval_n", "fast", "amp", "compile", "sync_bn", "tensorboard"}
# The optional stateful parts a snapshot carries, by checkpoint key.
PIECES = ("G_ema", "schedule", "augmenter", "monitor")


def check_resumable(saved: dict, cfg: TrainConfig) -> None:
    current = cfg.to_dict()
    # A key newer than the checkpoint held its default then: a feature that did not exist was off.
    defaults = TrainConfig().to_dict()
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES
                     and saved.get(k, defaults[k]) != current[k])
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise CheckpointError(f"cannot resume: the checkpoint was trained with a different config "
                              f"({diffs}); drop those options or start a new run with another --out")


def _keep_epoch_snapshot(ckpt_dir: Path, epoch: int, keep: int) -> None:
    if keep <= 0:
        return
    target = ckpt_dir / f"epoch_{epoch:03d}.pt"
    target.unlink(missing_ok=True)
    try:
        os.link(ckpt_dir / "latest.pt", target)  # same bytes, no second write
    except OSError:
        import shutil
        shutil.copyfile(ckpt_dir / "latest.pt", target)
    for old in sorted(ckpt_dir.glob("epoch_*.pt"))[:-keep]:
        old.unlink(missing_ok=True)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, log=print,
          should_stop=None) -> dict:
    """Train a DCGAN as `cfg` says, writing the run folder; returns a summary dict.

    With resume=True the run continues from `<run_dir>/checkpoints/latest.pt`, exactly
    where it stopped: same weights, optimizer moments, data order and RNG streams.
    `should_stop(epochs_done)` is asked after each epoch's checkpoint; True ends the run
    early (as an interruption would), to be continued with resume=True. Under torchrun
    the same call trains data-parallel (see distributed.py); only rank 0 writes.
    """
    dist = Dist.from_env()
    try:
        return _train(cfg, dist, resume, progress and dist.is_main, log if dist.is_main else _quiet,
                      should_stop)
    finally:
        dist.close()


def _quiet(*args, **kwargs) -> None:
    pass


def _train(cfg: TrainConfig, dist: Dist, resume: bool, progress: bool, log, should_stop) -> dict:
    from tqdm import tqdm  # plain text bars: also fine in notebooks without ipywidgets

    device = dist.device(resolve_device(cfg.device))
    if cfg.sync_bn and device.type != "cuda":
        raise TrainingError("sync_bn needs CUDA (SyncBatchNorm has no CPU kernels); drop --sync-bn on CPU")
    accel.setup_backends(device, cfg.fast)
    run_dir = cfg.run_dir
    ckpt_dir, samples_dir = run_dir / "checkpoints", run_dir / "samples"
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank

    images = training_images(cfg, progress=progress, log=log)
    batches = FaceBatches(images, cfg.batch_size, cfg.seed, cfg.hflip, device, channels_last=cfg.fast,
                          weights=balance_weights(cfg, images, log), labels=condition_labels(cfg, images),
                          rank=dist.rank, world_size=dist.world_size)
    D, G = build_models(cfg)
    D, G = accel.prepare_model(D, device, cfg.fast), accel.prepare_model(G, device, cfg.fast)
    d_opt, g_opt = make_optimizers(cfg, D, G)
    use_amp = accel.amp_enabled(device, cfg.amp)
    schedule = build_schedule(cfg)
    ema = EMA(G, cfg.ema_decay) if cfg.ema_decay > 0 else None
    augmenter = Augmenter(cfg.augment, cfg.instance_noise, seed=cfg.seed + 7 + 1000 * dist.rank, device=device)
    monitor = CollapseMonitor()
    pieces = {"G_ema": ema, "schedule": schedule, "augmenter": augmenter, "monitor": monitor}
    z_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1 + 1000 * dist.rank)
    fixed_z = sample_z(cfg.n_fixed, cfg.z_size, torch.Generator().manual_seed(cfg.seed + 2))
    start_epoch, start_batch, step, images_seen, samples = 0, 0, 0, 0, []
    if dist.enabled:
        log(f"DDP over {dist.world_size} processes ({dist.backend}): {cfg.batch_size} images a rank, "
            f"{cfg.batch_size * dist.world_size} a step; learning rates as given")

    if resume:
        start_epoch, start_batch, step, images_seen, samples, fixed_z = _restore(
            cfg, run_dir, D, G, d_opt, g_opt, pieces, z_gen, dist, log)
    elif dist.is_main:
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        save_png(samples_dir / "reals.png", image_grid(np.asarray(images[:64])), upscale=2)
    epochs_done = start_epoch
    fixed_z = fixed_z.to(device)
    if dist.is_main:
        cfg.save(run_dir / "config.json")
    runlog = RunLog(run_dir, cfg.tensorboard) if dist.is_main else None
    # Wrap after restoring, so DDP broadcasts the restored weights from rank 0.
    D_step = accel.maybe_compile(dist.wrap(D, cfg.sync_bn), cfg.compile)
    G_step = accel.maybe_compile(dist.wrap(G, cfg.sync_bn), cfg.compile)

    total_steps = cfg.epochs * len(batches)
    real_target = cfg.label_smoothing
    d_penalty = make_d_penalty(cfg, lambda: step)
    g_penalty = make_g_penalty(cfg)
    base_lrs = [(d_opt, cfg.lr_d), (g_opt, cfg.lr_g)]
    sampler = ema.model if ema else G  # what samples and evaluations show
    needs_acc = cfg.schedule == "gated"
    d_acc_running = 0.5
    running = RunningStats()
    started = time.time()
    bar = tqdm(total=total_steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True)
    with StopOnSignal() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
            first = start_batch if epoch == start_epoch else 0
            for batch, (real, labels) in enumerate(batches.labelled_epoch(epoch, start=first), start=first):
                progress_now = step / total_steps
                train_d, train_g = schedule.plan(step, progress_now, d_acc_running)
                if cfg.lr_decay != "none":
                    set_learning_rates(base_lrs, lr_factor(cfg.lr_decay, progress_now))
                z = sample_z(len(real), cfg.z_size, z_gen, device)
                augment = (lambda x, p=progress_now: augmenter(x, p)) if augmenter.enabled else None
                stats = train_step(real, D_step, G_step, d_opt, g_opt, z, cfg.loss, real_target,
                                   train_d, train_g, use_amp, augment, d_penalty, g_penalty, labels)
                if ema is not None and train_g:
                    ema.update(G, step)
                if needs_acc:  # the gate needs D's accuracy now; other schedules avoid this sync
                    d_acc_running = 0.9 * d_acc_running + 0.1 * stats["d_acc"].item()
                running.add(stats)
                step += 1
                images_seen += len(real) * dist.world_size  # counted over all ranks
                bar.update()
                if step % cfg.log_every == 0:
                    _watch(monitor.observe_losses, _log(running, dist, runlog, epoch, step, images_seen,
                                                        started, bar), dist, runlog, step, log)
                # Under DDP every rank must stop at the same step, so they agree at log steps.
                if (not dist.enabled or step % cfg.log_every == 0) and dist.any(stop.signum is not None):
                    bar.close()
                    _save_interrupted(stop.signum or signal.SIGTERM, running, dist, runlog, epoch, batch + 1,
                                      step, images_seen, started, bar, ckpt_dir / "latest.pt",
                                      _snapshot(cfg, D, G, d_opt, g_opt, fixed_z, z_gen, pieces, epoch,
                                                step, images_seen, batch=batch + 1))
            if running.counts:  # flush a partial interval so every epoch is in the log
                _watch(monitor.observe_losses, _log(running, dist, runlog, epoch, step, images_seen,
                                                    started, bar), dist, runlog, step, log)
            if dist.is_main:
                samples.append(generate(sampler, fixed_z))
                _end_of_epoch(run_dir, samples, epoch)
                if cfg.tensorboard:
                    runlog.image("samples", image_grid(samples[-1], nrow=8), step)
                _watch(monitor.observe_samples, samples[-1], dist, runlog, step, log)
                save_checkpoint(ckpt_dir / "latest.pt", _snapshot(cfg, D, G, d_opt, g_opt, fixed_z, z_gen,
                                                                  pieces, epoch + 1, step, images_seen))
                _keep_epoch_snapshot(ckpt_dir, epoch + 1, cfg.keep_checkpoints)
                if cfg.eval_every and (epoch + 1) % cfg.eval_every == 0:
                    _evaluate(cfg, sampler, images, runlog, epoch, step, images_seen, progress, log)
                write_report(run_dir)
            dist.barrier()
            epochs_done = epoch + 1
            if should_stop is not None and should_stop(epochs_done):
                break
    bar.close()
    if runlog is not None:
        runlog.close()
    return {"run_dir": str(run_dir), "epochs": epochs_done, "steps": step,
            "weights_sha1": weights_fingerprint(D, G),
            "images_seen": images_seen, "seconds": round(time.time() - started, 1),
            "grid": str(samples_dir / f"epoch_{len(samples):03d}.png"),
            "losses": str(run_dir / "losses.png"), "report": str(run_dir / "report.html")}


def weights_fingerprint(*models: torch.nn.Module) -> str:
    """A hash of the parameters: equal across DDP ranks, and across identical runs.

    BatchNorm's running statistics are left out: each rank updates them from its own
    batches (rank 0's are saved), unless sync_bn shares the batch statistics.
    """
    import hashlib

    h = hashlib.sha1()
    for model in models:
        for name, t in unwrap(model).named_parameters():
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _restore_latent_stream(z_gen: torch.Generator, state: torch.Tensor, rank: int) -> bool:
    """Only rank 0's stream is saved, and a CPU state does not fit a CUDA generator."""
    if rank > 0:
        return False
    try:
        z_gen.set_state(state)
        return True
    except RuntimeError:
        return False


def _restore(cfg, run_dir: Path, D, G, d_opt, g_opt, pieces: dict, z_gen, dist, log):
    """Load latest.pt into the (unwrapped) networks and optimizers; returns where to continue."""
    ckpt = load_checkpoint(run_dir / "checkpoints/latest.pt")
    check_resumable(ckpt["config"], cfg)
    G.load_state_dict(ckpt["G"])
    D.load_state_dict(ckpt["D"])
    d_opt.load_state_dict(ckpt["opt_d"])
    g_opt.load_state_dict(ckpt["opt_g"])
    for name, piece in pieces.items():
        if hasattr(piece, "load_state_dict") and ckpt.get(name) is not None:
            piece.load_state_dict(ckpt[name])
    set_rng_state(ckpt["rng"])
    if not _restore_latent_stream(z_gen, ckpt["z_generator"], dist.rank):
        z_gen.manual_seed(cfg.seed + 1 + 1000 * dist.rank + ckpt["step"])
        if not dist.enabled:
            log("note: resuming on a different device; the latent stream is reseeded, so this run "
                "will not match an uninterrupted one bit for bit")
    samples = []
    if (run_dir / "train_samples.pkl").exists():
        samples = load_train_samples(run_dir / "train_samples.pkl")[:ckpt["epoch"]]
    if dist.is_main:
        _truncate_metrics(run_dir / "metrics.jsonl", ckpt["step"])
    batch = ckpt.get("batch", 0)
    log(f"resuming {run_dir} after epoch {ckpt['epoch']}" + (f" and {batch} batches" if batch else "")
        + f" (step {ckpt['step']}, {ckpt['images_seen']} images)")
    return ckpt["epoch"], batch, ckpt["step"], ckpt["images_seen"], samples, ckpt["fixed_z"]


def _log(running: RunningStats, dist, runlog, epoch: int, step: int, images_seen: int,
         started: float, bar) -> None:
    row = _log_row(dist.mean(running.read()), epoch, step, images_seen, started)
    if dist.is_main:
        runlog.append(row)
    bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row.get('g_loss', float('nan')):.3f}",
                    acc=f"{row['d_acc']:.2f}")
    return row


def _watch(observe, observed, dist, runlog, step: int, log) -> None:
    """Pass a log row or the epoch's samples to the collapse monitor; say and log what it finds."""
    if not dist.is_main:
        return
    warning = observe(observed)
    if warning:
        log(f"warning: {warning}")
        runlog.append({"step": step, "warning": warning})


def _save_interrupted(signum: int, running: RunningStats, dist, runlog, epoch: int, batch: int,
                      step: int, images_seen: int, started: float, bar, path: Path, snapshot: dict):
    """Checkpoint mid-epoch and stop; resuming continues from the very next batch."""
    if running.counts:
        _log(running, dist, runlog, epoch, step, images_seen, started, bar)
    if dist.is_main:
        save_checkpoint(path, snapshot)
    dist.barrier()
    name = signal.Signals(signum).name
    raise RunInterrupted(signum, f"{name}: stopped at epoch {epoch + 1}, batch {batch} (step {step}); "
                                 f"checkpoint saved to {path}; continue with --resume")


def _evaluate(cfg, G, images, runlog, epoch: int, step: int, images_seen: int,
              progress: bool, log) -> None:
    """FID/KID/SWD of the current G against the training images, as a metrics.jsonl row."""
    from .metrics import evaluate_generator

    scores = evaluate_generator(G, images, cfg.eval_n, cfg.z_size, cfg.cache_dir, seed=cfg.seed,
                                device=cfg.device, progress=progress)
    runlog.append({
        "step": step, "epoch": epoch + 1, "images": images_seen, "eval_n": scores["n"],
        **{k: round(scores[k], 6) for k in ("fid", "kid", "kid_std", "swd")}})
    log(f"epoch {epoch + 1}: FID {scores['fid']:.2f}  KID {scores['kid']:.4f}  SWD {scores['swd']:.1f}"
        f"  (n={scores['n']})")


def _log_row(stats: dict, epoch: int, step: int, images_seen: int, started: float) -> dict:
    bad = [k for k in ("d_loss", "g_loss") if k in stats and not math.isfinite(stats[k])]
    if bad:
        raise TrainingError(f"{' and '.join(bad)} became {stats[bad[0]]} at step {step}; the last "
                            f"good checkpoint is kept in checkpoints/latest.pt. Lower the learning "
                            f"rates or try --loss ls, then start again or resume")
    return {"step": step, "epoch": epoch + 1, "images": images_seen,
            "time": round(time.time() - started, 2), **{k: round(v, 5) for k, v in stats.items()}}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint, so a resumed run's log has no duplicates."""
    if path.exists():
        from .io import atomic_write_text
        rows = [line for line in path.read_text().splitlines() if line.strip()
                and json.loads(line)["step"] <= step]
        atomic_write_text(path, "".join(r + "\n" for r in rows))


def _end_of_epoch(run_dir: Path, samples: list[np.ndarray], epoch: int) -> None:
    save_train_samples(run_dir / "train_samples.pkl", samples)
    save_png(run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", image_grid(samples[-1], nrow=8),
             upscale=max(1, 128 // samples[-1].shape[1]))
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists() and metrics.stat().st_size:
        save_figure(plot_losses(read_metrics(metrics)), run_dir / "losses.png")
