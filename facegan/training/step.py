"""The training step: one D update, then one G update, and what it updates.

`train_step` is the unit the notebook and the tests call, with every option a keyword.
`GAN` holds everything a step changes (nets, optimizers, G_ema, the D/G schedule, the
augmenter), unwrapped, which is what a checkpoint saves. `make_step` fixes what the config
decides (loss, real-label target, autocast, augmentation, penalties, learning-rate decay)
once, and returns the step the training loop calls per batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..config import TrainConfig
from ..nets.models import build_models
from ..nets.progressive import Growth
from ..utils import accel
from ..utils.seeds import stream_seed
from . import losses
from .augment import Augmenter
from .consistency import Consistency
from .distributed import Dist
from .ema import EMA
from .lecam import LeCam
from .schedules import build_schedule, lr_factor, set_learning_rates


def make_optimizers(cfg: TrainConfig, D: nn.Module, G: nn.Module):
    """Adam for each net with its own learning rate (TTUR when lr_d != lr_g)."""
    options = accel.adam_options(next(D.parameters()).device, cfg.fast)
    d_opt = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2), **options)
    g_opt = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2), **options)
    return d_opt, g_opt


def train_step(real: torch.Tensor, D, G, d_opt, g_opt, z: torch.Tensor, *, loss: str = "bce",
               real_target: float = 1.0, train_d: bool = True, train_g: bool = True,
               amp: bool = False, augment=None, d_penalty=None, g_penalty=None, logit_penalty=None,
               consistency=None, labels: torch.Tensor | None = None, step: int = 0, extra_z=()) -> dict:
    """One D update on (real, G(z)), then one G update that tries to fool the updated D.

    Returns detached 0-dim tensors (d_loss, d_acc, and g_loss when G was updated), left
    on the device so the loop need not synchronise with it every step. D's loss and
    accuracy are measured even when the schedule skips its update, because the accuracy
    gate needs them. amp=True runs the forward passes in bf16 autocast (CUDA).
    `augment(x)` transforms everything D sees, real and fake alike (DiffAugment, instance
    noise); `d_penalty(D, real, fake, step)` adds a regulariser (R1, gradient penalty) to
    D's loss, or None to skip it at this step (lazy R1), `logit_penalty(real_logits,
    fake_logits)` one on D's logits of this step (LeCam), `consistency(D, real, fake, real_logits,
    fake_logits, augment)` one on D's verdicts on a second augmentation (bCR), and `g_penalty(fake, real)` a term
    (the tone match) to G's, on the unaugmented images. The logged g_loss stays the
    adversarial part alone; the term is logged as g_penalty.
    `labels` (B,) are the real batch's classes for conditional nets; the fakes get the same
    ones, so both sides show D every class in the same proportions.
    Each latent batch in `extra_z` gives one more G update after the first (G-heavy ratios,
    `--g-steps`), each on its own fresh z against the same D.
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
        if logit_penalty is not None:
            total = total + logit_penalty(real_logits, fake_logits)
        if consistency is not None:
            with autocast:
                total = total + consistency(lambda x: D_plain(x, *conditioned), real, fake.detach(), real_logits,
                                            fake_logits, augment)
        if d_penalty is not None:
            # Penalties differentiate through D twice, which DDP's wrapper does not support;
            # their gradients still land in the same parameters that DDP synchronises.
            penalty = d_penalty(lambda x: D_plain(x, *conditioned), real_seen, fake_seen, step)
            total = total + penalty if penalty is not None else total
        d_opt.zero_grad(set_to_none=True)
        total.backward()
        d_opt.step()

    if train_g:
        # The first G update reuses the fake batch: its forward is done and its graph intact.
        g_update = partial(_g_update, real=real, D=D_plain, g_opt=g_opt, loss=loss, autocast=autocast,
                           augment=augment, g_penalty=g_penalty, conditioned=conditioned)
        g_loss, g_extra = g_update(fake)
        for z_more in extra_z:
            with autocast:
                fake_more = G(z_more, *conditioned)
            g_loss, g_extra = g_update(fake_more)
    stats = {"d_loss": d_loss.detach(),
             "d_acc": losses.d_accuracy(real_logits.detach(), fake_logits.detach(), loss),
             "d_real_sign": real_logits.detach().float().sign().mean()}  # ADA's overfitting measure
    if train_g:
        stats["g_loss"] = g_loss.detach()
        if g_extra is not None:
            stats["g_penalty"] = g_extra.detach()
    return stats


def _g_update(fake: torch.Tensor, *, real, D, g_opt, loss: str, autocast, augment, g_penalty, conditioned):
    """One G step on `fake` against the plain D module; returns (g_loss, g_penalty or None)."""
    # G needs gradients through D, not for D's weights: freezing D skips that work, and
    # the plain module (not a DDP wrapper) runs it, as there is nothing to sync.
    D.requires_grad_(False)
    try:
        with autocast:
            g_logits = D(augment(fake), *conditioned)
            paired = None
            if loss in losses.RELATIVISTIC:  # the updated D's verdict on the real partners
                with torch.no_grad():
                    paired = D(augment(real), *conditioned).float()
        g_loss = losses.g_loss(g_logits.float(), loss, paired)
        g_extra = g_penalty(fake.float(), real) if g_penalty is not None else None
        g_opt.zero_grad(set_to_none=True)
        (g_loss if g_extra is None else g_loss + g_extra).backward()
        g_opt.step()
    finally:
        D.requires_grad_(True)
    return g_loss, g_extra


def make_d_penalty(cfg: TrainConfig):
    """D's regulariser for this config, as `penalty(D, real, fake, step)`, or None:
    WGAN-GP's gradient penalty every step, or R1 and/or R2 every `r1_every` steps scaled by
    that interval (lazy regularisation, Karras et al. 2020)."""
    if cfg.loss == "wgan" and cfg.gp_weight > 0:
        return lambda D, real, fake, step: cfg.gp_weight * losses.gradient_penalty(D, real, fake)
    if cfg.r1_gamma > 0 or cfg.r2_gamma > 0:
        return partial(lazy_r1_r2, r1_gamma=cfg.r1_gamma, r2_gamma=cfg.r2_gamma, every=cfg.r1_every)
    return None


def lazy_r1_r2(D, real: torch.Tensor, fake: torch.Tensor, step: int, r1_gamma: float, r2_gamma: float,
               every: int):
    """R1 (real images) and R2 (fake ones) at every `every`-th step, weighted by `every` so
    their average pull stays gamma's."""
    if step % every:
        return None
    total = 0.5 * r1_gamma * every * losses.r1_penalty(D, real) if r1_gamma > 0 else 0
    if r2_gamma > 0:
        total = total + 0.5 * r2_gamma * every * losses.r2_penalty(D, fake)
    return total


def make_g_penalty(cfg: TrainConfig):
    """G's extra term for this config, or None: the tone match (losses.tone_gap) weighted
    by cfg.tone_match."""
    if cfg.tone_match > 0:
        return lambda fake, real: cfg.tone_match * losses.tone_gap(fake, real)
    return None


@dataclass
class GAN:
    """What the training step updates, as plain (unwrapped) modules and objects."""
    D: nn.Module
    G: nn.Module
    d_opt: torch.optim.Optimizer
    g_opt: torch.optim.Optimizer
    ema: EMA | None
    schedule: object  # facegan.training.schedules: plan(step, progress) -> (train_d, train_g)
    augmenter: Augmenter
    lecam: LeCam | None = None

    @classmethod
    def build(cls, cfg: TrainConfig, device: torch.device, rank: int = 0,
              D: nn.Module | None = None, G: nn.Module | None = None, reduce=None) -> "GAN":
        """Fresh nets (initialised from torch's global generator), optimizers and helpers.
        A `D` or `G` passed in (the notebook's own nets) is used as it is, in place of the
        config's; the optimizers and G_ema are then made over it. `reduce` averages a
        tensor over data-parallel ranks (ADA's measure)."""
        if D is None or G is None:
            built_D, built_G = build_models(cfg)
            D, G = (built_D if D is None else D), (built_G if G is None else G)
        D, G = accel.prepare_model(D, device, cfg.fast), accel.prepare_model(G, device, cfg.fast)
        d_opt, g_opt = make_optimizers(cfg, D, G)
        augmenter = Augmenter(cfg.augment, cfg.instance_noise, seed=stream_seed(cfg.seed, "augment", rank),
                              device=device, ada_target=cfg.ada_target, reduce=reduce)
        return cls(D, G, d_opt, g_opt, EMA(G, cfg.ema_decay) if cfg.ema_decay > 0 else None,
                   build_schedule(cfg), augmenter, LeCam(cfg.lecam, device=device) if cfg.lecam > 0 else None)

    @property
    def sampler(self) -> nn.Module:
        """The generator samples and evaluations show: G_ema when EMA is on."""
        return self.ema.model if self.ema is not None else self.G

    def measure_sampler_norms(self, cfg: TrainConfig, should_stop=None) -> bool:
        """Before G_ema is sampled or saved: its BatchNorm statistics measured on its own
        activations instead of copied from G (facegan/training/ema.py). Training never reads them.
        False when `should_stop()` cut the measurement short (the statistics are then as before)."""
        if self.ema is None:
            return True
        return self.ema.measure_norms(cfg.z_size, cfg.ema_norm_samples, stream_seed(cfg.seed, "ema_norms"),
                                      should_stop)

    def parts(self) -> dict:
        """Each stateful part by its checkpoint key (see facegan/training/resume.py)."""
        return {"G": self.G, "D": self.D, "opt_d": self.d_opt, "opt_g": self.g_opt, "G_ema": self.ema,
                "schedule": self.schedule, "augmenter": self.augmenter, "lecam": self.lecam}


def make_step(cfg: TrainConfig, gan: GAN, dist: Dist):
    """The loop's step, `step(real, labels, z, step, progress) -> stats`, with everything
    the config fixes bound once. Wraps the nets for DDP and torch.compile: call it after
    restoring a checkpoint, so DDP broadcasts the restored weights from rank 0."""
    D = accel.maybe_compile(dist.wrap(gan.D, cfg.sync_bn), cfg.compile)
    G = accel.maybe_compile(dist.wrap(gan.G, cfg.sync_bn), cfg.compile)
    device = next(gan.G.parameters()).device
    options = dict(loss=cfg.loss, real_target=cfg.real_target, amp=accel.amp_enabled(device, cfg.amp),
                   d_penalty=make_d_penalty(cfg), g_penalty=make_g_penalty(cfg), logit_penalty=gan.lecam,
                   consistency=Consistency(cfg.bcr) if cfg.bcr > 0 else None)
    base_lrs = [(gan.d_opt, cfg.lr_d), (gan.g_opt, cfg.lr_g)]
    augmenter = gan.augmenter if gan.augmenter.enabled else None
    growth = Growth.for_run(cfg, dist)  # progressive growing: the nets' size and fade, from progress

    def step(real: torch.Tensor, labels, z: torch.Tensor, step: int, progress: float) -> dict:
        if growth is not None:  # set before every step, so a resume continues exactly, even mid-fade
            growth.apply(progress, gan.D, gan.G, gan.sampler)
        train_d, g_updates = gan.schedule.plan(step, progress)
        # The loop draws z for cfg.g_steps updates; a decaying ratio uses the first g_updates.
        z, *extra_z = z.split(len(real))
        if cfg.lr_decay != "none":
            set_learning_rates(base_lrs, lr_factor(cfg.lr_decay, progress))
        augment = partial(augmenter, progress=progress) if augmenter is not None else None
        stats = train_step(real, D, G, gan.d_opt, gan.g_opt, z, train_d=train_d, train_g=g_updates > 0,
                           augment=augment, labels=labels, step=step, extra_z=extra_z[:max(g_updates - 1, 0)], **options)
        if gan.ema is not None and g_updates:
            gan.ema.update(gan.G, step)
        gan.schedule.observe(stats)
        stats.update(gan.augmenter.observe(stats, len(real)))
        return stats
    return step


# ---------------------------------------------------------------- will the run fit?

@dataclass(frozen=True)
class MemoryEstimate:
    """What a run needs, in bytes, from its config alone (`estimate_memory`)."""
    params: int       # parameters of D and G
    nets: int         # their weights, gradients and Adam's two moments, and G_ema's weights
    activations: int  # one training step's layer outputs (or the fixed-z batch's, when larger)
    images: int       # uint8 images held in RAM: the synthetic set and every epoch's fixed-z samples

    @property
    def on_device(self) -> int:
        return self.nets + self.activations


def estimate_memory(cfg: TrainConfig) -> MemoryEstimate:
    """A simple, generous estimate, so that absurd sizes are refused before anything is allocated:

        nets         4 bytes x parameters x 4 (weights, gradients, Adam's m and v), + G's again for G_ema
        activations  4 bytes x every layer's output for one image, x batch_size x (G once, D three
                     times: real, fake, and G's step), x 2 for backward; or n_fixed images through G
        images       synthetic_n x S x S x 3 (data=synthetic) + n_fixed x S x S x 3 x epochs (the samples)

    The nets are built on torch's meta device (shapes, no memory) and run once on one image there."""
    with torch.device("meta"):
        D, G = build_models(cfg)
    p_d, p_g = (sum(p.numel() for p in net.parameters()) for net in (D, G))
    per_image = {}
    try:
        z = torch.empty(1, cfg.z_size, device="meta")
        labels = (torch.zeros(1, dtype=torch.long, device="meta"),) if getattr(G, "n_classes", 0) else ()
        image = _count_outputs(G, per_image, "G", z, *labels)
        _count_outputs(D, per_image, "D", image, *labels)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # a layer meta cannot run: weights only
        per_image = {}
    a_g, a_d = per_image.get("G", 0), per_image.get("D", 0)
    activations = 4 * max(2 * cfg.batch_size * (a_g + 3 * a_d), cfg.n_fixed * a_g)
    pixels = cfg.image_size ** 2 * 3
    images = (cfg.synthetic_n * pixels if cfg.data == "synthetic" else 0) + cfg.n_fixed * pixels * cfg.epochs
    nets = 4 * (4 * (p_d + p_g) + (p_g if cfg.ema_decay > 0 else 0))
    return MemoryEstimate(p_d + p_g, nets, activations, images)


def _count_outputs(net: nn.Module, counts: dict, key: str, *inputs) -> torch.Tensor:
    """net(*inputs), adding the elements every leaf layer outputs to counts[key]."""
    counts[key] = 0

    def hook(module, args, output):
        if isinstance(output, torch.Tensor):
            counts[key] += output.numel()
    hooks = [m.register_forward_hook(hook) for m in net.modules() if not any(m.children())]
    try:
        return net(*inputs)
    finally:
        for h in hooks:
            h.remove()


def check_memory(cfg: TrainConfig, device: torch.device) -> MemoryEstimate:
    """Refuse, in one line with the estimate and the memory there is, a run that cannot fit:
    nets and activations in the device's memory (RAM on the CPU), images in RAM."""
    from ..errors import ConfigError

    need = estimate_memory(cfg)
    ram, held = accel.ram_bytes(), accel.device_memory_bytes(device)
    on_cpu = device.type == "cpu"
    checks = [(need.on_device + (need.images if on_cpu else 0), held, "RAM" if on_cpu else f"{device} memory")]
    if not on_cpu:
        checks.append((need.images, ram, "RAM"))
    for bytes_needed, there, where in checks:
        if there is not None and bytes_needed > there:
            raise ConfigError(
                f"this run needs about {accel.gib(bytes_needed)} of {where} ({need.params:,} parameters: "
                f"{accel.gib(need.nets)} with gradients and Adam's state; activations: {accel.gib(need.activations)}; "
                f"images: {accel.gib(need.images)}) but this "
                f"machine has {accel.gib(there)}; use a smaller --conv-dim, --z-size, --batch-size, --image-size, "
                f"--synthetic-n or --n-fixed")
    return need
