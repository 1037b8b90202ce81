"""GAN losses as small pure functions of the discriminator's logits.

`real_loss` and `fake_loss` are the course's names. "bce" is the original GAN loss
computed on logits (stable, no sigmoid in D); "ls" is least squares (LSGAN, Mao et al.
2017), which keeps gradients alive for samples D already classifies correctly.
The generator uses the non-saturating form: it maximises log D(G(z)), i.e. it is
trained with `real_loss` on fake logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SMOOTH_TARGET = 0.9  # one-sided label smoothing (Salimans et al. 2016): only real labels


def _real_target(smooth: bool | float) -> float:
    if isinstance(smooth, bool):
        return SMOOTH_TARGET if smooth else 1.0
    return float(smooth)


def real_loss(D_out: torch.Tensor, smooth: bool | float = False, kind: str = "bce") -> torch.Tensor:
    """Loss for logits that should say "real". smooth=True (or a float target) softens the label."""
    target = torch.full_like(D_out, _real_target(smooth))
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(D_out, target)
    if kind == "ls":
        return F.mse_loss(D_out, target)
    raise ValueError(f"loss kind {kind!r}: choose bce or ls")


def fake_loss(D_out: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Loss for logits that should say "fake"."""
    target = torch.zeros_like(D_out)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(D_out, target)
    if kind == "ls":
        return F.mse_loss(D_out, target)
    raise ValueError(f"loss kind {kind!r}: choose bce or ls")


def d_loss(real_logits, fake_logits, kind: str = "bce", real_target: float = 1.0) -> torch.Tensor:
    return real_loss(real_logits, real_target, kind) + fake_loss(fake_logits, kind)


def g_loss(fake_logits, kind: str = "bce") -> torch.Tensor:
    return real_loss(fake_logits, 1.0, kind)


def d_accuracy(real_logits, fake_logits, kind: str = "bce") -> torch.Tensor:
    """Fraction of real and fake images D classifies correctly (a 0-dim tensor)."""
    threshold = 0.0 if kind == "bce" else 0.5  # logit 0 <=> p=0.5; LS targets are 0 and 1
    correct = (real_logits > threshold).float().sum() + (fake_logits <= threshold).float().sum()
    return correct / (real_logits.numel() + fake_logits.numel())
