"""The DCGAN networks (Radford et al. 2015) and their N(0, 0.02) weight init.

Both nets are stacks of 4x4, stride-2 blocks: each D block halves the resolution and
doubles the channels; each G block does the reverse. The number of blocks follows from
the image size, so 32, 64 and 128 px share one definition. State sizes for 64 px and
conv_dim=64 are given beside each block.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SUPPORTED_SIZES = (32, 64, 128)
D_NORMS = ("batch", "spectral", "none")


def _n_blocks(image_size: int) -> int:
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(f"image_size={image_size}: choose one of {SUPPORTED_SIZES}")
    return int(math.log2(image_size)) - 2  # down to (or up from) a 4x4 feature map


class Discriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> real/fake logits (B, 1).

    No pooling and no sigmoid: strided convolutions learn their own downsampling, and
    the losses take logits because BCE-with-logits is numerically stable.
    """

    def __init__(self, conv_dim: int = 64, image_size: int = 64, dropout: float = 0.0,
                 norm: str = "batch", extra_layers: int = 0):
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"norm={norm!r}: choose one of {D_NORMS}")
        self.conv_dim, self.image_size, self.extra_layers = conv_dim, image_size, extra_layers
        batch_norm = norm == "batch"
        # Spectral norm bounds each layer's Lipschitz constant (Miyato et al. 2018) and
        # replaces BatchNorm; "none" is for WGAN-GP, whose per-image penalty BN would mix.
        conv = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)
        layers: list[nn.Module] = []
        in_ch = 3
        for i in range(_n_blocks(image_size)):
            out_ch = conv_dim * 2**i
            # The first block has no BatchNorm: normalising raw pixels hurts (DCGAN paper).
            layers.append(conv(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=(i == 0 or not batch_norm))))
            if i > 0 and batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            if i == 0:
                layers += _extra_blocks(out_ch, extra_layers, conv, batch_norm, nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        # 64 px: (3,64,64) -> (64,32,32) -> (128,16,16) -> (256,8,8) -> (512,4,4)
        self.features = nn.Sequential(*layers)
        self.classifier = conv(nn.Conv2d(in_ch, 1, 4, 1, 0))  # (512,4,4) -> (1,1,1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).flatten(1)


class Generator(nn.Module):
    """Latent z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1]."""

    def __init__(self, z_size: int = 100, conv_dim: int = 64, image_size: int = 64, extra_layers: int = 0):
        super().__init__()
        self.z_size, self.conv_dim, self.image_size = z_size, conv_dim, image_size
        self.extra_layers = extra_layers
        n = _n_blocks(image_size)
        channels = [conv_dim * 2**i for i in reversed(range(n))]  # 64 px: 512, 256, 128, 64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_size, channels[0], 4, 1, 0, bias=False),  # (z,1,1) -> (512,4,4)
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        ]
        for in_ch, out_ch in zip(channels, channels[1:]):
            # 64 px: (512,4,4) -> (256,8,8) -> (128,16,16) -> (64,32,32)
            layers += [nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
        layers += _extra_blocks(channels[-1], extra_layers, lambda m: m, True, nn.ReLU(inplace=True))
        layers += [nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1), nn.Tanh()]  # -> (3,64,64)
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.z_size or z.shape[2:] != (1, 1):
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (B, {self.z_size}) "
                             f"or (B, {self.z_size}, 1, 1)")
        return self.net(z)


def _extra_blocks(channels: int, n: int, conv, batch_norm: bool, activation: nn.Module) -> list[nn.Module]:
    """`n` 3x3 stride-1 conv blocks at the finest feature map (the "extra layers" of the
    original DCGAN/WGAN code): a deeper net at the same resolution and width."""
    layers: list[nn.Module] = []
    for _ in range(n):
        layers.append(conv(nn.Conv2d(channels, channels, 3, 1, 1, bias=not batch_norm)))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(activation)
    return layers


def weights_init_normal(m: nn.Module) -> None:
    """DCGAN init; use as `model.apply(weights_init_normal)`.

    Conv and linear weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02) so they start
    near the identity; all biases 0.
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_models(cfg) -> tuple[Discriminator, Generator]:
    """D and G for a TrainConfig, initialised with weights_init_normal."""
    D = Discriminator(cfg.conv_dim, cfg.image_size, cfg.d_dropout, cfg.d_norm, cfg.extra_layers)
    G = Generator(cfg.z_size, cfg.conv_dim, cfg.image_size, cfg.extra_layers)
    D.apply(weights_init_normal)
    G.apply(weights_init_normal)
    return D, G


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
