"""An exponential moving average of the generator's weights (G_ema).

Averaging G over recent steps smooths out the oscillation of GAN training, so samples
and FID come from the EMA copy when it is on (Karras et al. 2018; Yazıcı et al. 2019).

The decay ramps up as min(decay, (1 + step) / (10 + step)): without it, a 0.999 average
still holds (0.999 ** 1000) = 37% of the random initial weights after 1,000 steps, which
ruins the short runs this project is mostly used for.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .checkpoint import unwrap


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
            ema_buffer.copy_(buffer)  # BatchNorm statistics are taken as they are, not averaged

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
