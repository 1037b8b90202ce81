"""Augmentations of D's inputs, so D cannot simply memorise a small training set.

The same random transform must be applied to real and fake images, in the D step and in
the G step, which is why every operation here is differentiable w.r.t. its input: G's
gradient has to flow back through the augmentation.

- `diff_augment`: DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for
  Data-Efficient GAN Training"): color jitter, translation with zero padding, cutout.
- `instance_noise`: Gaussian noise on D's inputs (Sønderby et al. 2016), annealed to 0
  by `noise_sigma` so the final D sees clean images.
- `Augmenter`: both, with its own generator so a resumed run draws the same transforms,
  and optionally ADA's adaptive strength (facegan/training/ada.py): each augmentation applied
  to an image with probability p, which follows D's overfitting.

Inputs are (B, 3, H, W) float tensors in [-1, 1] on any device, in any memory format.
"""
from __future__ import annotations

import torch

from ..config import AUGMENTS
from .ada import AdaptiveStrength

TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the image side
CUTOUT_RATIO = 1 / 2       # side of the cut-out square, as a fraction of the image side


def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) of `shape` on x's device; drawn on the generator's own device when given
    (a CPU generator cannot draw CUDA tensors), so seeded runs reproduce on any device."""
    device = generator.device if generator is not None else x.device
    return torch.rand(shape, generator=generator, device=device).to(x.device)


def _randint(low: int, high: int, shape, x: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else x.device
    return torch.randint(low, high, shape, generator=generator, device=device).to(x.device)


def _per_image(x: torch.Tensor, generator) -> torch.Tensor:
    return _rand((x.shape[0], 1, 1, 1), x, generator).to(x.dtype)


def color(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Random brightness, saturation and contrast, one draw of each per image.

    DiffAugment applies them one after the other: x + b, then (x - gray) * s + gray, then
    (x - mean) * c + mean. Brightness moves gray and mean by b, and saturation leaves
    the mean where it was, so the three collapse into one pass over the pixels:
    c * s * x + c * (1 - s) * gray + (1 - c) * mean + b, with gray and mean those of x.
    Same draws, same result to float rounding, a third of the memory traffic."""
    brightness = _per_image(x, generator) - 0.5
    saturation = _per_image(x, generator) * 2
    contrast = _per_image(x, generator) + 0.5
    gray = x.mean(dim=1, keepdim=True)
    mean = gray.mean(dim=(2, 3), keepdim=True)
    offset = gray * (contrast * (1 - saturation)) + ((1 - contrast) * mean + brightness)
    return torch.addcmul(offset, x, contrast * saturation)


def _shifted_index(size: int, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image, the source index of every output row (or column) and whether it
    lies inside the image; outside pixels become zero padding."""
    src = torch.arange(size, device=shift.device)[None, :] - shift[:, None]
    inside = (src >= 0) & (src < size)
    return src.clamp(0, size - 1), inside


def translation(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Shift each image by up to 1/8 of its size in x and y, filling with zeros.
    Done with one gather over the flattened pixels, whose gradient scatters back to the
    source pixels."""
    b, c, h, w = x.shape
    max_dy, max_dx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dy = _randint(-max_dy, max_dy + 1, (b,), x, generator)
    dx = _randint(-max_dx, max_dx + 1, (b,), x, generator)
    rows, rows_in = _shifted_index(h, dy)
    cols, cols_in = _shifted_index(w, dx)
    source = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    inside = rows_in[:, None, :, None] & cols_in[:, None, None, :]
    return x.reshape(b, c, h * w).gather(2, source).view(b, c, h, w) * inside.to(x.dtype)


def cutout(x: torch.Tensor, generator=None) -> torch.Tensor:
    """Zero a square of half the image side per image. Its centre is uniform over the
    whole image (the square may be clipped at the border), so edge pixels get masked
    too rather than the face centre every time."""
    b, _, h, w = x.shape
    ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    cy = _randint(0, h + 1 - ch % 2, (b,), x, generator)
    cx = _randint(0, w + 1 - cw % 2, (b,), x, generator)
    ys = torch.arange(h, device=x.device)[None, :] - (cy[:, None] - ch // 2)
    xs = torch.arange(w, device=x.device)[None, :] - (cx[:, None] - cw // 2)
    in_y, in_x = (ys >= 0) & (ys < ch), (xs >= 0) & (xs < cw)
    masked = in_y[:, None, :, None] & in_x[:, None, None, :]
    return x * (~masked).to(x.dtype)


AUGMENTATIONS = dict(zip(AUGMENTS, (color, translation, cutout)))  # the names config declares


def parse_policy(policy: str) -> list[str]:
    """'color, cutout' -> ['color', 'cutout']; unknown names raise ValueError."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r} in policy {policy!r}: "
                         f"choose from {', '.join(AUGMENTATIONS)} (comma-separated)")
    return names


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None, p: torch.Tensor | float | None = None) -> torch.Tensor:
    """Apply the policy's augmentations in order, each with its own per-image draw; with `p`,
    each one to an image only with probability p (ADA's strength). The result keeps x's
    memory format (gather returns contiguous tensors)."""
    return _apply(x, parse_policy(policy), generator, p)


def _apply(x: torch.Tensor, names: list[str], generator: torch.Generator | None,
           p: torch.Tensor | float | None = None) -> torch.Tensor:
    if not names:
        return x
    out = x
    for name in names:
        augmented = AUGMENTATIONS[name](out, generator)
        # Drawn and applied even when p is 0: p lives on the device, and asking would wait for it
        out = augmented if p is None else torch.where(_per_image(out, generator) < p, augmented, out)
    return out.contiguous(memory_format=_memory_format(x))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def instance_noise(x: torch.Tensor, sigma: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, sigma^2) noise; sigma=0 returns x itself (no copy, no draw)."""
    if sigma < 0:
        raise ValueError(f"instance noise sigma={sigma}: must be >= 0")
    if sigma == 0:
        return x
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device)
    return x + sigma * noise.to(device=x.device, dtype=x.dtype)


def noise_sigma(start_sigma: float, progress: float) -> float:
    """Linear anneal: start_sigma at progress 0, 0 at progress 1 and after."""
    return start_sigma * (1.0 - min(max(progress, 0.0), 1.0))


class Augmenter:
    """What the training loop calls on every batch D sees: `aug(x, progress)`.

    Owns its generator (on `device`, so draws for CUDA batches stay on the GPU) and
    checkpoints it, so a resumed run applies the very transforms it would have applied.
    With `ada_target` > 0 the policy is applied with ADA's adaptive probability, which
    `observe(stats, images)` moves after each step (facegan/training/ada.py).
    """

    def __init__(self, policy: str = "", noise_start: float = 0.0, seed: int = 0,
                 device: str | torch.device = "cpu", *, ada_target: float = 0.0, reduce=None):
        self.names = parse_policy(policy)  # parsed once: fails at construction, not at the first batch
        if noise_start < 0:
            raise ValueError(f"instance noise start sigma={noise_start}: must be >= 0")
        if ada_target and not self.names:
            raise ValueError(f"ADA target={ada_target} adapts the strength of an augmentation policy; "
                             f"give one (e.g. translation)")
        self.policy = policy
        self.noise_start = float(noise_start)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.strength = AdaptiveStrength(ada_target, device=device, reduce=reduce) if ada_target else None

    @property
    def enabled(self) -> bool:
        return bool(self.names) or self.noise_start > 0

    def __call__(self, x: torch.Tensor, progress: float) -> torch.Tensor:
        x = _apply(x, self.names, self.generator, None if self.strength is None else self.strength.p)
        return instance_noise(x, noise_sigma(self.noise_start, progress), self.generator)

    def observe(self, stats: dict, images: int) -> dict:
        """After a step: ADA's strength follows D's verdicts on the reals (stats["d_real_sign"]).
        Returns what the metrics should show of it: {} for a fixed policy."""
        if self.strength is None:
            return {}
        self.strength.observe(stats["d_real_sign"], images)
        return {"ada_p": self.strength.p, "ada_r_t": self.strength.r_t}

    def state_dict(self) -> dict:
        state = {"generator": self.generator.get_state()}
        if self.strength is not None:
            state["ada"] = self.strength.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        # set_state wants a CPU byte tensor, even for a CUDA generator; a checkpoint
        # loaded with map_location="cuda" would otherwise have moved it
        self.generator.set_state(state["generator"].cpu())
        if self.strength is not None and "ada" in state:
            self.strength.load_state_dict(state["ada"])
