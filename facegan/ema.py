"""An exponential moving average of the generator's weights (G_ema).

Averaging G over recent steps smooths out the oscillation of GAN training, so samples
and FID come from the EMA copy when it is on (Karras et al. 2018; Yazıcı et al. 2019).
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

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        source = unwrap(model)
        torch._foreach_lerp_(list(self.model.parameters()), list(source.parameters()), 1 - self.decay)
        for ema_buffer, buffer in zip(self.model.buffers(), source.buffers()):
            ema_buffer.copy_(buffer)  # BatchNorm statistics are taken as they are, not averaged

    def state_dict(self) -> dict:
        return self.model.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
