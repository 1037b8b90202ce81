"""Progressive growing (Karras et al. 2018) for the DCGAN nets: train small, then double.

With `grow_from` > 0 the run starts at grow_from px (8, 16 or 32) and doubles up to
image_size, fading each new block in. The first `grow_share` of the run is one phase per
doubling: the first half of a phase trains at the current resolution, the second half
fades the next one in; the rest of the run trains at full size. For 8 -> 32 px and
grow_share=0.5:

    progress  0 ........ 0.125 ........ 0.25 ........ 0.375 ........ 0.5 ........ 1
              8 px stable | fade in 16 px | 16 px stable | fade in 32 px | 32 px stable

The nets keep the DCGAN blocks of facegan/nets/models.py (4x4 stride-2 transposed convs with
BatchNorm and ReLU in G; strided convs with BatchNorm and LeakyReLU in D). G's "toRGB" at
resolution r is the DCGAN's last layer (a transposed conv from the r/2 feature map to RGB,
then tanh); D's "fromRGB" at r is the DCGAN's first layer (a strided conv from RGB to the
r/2 feature map, no BatchNorm). At full size both nets are exactly the DCGAN nets, plus the
small toRGB/fromRGB layers of the lower resolutions.

Their outside shape never changes, so data, augmentation, samples, FID, export and
sampling need nothing new: G always returns (B, 3, image_size, image_size), its current
resolution's image upsampled with nearest (no invented detail), and D always takes
image_size images and average-pools them to its current resolution. Only the blocks in use
run, so a low-resolution phase really costs less.

During a fade into resolution r (alpha from 0 to 1):

    G(z) = (1 - alpha) * upsample(toRGB_{r/2}(h)) + alpha * toRGB_r(block(h))    h: features at r/4
    D(x) = head((1 - alpha) * fromRGB_{r/2}(pool(x)) + alpha * block(fromRGB_r(x)))

The first `grow_share` of `grow_epochs` epochs (0: of the run's `--epochs`) grows. A resume to
more epochs keeps grow_epochs at the epochs the run started with (the CLI pins it), so growing
ends at the same step and the extra epochs train at full size: the samples never shrink.

The growth state (resolution, alpha) is a pure function of training progress (`Growth.at`),
set on D, G and G_ema before every step (step.make_step), so a resumed run continues
exactly, even mid-fade, with no checkpoint key of its own. It is not in the state_dicts: a
net built outside training (export, sample, serve) stands at full size with alpha = 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import D_NORMS, IMAGE_SIZES
from ..errors import ConfigError


@dataclass(frozen=True)
class Growth:
    """The growth schedule: `at(progress)` -> (resolution, alpha)."""
    start: int         # the first resolution (grow_from)
    final: int         # image_size
    share: float = 0.5  # the share of the run spent growing

    @classmethod
    def for_run(cls, cfg, dist=None) -> "Growth | None":
        """The run's schedule, or None when it does not grow. Refuses DDP: a low-resolution
        phase leaves the higher-resolution blocks without gradients, which DDP does not allow."""
        if not cfg.grow_from:
            return None
        if dist is not None and dist.enabled:
            raise ConfigError(f"grow_from={cfg.grow_from}: progressive growing leaves unused blocks without "
                              f"gradients, which DDP refuses; train in one process or drop --grow-from")
        # A run extended past the epochs it grows over (grow_epochs) keeps its schedule in steps:
        # growing takes a smaller share of the longer run, and the extra epochs stay at full size.
        span = cfg.grow_epochs or cfg.epochs
        share = cfg.grow_share if span == cfg.epochs else cfg.grow_share * span / cfg.epochs
        return cls(cfg.grow_from, cfg.image_size, share)

    @property
    def doublings(self) -> int:
        return int(math.log2(self.final // self.start))

    def at(self, progress: float) -> tuple[int, float]:
        """(resolution, alpha) at this share of the run: alpha < 1 while `resolution` fades in."""
        phase = min(max(progress, 0.0), 1.0) / self.share * self.doublings  # which phase, and how far in
        if phase >= self.doublings:
            return self.final, 1.0
        k, within = int(phase), phase - int(phase)
        if within < 0.5:  # the first half of a phase trains at its own resolution
            return self.start * 2**k, 1.0
        return self.start * 2 ** (k + 1), 2 * within - 1  # the second half fades the next one in

    def apply(self, progress: float, *nets: nn.Module) -> None:
        """Set every net's growth state for this point of the run."""
        resolution, alpha = self.at(progress)
        for net in nets:
            net.set_growth(resolution, alpha)


class _Growing(nn.Module):
    """The growth state both nets share: `resolution` and `fading` (plain attributes, so
    torch.compile specialises on them: a few graphs per run) and `alpha` (a buffer left out
    of the state_dict, so a fade's steps share one graph and no checkpoint stores it)."""

    def __init__(self, image_size: int, grow_from: int):
        super().__init__()
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size={image_size}: choose one of {IMAGE_SIZES}")
        if grow_from < 8 or grow_from >= image_size or grow_from & (grow_from - 1):
            raise ValueError(f"grow_from={grow_from}: use a power of two from 8 up to image_size/2")
        self.image_size, self.grow_from = image_size, grow_from
        self.resolutions = [grow_from * 2**i for i in range(int(math.log2(image_size // grow_from)) + 1)]
        self.register_buffer("alpha", torch.ones(()), persistent=False)
        self.resolution, self.fading = image_size, False  # built outside training: full size

    def set_growth(self, resolution: int, alpha: float = 1.0) -> None:
        if resolution not in self.resolutions:
            raise ValueError(f"resolution={resolution}: this net grows through {self.resolutions}")
        if not 0.0 <= alpha <= 1.0 or (alpha < 1 and resolution == self.grow_from):
            raise ValueError(f"alpha={alpha}: must lie in [0, 1], and be 1 at the first resolution")
        self.resolution, self.fading = resolution, alpha < 1
        self.alpha.fill_(alpha)

    @property
    def growth(self) -> tuple[int, float]:
        """(resolution, alpha), for inspection: reading alpha waits for the device."""
        return self.resolution, float(self.alpha)


class ProgressiveGenerator(_Growing):
    """Latent z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1], drawn at the
    current resolution and upsampled with nearest to S = image_size."""

    n_classes = 0  # unconditional: config.validate refuses condition with grow_from

    def __init__(self, z_size: int = 100, conv_dim: int = 64, image_size: int = 64, grow_from: int = 8):
        super().__init__(image_size, grow_from)
        self.z_size, self.conv_dim = z_size, conv_dim
        n = int(math.log2(image_size)) - 2
        channels = [conv_dim * 2**i for i in reversed(range(n))]  # 64 px: 512, 256, 128, 64
        # (z, 1, 1) -> (512,4,4), then 64 px: -> (256,8,8) -> (128,16,16) -> (64,32,32)
        self.input = nn.Sequential(nn.ConvTranspose2d(z_size, channels[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                          nn.ReLU(inplace=True))
            for c_in, c_out in zip(channels, channels[1:]))
        # toRGB at r: the r/2 feature map (4 * 2**j px, channels[j]) -> (3, r, r), the DCGAN's last layer.
        self.to_rgb = nn.ModuleDict({
            str(r): nn.Sequential(nn.ConvTranspose2d(channels[int(math.log2(r)) - 3], 3, 4, 2, 1), nn.Tanh())
            for r in self.resolutions})

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.z_size or z.shape[2:] != (1, 1):
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (B, {self.z_size}) "
                             f"or (B, {self.z_size}, 1, 1)")
        r = self.resolution
        n_blocks = int(math.log2(r)) - 3  # blocks from 4 px up to r/2; the rest do not run
        h = self.input(z)
        for block in self.blocks[:n_blocks - 1 if self.fading else n_blocks]:
            h = block(h)
        image = self.to_rgb[str(r)](self.blocks[n_blocks - 1](h) if self.fading else h)
        if self.fading:
            old = F.interpolate(self.to_rgb[str(r // 2)](h), scale_factor=2, mode="nearest")
            image = old + self.alpha * (image - old)
        if r < self.image_size:
            image = F.interpolate(image, scale_factor=self.image_size // r, mode="nearest")
        return image


class ProgressiveDiscriminator(_Growing):
    """Image (B, 3, S, S) in [-1, 1] -> real/fake logits (B, 1), judged at the current
    resolution (the image average-pooled down to it). `dropout`, `norm` and `leak` (the leaky
    ReLUs' slope) as in models.Discriminator."""

    def __init__(self, conv_dim: int = 64, image_size: int = 64, grow_from: int = 8, dropout: float = 0.0,
                 norm: str = "batch", leak: float = 0.2):
        super().__init__(image_size, grow_from)
        if norm not in D_NORMS:
            raise ValueError(f"norm={norm!r}: choose one of {D_NORMS}")
        self.conv_dim = conv_dim
        batch_norm = norm == "batch"
        conv = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)
        def extra():  # the Keras-style D: dropout after each block's activation
            return [nn.Dropout(dropout)] if dropout > 0 else []
        n = int(math.log2(image_size)) - 2
        # fromRGB at r = S / 2**k: (3, r, r) -> (conv_dim * 2**k, r/2, r/2), the DCGAN's first layer
        # (no BatchNorm: normalising raw pixels hurts).
        self.from_rgb = nn.ModuleDict({
            str(r): nn.Sequential(conv(nn.Conv2d(3, conv_dim * 2**self._k(r), 4, 2, 1)),
                                  nn.LeakyReLU(leak, inplace=True), *extra())
            for r in self.resolutions})
        # blocks[m]: (conv_dim * 2**m, S/2**(m+1)) -> (conv_dim * 2**(m+1), S/2**(m+2));
        # 64 px: (64,32,32) -> (128,16,16) -> (256,8,8) -> (512,4,4)
        self.blocks = nn.ModuleList(
            nn.Sequential(conv(nn.Conv2d(conv_dim * 2**m, conv_dim * 2**(m + 1), 4, 2, 1, bias=not batch_norm)),
                          *([nn.BatchNorm2d(conv_dim * 2**(m + 1))] if batch_norm else []),
                          nn.LeakyReLU(leak, inplace=True), *extra())
            for m in range(n - 1))
        self.classifier = conv(nn.Conv2d(conv_dim * 2 ** (n - 1), 1, 4, 1, 0))  # (512,4,4) -> (1,1,1)

    def _k(self, resolution: int) -> int:
        return int(math.log2(self.image_size // resolution))  # halvings from image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if r < self.image_size:
            x = F.avg_pool2d(x, self.image_size // r)
        k = self._k(r)
        h = self.from_rgb[str(r)](x)
        if self.fading:
            old = self.from_rgb[str(r // 2)](F.avg_pool2d(x, 2))
            h = self.blocks[k](h)
            h = old + self.alpha * (h - old)
            k += 1
        for block in self.blocks[k:]:
            h = block(h)
        return self.classifier(h).flatten(1)
