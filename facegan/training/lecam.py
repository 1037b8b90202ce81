"""LeCam regularisation (Tseng et al., CVPR 2021, "Regularizing Generative Adversarial Networks
under Limited Data"): D's logits are anchored to the running means of its own past verdicts.

    R_LC = E[relu(D(x) - a_F)^2] + E[relu(a_R - D(G(z)))^2]

with a_R and a_F exponential moving averages (decay 0.99) of D's mean logit on real and on
fake images. Penalising a real logit only where it rises past the fakes' anchor, and a fake
one where it falls below the reals' anchor, keeps D's two verdicts from drifting apart when a
small training set lets it memorise the reals; the paper shows it bounds a weighted LeCam
divergence. It costs two means and two squares per step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

DECAY = 0.99  # the paper's


class LeCam:
    """`lecam(real_logits, fake_logits)` -> weight x R_LC, updating the anchors first. The
    anchors start at the first batch's means (the paper's zero-debiased averages start there too)."""

    def __init__(self, weight: float, decay: float = DECAY, device: torch.device | str = "cpu"):
        self.weight, self.decay, self.device = weight, decay, torch.device(device)
        self.anchor_real: torch.Tensor | None = None
        self.anchor_fake: torch.Tensor | None = None

    def __call__(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_mean, fake_mean = real_logits.detach().float().mean(), fake_logits.detach().float().mean()
        if self.anchor_real is None:
            self.anchor_real, self.anchor_fake = real_mean, fake_mean
        else:
            self.anchor_real = torch.lerp(real_mean, self.anchor_real, self.decay)
            self.anchor_fake = torch.lerp(fake_mean, self.anchor_fake, self.decay)
        reg = F.relu(real_logits.float() - self.anchor_fake).pow(2).mean() \
            + F.relu(self.anchor_real - fake_logits.float()).pow(2).mean()
        return self.weight * reg

    def state_dict(self) -> dict:
        return {"anchor_real": self.anchor_real, "anchor_fake": self.anchor_fake}

    def load_state_dict(self, state: dict) -> None:
        anchors = [state.get("anchor_real"), state.get("anchor_fake")]
        if not all(a is None or (isinstance(a, torch.Tensor) and a.numel() == 1) for a in anchors):
            raise ValueError("LeCam anchors must be scalar tensors")
        self.anchor_real, self.anchor_fake = (None if a is None else a.reshape(()).float().to(self.device)
                                              for a in anchors)
