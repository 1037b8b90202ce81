"""Residual nets without normalisation layers, after R3GAN (Huang et al., NeurIPS 2024), sized for a CPU.

`--arch resnet`: both nets are stacks of residual blocks (two 3x3 convolutions with leaky
ReLU on the main branch, a 1x1 convolution on the skip branch when the width changes) and
no BatchNorm, whose batch coupling the zero-centred gradient penalties R1 and R2 do not
want. Each main branch's last convolution starts at zero ("fix-up" initialisation), so at
the start every block is its skip branch and the nets train stably without normalisation.

G: z -> linear -> (8c, 4, 4) -> per resolution: nearest 2x upsampling, a residual block -> a
3x3 convolution to RGB -> tanh. D mirrors it: a 1x1 convolution from RGB, per resolution a
residual block and 2x average pooling, then (optionally) a minibatch standard-deviation
feature (Karras et al. 2018), a 3x3 convolution and a linear layer to one logit.
Widths for 64 px and conv_dim c: 8c at 4x4, 4c at 8x8, 2c at 16x16, c at 32x32 and 64x64.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

SLOPE = 0.2  # leaky ReLU


def _widths(conv_dim: int, image_size: int) -> list[int]:
    """Channels at 4, 8, ..., image_size px."""
    n = int(math.log2(image_size)) - 1
    return [conv_dim * 2 ** max(0, 3 - i) for i in range(n)]


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.leaky_relu(self.conv1(F.leaky_relu(x, SLOPE)), SLOPE))
        return self.skip(x) + h


def minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """x with one more channel: the standard deviation of each feature over a group of
    images, averaged, so D can tell a batch of near-copies (mode collapse) from real variety."""
    b, _, h, w = x.shape
    g = math.gcd(b, group)  # groups must divide the batch; a group of 1 gives a zero channel
    std = x.float().reshape(g, -1, *x.shape[1:]).var(dim=0, unbiased=False).add(1e-8).sqrt()
    feature = std.mean(dim=(1, 2, 3)).to(x.dtype)  # (b // g,)
    return torch.cat([x, feature.repeat(g)[:, None, None, None].expand(b, 1, h, w)], dim=1)


def _fixup(module: nn.Module) -> None:
    """PyTorch's default init everywhere, but each residual branch's last convolution at zero."""
    for block in module.modules():
        if isinstance(block, ResBlock):
            nn.init.zeros_(block.conv2.weight)
            nn.init.zeros_(block.conv2.bias)


class ResGenerator(nn.Module):
    """z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1]."""

    def __init__(self, z_size: int = 100, conv_dim: int = 64, image_size: int = 64):
        super().__init__()
        self.z_size, self.conv_dim, self.image_size, self.n_classes = z_size, conv_dim, image_size, 0
        widths = _widths(conv_dim, image_size)
        self.input = nn.Linear(z_size, widths[0] * 16)
        self.blocks = nn.ModuleList(ResBlock(a, b) for a, b in zip(widths, widths[1:]))
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, 1, 1)
        _fixup(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = z.flatten(1)
        if z.shape[1] != self.z_size:
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (B, {self.z_size})")
        h = self.input(z).unflatten(1, (-1, 4, 4))  # no batch size in the graph: exports stay batch-free
        for block in self.blocks:
            h = block(F.interpolate(h, scale_factor=2, mode="nearest"))
        return torch.tanh(self.to_rgb(F.leaky_relu(h, SLOPE)))


class ResDiscriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> logits (B, 1)."""

    def __init__(self, conv_dim: int = 64, image_size: int = 64, mbstd: bool = False):
        super().__init__()
        self.conv_dim, self.image_size, self.mbstd, self.n_classes = conv_dim, image_size, mbstd, 0
        widths = _widths(conv_dim, image_size)[::-1]  # finest first
        self.from_rgb = nn.Conv2d(3, widths[0], 1)
        self.blocks = nn.ModuleList(ResBlock(a, b) for a, b in zip(widths, widths[1:]))
        self.conv = nn.Conv2d(widths[-1] + int(mbstd), widths[-1], 3, 1, 1)
        self.classifier = nn.Linear(widths[-1] * 16, 1)
        _fixup(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.from_rgb(x)
        for block in self.blocks:
            h = F.avg_pool2d(block(h), 2)
        if self.mbstd:
            h = minibatch_std(h)
        h = F.leaky_relu(self.conv(F.leaky_relu(h, SLOPE)), SLOPE)
        return self.classifier(h.flatten(1))
