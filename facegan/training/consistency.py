"""Balanced consistency regularisation, bCR (Zhao et al. 2021, "Improved Consistency
Regularization for GANs"): D should give the same verdict on two augmentations of one image.

    L_bCR = lambda_real * E[(D(T(x)) - D(x'))^2] + lambda_fake * E[(D(T(G(z))) - D(G(z)'))^2]

Here x' is the augmented real D already judged in the step and T(x) a second, independent
draw of the same policy (DiffAugment's, with ADA's strength when that is on), so bCR sits on
top of DiffAugment as the paper's combination does, and costs two more passes through D
(one for the reals, one for the fakes) with their backward. One weight serves both sides,
the paper's lambda_real = lambda_fake = 10.
"""
from __future__ import annotations

import torch


class Consistency:
    """`bcr(D, real, fake, real_logits, fake_logits, augment)` -> weight x L_bCR, where real and
    fake are the step's images before augmentation (fake detached) and the logits D's verdicts
    on the step's own augmentation of them."""

    def __init__(self, weight: float):
        if weight <= 0:
            raise ValueError(f"bCR weight={weight}: must be > 0 (10 is the paper's)")
        self.weight = weight

    def __call__(self, D, real: torch.Tensor, fake: torch.Tensor, real_logits: torch.Tensor,
                 fake_logits: torch.Tensor, augment) -> torch.Tensor:
        # Reals and fakes pass D apart, as in the step: a BatchNorm D must not mix their statistics
        real_again, fake_again = D(augment(real)), D(augment(fake))
        return self.weight * ((real_again.float() - real_logits.float()).pow(2).mean()
                              + (fake_again.float() - fake_logits.float()).pow(2).mean())
