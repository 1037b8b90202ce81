"""The training loop: per batch a D step then a G step; per epoch fixed-z samples and a snapshot.

`train(cfg)` reads top to bottom: data, the GAN, the run's state (fresh or resumed), the
step bound to the config, then the loop. What it updates lives in step.py, where the
loop stands and how it resumes in resume.py; what it says in steplog.py, the checkpoints
it keeps in snapshots.py, its evaluations in evaluation.py, when it stops early in
stopping.py, and its pictures in views.py. The run folder it leaves behind:

    runs/<name>/config.json         the TrainConfig, as JSON
    runs/<name>/metrics.jsonl       one row per `log_every` steps: losses, D accuracy, images seen
    runs/<name>/checkpoints/        latest.pt plus the last `keep_checkpoints` epoch_XXX.pt
    runs/<name>/samples/            reals.png and epoch_XXX.png from the fixed z
    runs/<name>/losses.png          the loss plot
    runs/<name>/train_samples.pkl   the fixed-z images of every epoch (format in generate/sample.py)
    runs/<name>/report.html         one self-contained page about the run
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..config import TrainConfig
from ..data.images import training_batches, training_images
from ..errors import ConfigError, TrainingError
from ..generate.sample import generate
from ..utils import accel
from ..utils.seeds import stream_seed
from .distributed import Dist
from .evaluation import Evaluation
from .resume import RunState, check_resumable, latest_checkpoint
from .runfolder import RunFolder
from .snapshots import Snapshots, weights_fingerprint
from .step import GAN, check_memory, make_optimizers, make_step, train_step
from .steplog import StepLog
from .stopping import RunInterrupted, StopOnSignal, Stopping
from .views import Views

# What the notebook, the tests and older code import from here.
__all__ = ["train", "train_step", "make_optimizers", "check_resumable", "weights_fingerprint",
           "TrainingError", "RunInterrupted"]


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, log=print,
          should_stop=None, overwrite: bool = False, D: nn.Module | None = None,
          G: nn.Module | None = None) -> dict:
    """Train a DCGAN as `cfg` says, writing the run folder; returns a summary dict.

    With resume=True the run continues from `<run_dir>/checkpoints/latest.pt`, exactly
    where it stopped: same weights, optimizer moments, data order and RNG streams.
    A folder that already holds a run is refused unless resume=True or overwrite=True
    (which replaces that run), and is locked against a second writer while training.
    `should_stop(epochs_done)` is asked after each epoch's checkpoint; True ends the run
    early (as an interruption would), to be continued with resume=True. Under torchrun
    the same call trains data-parallel (see distributed.py); only rank 0 writes.

    `D` and `G` replace the nets the config would build (the notebook passes the learner's
    own; either may be left out). Like facegan.nets.models' nets, D must take images
    (B, 3, S, S), S = cfg.image_size, and return logits (B, 1), and G must take z
    (B, cfg.z_size) and return images (B, 3, S, S) in [-1, 1]; a net that does not is
    refused with a one-line ConfigError before anything is written. They are trained in
    place, from the weights they hold (initialise them first), with Adam optimizers (and
    G_ema) made over them from the config, whose architecture fields then only label the
    run. Checkpoints hold their state_dicts, so a resume needs the same nets passed again.
    """
    check_own_nets(cfg, D, G)
    # A device this machine lacks, or a run that cannot fit in its memory, is one line before
    # the run folder is made or anything is allocated (the estimate is of the config's nets).
    device = accel.resolve_device(cfg.device)
    if D is None and G is None:
        check_memory(cfg, device)
    dist = Dist.from_env()
    try:
        with RunFolder(cfg.run_dir, resume=resume, overwrite=overwrite, main=dist.is_main):
            return _train(cfg, dist, resume, progress and dist.is_main, log if dist.is_main else _quiet,
                          should_stop, D, G)
    finally:
        dist.close()


# docs: begin loop
def _train(cfg: TrainConfig, dist: Dist, resume: bool, progress: bool, log, should_stop, D, G) -> dict:
    device = training_device(cfg, dist)
    torch.manual_seed(stream_seed(cfg.seed, "weights"))  # the same initial weights on every rank
    images = training_images(cfg, progress=progress, log=log)
    batches = training_batches(cfg, images, device, dist, log)
    gan = GAN.build(cfg, device, dist.rank, D, G, reduce=dist.mean_tensor)
    state = RunState.fresh(cfg, device, dist.rank)
    total_steps = cfg.epochs * len(batches) or None  # None: the --minutes budget alone ends the run
    stopping = Stopping(cfg, dist)
    steplog = StepLog(cfg, dist, total_steps=total_steps, deadline=stopping.deadline, progress=progress, log=log)
    parts = {**gan.parts(), "monitor": steplog.monitor}  # what a checkpoint holds, by key
    if resume:
        state.restore(load_checkpoint(latest_checkpoint(cfg.run_dir)), cfg, parts, dist.rank)
    snapshots, views = Snapshots(cfg, parts), Views(cfg.run_dir)
    evaluation = Evaluation(cfg, dist, images, record=steplog.record, progress=progress, log=log)
    steplog.open(state, device, resumed=resume)  # metrics.jsonl: a new one, or cut back to the checkpoint
    if dist.is_main and resume:
        evaluation.recall()  # the best FID so far, for best.pt and --early-stop
    elif dist.is_main:
        snapshots.drop_best()
        views.write_reals(images)
    steplog.start(state)  # config.json, the metrics writer and the progress bar
    if resume and _catch_up(cfg, state, dist, snapshots, evaluation, views, gan, steplog):  # what a kill cut short
        return _close(state, steplog, views, evaluation, gan, "early_stop")  # on the evaluation redone
    step = make_step(cfg, gan, dist)

    with StopOnSignal() as stop:
        for epoch in epochs_to_train(state.epoch, cfg.epochs):
            steplog.begin_epoch(epoch)
            for real, labels in batches.labelled_epoch(epoch, start=state.batch):
                z = state.next_latents(len(real) * cfg.g_steps, cfg.z_size)  # a batch per G update
                stats = step(real, labels, z, state.step, state.step / total_steps if total_steps else 0.0)
                state.advance(len(real) * dist.world_size)  # images are counted over all ranks
                steplog.after_step(stats, state)
                if stopping.requested(stop.signum, state.step):  # Ctrl-C, SIGTERM or --minutes spent
                    # Save the snapshot mid-epoch, so that a resume continues from the very next batch
                    gan.measure_sampler_norms(cfg)
                    steplog.stop(state)
                    if dist.is_main:
                        views.save_samples(state)  # first: the checkpoint then carries no samples twice
                        snapshots.save(state)
                    dist.barrier()
                    # A signal (on any rank) interrupts the run; a spent budget ends it
                    if stopping.signalled(stop.signum):
                        raise stopping.interrupted(stop.signum, state, snapshots.latest)
                    log(stopping.budget_spent(state, snapshots.latest))
                    if dist.is_main and evaluation.enabled:  # the weights the run ends with are scored too
                        evaluation.run(gan.sampler, state, keep_best=snapshots.keep_best)
                    return _close(state, steplog, views, evaluation, gan, "budget")
            state.end_epoch()
            # G_ema's BatchNorm statistics, before it is sampled and saved. A signal during a long
            # measurement (one process) saves the finished epoch; a resume draws its samples.
            if not gan.measure_sampler_norms(cfg, should_stop=lambda: not dist.enabled and stop.signum is not None):
                steplog.stop(state)
                views.save_samples(state)
                snapshots.save(state)
                raise stopping.interrupted(stop.signum, state, snapshots.latest)
            steplog.flush(state)
            if dist.is_main:  # only rank 0 writes
                # Draw the fixed-z samples
                _draw_samples(state, gan, steplog, views)
                # Save the snapshot
                snapshots.save(state)
                snapshots.keep_epoch(state.epoch)
                # Evaluate; latest.pt holds the weights scored, so a new best FID keeps it as best.pt
                if evaluation.due(state.epoch):
                    evaluation.run(gan.sampler, state, keep_best=snapshots.keep_best)
                # Refresh the views
                views.refresh(state)
            dist.barrier()
            # Stop early: --early-stop, or the caller's should_stop
            if evaluation.plateaued():
                return _close(state, steplog, views, evaluation, gan, "early_stop")
            if should_stop is not None and should_stop(state.epoch):
                return _close(state, steplog, views, evaluation, gan, "caller")
    return _close(state, steplog, views, evaluation, gan, "epochs")
# docs: end loop


def epochs_to_train(done: int, epochs: int):
    """The epochs left after `done`; with epochs=0 they never run out (the time budget ends the run)."""
    return itertools.count(done) if epochs == 0 else range(done, epochs)


def _draw_samples(state: RunState, gan: GAN, steplog: StepLog, views: Views) -> None:
    """The finished epoch's fixed-z samples: kept in the run state, drawn as a grid, watched for collapse."""
    state.samples.append(generate(gan.sampler, state.fixed_z))
    steplog.watch_samples(state, views.write_grid(state))


def _catch_up(cfg: TrainConfig, state: RunState, dist: Dist, snapshots: Snapshots, evaluation: Evaluation,
              views: Views, gan: GAN, steplog: StepLog) -> bool:
    """A resumed run first finishes the end of the epoch its checkpoint closed, as far as a kill
    may have cut it short: its epoch_XXX.pt, its evaluation (on the checkpoint's weights), best.pt
    and the views (rewritten at the run's end even when no epoch is left to train). True when
    --early-stop then ends the run, as it would have without the kill."""
    at_epoch_end = state.batch == 0 and state.epoch > 0
    if dist.is_main:
        views.stale = True
        if at_epoch_end and len(state.samples) == state.epoch - 1:  # a signal came before they were drawn
            gan.measure_sampler_norms(cfg)
            _draw_samples(state, gan, steplog, views)
            snapshots.save(state)
        if at_epoch_end:
            snapshots.keep_epoch(state.epoch)
        evaluation.catch_up(gan.sampler, state, snapshots)
    dist.barrier()
    return at_epoch_end and evaluation.plateaued()


def _close(state: RunState, steplog: StepLog, views: Views, evaluation: Evaluation, gan: GAN, ended_by: str) -> dict:
    """Close the bar and the logs and bring the views up to date; the run's summary, with what
    ended it: "budget", "epochs", "early_stop" or "caller" (should_stop)."""
    steplog.close()
    views.finish(state)
    return {"run_dir": str(views.run_dir), "epochs": state.epoch, "steps": state.step, **evaluation.summary(),
            "weights_sha1": weights_fingerprint(gan.D, gan.G), "images_seen": state.images_seen,
            "seconds": steplog.seconds(), "ended_by": ended_by, **views.paths(state)}


def _quiet(*args, **kwargs) -> None:
    pass


def check_own_nets(cfg: TrainConfig, D: nn.Module | None, G: nn.Module | None) -> None:
    """Refuse, with a one-line ConfigError, nets passed to train() that cannot stand in for
    the config's: tried once on zeros, in eval mode (BatchNorm statistics stay as they are)."""
    if D is None and G is None:
        return
    for field, needs in (("grow_from", "facegan's progressive nets"), ("condition", "nets that read class labels")):
        if getattr(cfg, field) not in (0, "none"):
            raise ConfigError(f"train(cfg, D=..., G=...): {field}={getattr(cfg, field)!r} needs {needs}; "
                              f"drop D and G or that option")
    S, B = cfg.image_size, 2
    for name, net, given, wanted, like in (
            ("D", D, (B, 3, S, S), (B, 1), "logits (B, 1)"),
            ("G", G, (B, cfg.z_size), (B, 3, S, S), f"images (B, 3, {S}, {S})")):
        if net is None:
            continue
        if not isinstance(net, nn.Module) or not any(True for _ in net.parameters()):
            raise ConfigError(f"train(cfg, {name}=...): {name} must be a torch nn.Module with parameters, "
                              f"got {type(net).__name__}")
        if not any(p.requires_grad for p in net.parameters()):  # Adam would have nothing to train
            raise ConfigError(f"train(cfg, {name}=...): none of {name}'s parameters requires a gradient, so "
                              f"training would leave it as it is; call {name}.requires_grad_(True)")
        device = next(net.parameters()).device
        mode = net.training
        try:
            with torch.no_grad():
                out = net.eval()(torch.zeros(given, device=device))
        except Exception as e:  # any failure of the learner's forward is the same complaint
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise ConfigError(f"train(cfg, {name}=...): {name} failed on an input of shape {given} ({first}); "
                              f"like facegan's nets it must map it to {like} (image_size={S}, "
                              f"z_size={cfg.z_size})") from None
        finally:
            net.train(mode)
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        if shape != wanted:
            raise ConfigError(f"train(cfg, {name}=...): {name} maps input {given} to {shape}; like facegan's "
                              f"nets it must give {like} (image_size={S}, z_size={cfg.z_size})")
        if out.dtype != torch.float32:  # the losses, G_ema and the samples all expect fp32
            raise ConfigError(f"train(cfg, {name}=...): {name} returns {str(out.dtype).replace('torch.', '')}; "
                              f"like facegan's nets it must return float32 (build it in float32, or end its "
                              f"forward with .float())")


def training_device(cfg: TrainConfig, dist: Dist) -> torch.device:
    """This rank's device, with the backends set up for it."""
    device = dist.device(accel.resolve_device(cfg.device))
    if cfg.sync_bn and device.type != "cuda":
        raise ConfigError("sync_bn needs CUDA (SyncBatchNorm has no CPU kernels); drop --sync-bn on CPU")
    accel.setup_backends(device, cfg.fast)
    return device
