"""GAN losses as small pure functions of the discriminator's logits, and D's penalties.

`real_loss` and `fake_loss` are the course's names. Kinds:
- "bce": the original GAN loss on logits (stable, no sigmoid in D); G uses the
  non-saturating form, i.e. `real_loss` on fake logits.
- "ls": least squares (LSGAN, Mao et al. 2017): gradients stay alive for samples D
  already classifies correctly.
- "hinge": D pushes real logits above 1 and fake ones below -1; G raises fake logits
  (Miyato et al. 2018, with spectral norm).
- "wgan": D estimates the Wasserstein distance (real minus fake scores); it needs a
  Lipschitz D, which `gradient_penalty` (WGAN-GP, Gulrajani et al. 2017) enforces.
- "rpgan": relativistic pairing (R3GAN, Huang et al. 2024): D wants each real image to
  outscore the fake one it is paired with, G the reverse; stable with R1 and R2.
`r1_penalty` (Mescheder et al. 2018) penalises D's gradient on real images, `r2_penalty`
the same on fake ones.
`tone_gap` is a G-side term: how far the skin tones of G's batch lie from the real batch's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import LOSSES
from ..data.tone import soft_ita

RELATIVISTIC = ("rpgan",)  # losses whose G side also needs D's verdict on real images
PER_IMAGE = tuple(kind for kind in LOSSES if kind not in RELATIVISTIC)
SMOOTH_TARGET = 0.9  # one-sided label smoothing (Salimans et al. 2016): only real labels


def _real_target(smooth: bool | float) -> float:
    if isinstance(smooth, bool):
        return SMOOTH_TARGET if smooth else 1.0
    return float(smooth)


def real_loss(D_out: torch.Tensor, smooth: bool | float = False, kind: str = "bce") -> torch.Tensor:
    """Loss for logits that should say "real". smooth=True (or a float target) softens the label."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(D_out, torch.full_like(D_out, _real_target(smooth)))
    if kind == "ls":
        return F.mse_loss(D_out, torch.full_like(D_out, _real_target(smooth)))
    if kind == "hinge":
        return F.relu(1 - D_out).mean()
    if kind == "wgan":
        return -D_out.mean()
    raise ValueError(f"loss kind {kind!r}: choose one of {', '.join(PER_IMAGE)} (a per-image loss)")


def fake_loss(D_out: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """Loss for logits that should say "fake"."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(D_out, torch.zeros_like(D_out))
    if kind == "ls":
        return F.mse_loss(D_out, torch.zeros_like(D_out))
    if kind == "hinge":
        return F.relu(1 + D_out).mean()
    if kind == "wgan":
        return D_out.mean()
    raise ValueError(f"loss kind {kind!r}: choose one of {', '.join(PER_IMAGE)} (a per-image loss)")




def d_loss(real_logits, fake_logits, kind: str = "bce", real_target: float = 1.0) -> torch.Tensor:
    if kind == "rpgan":
        # Relativistic pairing (RpGAN, Jolicoeur-Martineau 2019; R3GAN): each real image should
        # score above its paired fake one. softplus(-t) = -log sigmoid(t).
        return F.softplus(fake_logits - real_logits).mean()
    return real_loss(real_logits, real_target, kind) + fake_loss(fake_logits, kind)


def g_loss(fake_logits, kind: str = "bce", real_logits: torch.Tensor | None = None) -> torch.Tensor:
    if kind == "rpgan":
        if real_logits is None:
            raise ValueError("loss kind 'rpgan': G's loss pairs its fakes with real images; pass real_logits")
        return F.softplus(real_logits - fake_logits).mean()  # each fake should outscore its real partner
    if kind in ("hinge", "wgan"):
        return -fake_logits.mean()  # G raises D's score of its images
    return real_loss(fake_logits, 1.0, kind)


def r1_penalty(D, real: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 on real images: D stays smooth where the data is."""
    real = real.detach().float().requires_grad_(True)  # fakes made under bf16 autocast are bf16
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def r2_penalty(D, fake: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 on generated images (R2): with R1, the zero-centred pair R3GAN
    shows makes the relativistic loss converge."""
    return r1_penalty(D, fake)


def gradient_penalty(D, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E (||grad D(x_hat)|| - 1)^2 on random mixes of real and fake images (WGAN-GP)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def d_accuracy(real_logits, fake_logits, kind: str = "bce") -> torch.Tensor:
    """Fraction of real and fake images D classifies correctly (a 0-dim tensor)."""
    if kind == "rpgan":  # a pair is right when the real image outscores its fake partner
        return (real_logits > fake_logits).float().mean()
    threshold = 0.5 if kind == "ls" else 0.0  # LS targets are 0 and 1; the others are centred on 0
    correct = (real_logits > threshold).float().sum() + (fake_logits <= threshold).float().sum()
    return correct / (real_logits.numel() + fake_logits.numel())


def sorted_gap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein-1 distance between two equal-size samples: the mean gap between
    their sorted values. Each value is pulled towards its quantile in the other sample,
    so it moves a distribution without asking any one image to copy another."""
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"sorted_gap compares two 1-D samples of one size; got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return (a.sort().values - b.sort().values).abs().mean()


def tone_gap(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """How far the skin-tone (ITA) distribution of G's batch lies from the real batch's:
    their Wasserstein-1 distance in radians (0.1 is about 6 degrees).

    D judges faces one at a time and need not mind if G paints every face the same warm
    middle tone; this term does. With --balance tone the real batch is the balanced
    draw, so it pulls G towards equal tone shares, not CelebA's."""
    return sorted_gap(torch.deg2rad(soft_ita(fake)), torch.deg2rad(soft_ita(real.detach())))
