"""An exponential moving average of the generator's weights (G_ema).

Averaging G over recent steps smooths out the oscillation of GAN training, so samples
and FID come from the EMA copy when it is on (Karras et al. 2018; Yazıcı et al. 2019).

The decay ramps up as min(decay, (1 + step) / (10 + step)): without it, a 0.999 average
still holds (0.999 ** 1000) = 37% of the random initial weights after 1,000 steps, which
ruins the short runs this project is mostly used for.

BatchNorm statistics are not averaged: every update copies G's, so G_ema always has some.
But they describe G's activations, not those of the average, which lags G by up to
1 / (1 - decay) steps; `measure_norms` replaces them, before G_ema is sampled, with
statistics of G_ema's own activations (BigGAN's "standing statistics", Brock et al. 2019).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..checkpoint import unwrap
from ..generate.sample import sample_z

NORM_BATCH = 256  # latents per forward while measuring: enough for stable per-batch statistics


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        source = unwrap(model)
        weight = 1 - self.decay_at(step)
        torch._foreach_lerp_(list(self.model.parameters()), list(source.parameters()), weight)
        for ema_buffer, buffer in zip(self.model.buffers(), source.buffers()):
            ema_buffer.copy_(buffer)  # G's BatchNorm statistics, until measure_norms replaces them

    @torch.no_grad()
    def measure_norms(self, z_size: int, samples: int, seed: int, should_stop=None) -> bool:
        """Set G_ema's BatchNorm statistics to the average over `samples` latents drawn from
        `seed` (its own generator: the training's random streams are left alone). `should_stop()`
        is asked between batches: when it says yes the statistics go back to what they were and
        this returns False, so a signal is honoured within a batch however many samples there are."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or samples <= 0:
            return True
        before = [{k: v.clone() for k, v in norm.state_dict().items()} for norm in norms]
        device = next(self.model.parameters()).device
        generator = torch.Generator().manual_seed(seed)
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over the batches, not a decaying one
        self.model.train()
        try:
            for start in range(0, samples, NORM_BATCH):
                if should_stop is not None and should_stop():
                    for norm, state in zip(norms, before):
                        norm.load_state_dict(state)
                    return False
                self.model(sample_z(min(NORM_BATCH, samples - start), z_size, generator, device))
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum
            self.model.eval()
        return True

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
