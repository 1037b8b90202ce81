"""Adaptive augmentation strength (ADA: Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): the augmentations are applied to each image with probability p,
and p follows how much D overfits its training reals.

The overfitting measure is r_t = E[sign(D(real))] over the last `interval` steps: near 0 while
D's verdicts on the reals are as unsure as on unseen faces, 1 once it is certain of every
training image. Every `interval` steps p moves by the images seen since its last move divided
by `span_images`: up when r_t exceeds the target (the paper's 0.6), down when below, clamped
to [0, 1]. A fixed policy is p = 1 always.

The paper lets p cross [0, 1] in 500k images, for runs of millions; facegan's runs on a CPU
see 0.2 to 0.6M in all, so the span here is 100k. Everything stays on the device: no step
waits for the host.
"""
from __future__ import annotations

import torch

TARGET = 0.6          # the paper's r_t target
INTERVAL = 4          # steps between moves of p, the paper's
SPAN_IMAGES = 100_000  # images over which p can rise from 0 to 1


class AdaptiveStrength:
    """`observe(real_sign, images)` after each step; `p` is the current strength (a 0-dim tensor).
    `reduce` averages a tensor over data-parallel ranks, so that every rank moves p alike."""

    def __init__(self, target: float = TARGET, *, interval: int = INTERVAL, span_images: int = SPAN_IMAGES,
                 device: torch.device | str = "cpu", reduce=None):
        if not 0 < target < 1:
            raise ValueError(f"ADA target={target}: must lie strictly between 0 and 1 (the paper's is 0.6)")
        self.target, self.interval, self.span_images = float(target), interval, span_images
        self.reduce = reduce or (lambda t: t)
        self.p = torch.zeros((), device=device)
        self.r_t = torch.zeros((), device=device)  # the last measured overfitting, for the metrics
        self._sign_sum = torch.zeros((), device=device)
        self._steps = 0
        self._images = 0

    def observe(self, real_sign: torch.Tensor, images: int) -> None:
        """One step's mean sign of D's logits on its real batch, and the images that step saw."""
        self._sign_sum = self._sign_sum + real_sign.detach().float()
        self._steps += 1
        self._images += images
        if self._steps < self.interval:
            return
        self.r_t = self.reduce(self._sign_sum / self._steps)
        move = torch.sign(self.r_t - self.target) * (self._images / self.span_images)
        self.p = (self.p + move).clamp(0.0, 1.0)
        self._sign_sum, self._steps, self._images = torch.zeros_like(self._sign_sum), 0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "r_t": self.r_t, "sign_sum": self._sign_sum, "steps": self._steps,
                "images": self._images}

    def load_state_dict(self, state: dict) -> None:
        device = self.p.device
        p, r_t, sign_sum = (state[k].reshape(()).float().to(device) for k in ("p", "r_t", "sign_sum"))
        if not 0 <= p.item() <= 1 or not (r_t.isfinite() and sign_sum.isfinite()):
            raise ValueError(f"ADA state p={p.item()}, r_t={r_t.item()}: p must lie in [0, 1] and both be finite")
        self.p, self.r_t, self._sign_sum = p, r_t, sign_sum
        self._steps, self._images = int(state["steps"]), int(state["images"])
