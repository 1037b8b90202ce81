"""The DCGAN networks (Radford et al. 2015) and their N(0, 0.02) weight init.

Both nets are stacks of 4x4, stride-2 blocks: each D block halves the resolution and
doubles the channels; each G block does the reverse. The number of blocks follows from
the image size, so 32, 64 and 128 px share one definition. State sizes for 64 px and
conv_dim=64 are given beside each block.

With `n_classes` > 0 both nets are conditional (`--condition tone`: the skin-tone
category): G reads a one-hot class beside z (Mirza & Osindero 2014) and D adds a
projection of its features onto a learned class embedding (Miyato & Koyama 2018), so
D judges "is this a real face of this tone", not only "is this a real face".
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import D_NORMS, IMAGE_SIZES, TONE_CATEGORIES
from .archs import KERAS_DROPOUT, KerasDiscriminator, KerasGenerator, UdacityDiscriminator, UdacityGenerator
from .progressive import ProgressiveDiscriminator, ProgressiveGenerator
from .resnets import ResDiscriminator, ResGenerator


def _n_blocks(image_size: int) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size={image_size}: choose one of {IMAGE_SIZES}")
    return int(math.log2(image_size)) - 2  # down to (or up from) a 4x4 feature map


class Discriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> real/fake logits (B, 1).

    No pooling and no sigmoid: strided convolutions learn their own downsampling, and
    the losses take logits because BCE-with-logits is numerically stable.
    """

    def __init__(self, conv_dim: int = 64, image_size: int = 64, dropout: float = 0.0,
                 norm: str = "batch", extra_layers: int = 0, n_classes: int = 0, leak: float = 0.2):
        super().__init__()
        if norm not in D_NORMS:
            raise ValueError(f"norm={norm!r}: choose one of {D_NORMS}")
        self.conv_dim, self.image_size, self.extra_layers = conv_dim, image_size, extra_layers
        self.n_classes = n_classes
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
            layers.append(nn.LeakyReLU(leak, inplace=True))  # --leak; 0.2 is the paper's
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            if i == 0:
                layers += _extra_blocks(out_ch, extra_layers, conv, batch_norm, nn.LeakyReLU(leak, inplace=True))
            in_ch = out_ch
        # 64 px: (3,64,64) -> (64,32,32) -> (128,16,16) -> (256,8,8) -> (512,4,4)
        self.features = nn.Sequential(*layers)
        self.classifier = conv(nn.Conv2d(in_ch, 1, 4, 1, 0))  # (512,4,4) -> (1,1,1)
        # Projection: logit += <embed(y), sum of the final features>, one vector per class.
        self.embed = conv(nn.Embedding(n_classes, in_ch)) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        logits = self.classifier(h).flatten(1)
        if self.embed is None:
            return logits
        if labels is None:
            raise ValueError("this Discriminator is conditional (n_classes > 0): call D(x, labels)")
        return logits + (self.embed(labels) * h.sum(dim=(2, 3))).sum(1, keepdim=True)


class Generator(nn.Module):
    """Latent z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1].

    A conditional G (n_classes > 0) also takes labels (B,) of class indices. Left out,
    they follow from z itself (`split_latent`: one class per equal-probability slice of
    z[:, 0]), so every sampler that draws z ~ N(0, I) gets the classes in equal shares,
    a seed always gives the same face, and an exported G needs no second input.
    """

    def __init__(self, z_size: int = 100, conv_dim: int = 64, image_size: int = 64, extra_layers: int = 0,
                 n_classes: int = 0, sle: bool = False):
        super().__init__()
        self.z_size, self.conv_dim, self.image_size = z_size, conv_dim, image_size
        self.extra_layers, self.n_classes = extra_layers, n_classes
        n = _n_blocks(image_size)
        channels = [conv_dim * 2**i for i in reversed(range(n))]  # 64 px: 512, 256, 128, 64
        layers: list[nn.Module] = [
            # (z + classes, 1, 1) -> (512,4,4)
            nn.ConvTranspose2d(z_size + n_classes, channels[0], 4, 1, 0, bias=False),
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
        # --sle: block i's output (at index 3i + 2 of net) excites block i + 2's, channel by channel
        self.sle_pairs = [(3 * i + 2, 3 * (i + 2) + 2) for i in range(n - 2)] if sle else []
        self.excite = nn.ModuleDict({str(target): SkipLayerExcitation(channels[i], channels[i + 2])
                                     for i, (source, target) in enumerate(self.sle_pairs)})

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.z_size or z.shape[2:] != (1, 1):
            raise ValueError(f"z has shape {tuple(z.shape)}; expected (B, {self.z_size}) "
                             f"or (B, {self.z_size}, 1, 1)")
        if self.n_classes:
            if labels is None:
                z, labels = split_latent(z.flatten(1), self.n_classes)
                z = z[:, :, None, None]
            one_hot = nn.functional.one_hot(labels, self.n_classes).to(z.dtype)[:, :, None, None]
            z = torch.cat([z, one_hot], dim=1)
        if not self.sle_pairs:
            return self.net(z)
        sources, targets = dict(self.sle_pairs), {t: s for s, t in self.sle_pairs}
        h, kept = z, {}
        for i, layer in enumerate(self.net):
            h = layer(h)
            if i in sources:
                kept[i] = h
            if i in targets:
                h = h * self.excite[str(i)](kept.pop(targets[i]))
        return h


class SkipLayerExcitation(nn.Module):
    """FastGAN's skip-layer excitation (Liu et al., ICLR 2021): a low-resolution feature map
    gates each channel of one four times finer, giving G's fine layers a shortcut to the
    coarse ones' gradient and letting the coarse layout steer the texture, at almost no cost:
    (B, C_low, h, h) -> pooled to 4x4 -> 4x4 conv -> LeakyReLU -> 1x1 conv -> sigmoid -> (B, C_high, 1, 1)."""

    def __init__(self, low_channels: int, high_channels: int):
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4),
                                  nn.Conv2d(low_channels, high_channels, 4, 1, 0, bias=False),
                                  nn.LeakyReLU(0.1, inplace=True),
                                  nn.Conv2d(high_channels, high_channels, 1, bias=False),
                                  nn.Sigmoid())

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.gate(low)


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x.double() / math.sqrt(2)))


def _normal_quantile(u: torch.Tensor) -> torch.Tensor:
    u = u.clamp(1e-12, 1 - 1e-12)  # erfinv(+-1) is infinite
    return math.sqrt(2) * torch.erfinv(2 * u - 1)


def split_latent(z: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ N(0, I) (B, z_size) -> (z', labels): the class is which of n equal-probability
    slices z[:, 0] falls in, and z'[:, 0] is its place within the slice, mapped back to
    N(0, 1). So z' ~ N(0, I) independent of the class, exactly as G saw in training."""
    u = _normal_cdf(z[:, 0]) * n_classes
    labels = u.long().clamp(0, n_classes - 1)
    z = z.clone()
    z[:, 0] = _normal_quantile(u - labels).to(z.dtype)
    return z, labels


def latents_of_class(z: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The inverse of `split_latent`: z whose class is `labels` and whose other part is z,
    so G(latents_of_class(z, y)) == G(z, y): the same face, asked for another class."""
    u = (labels.double() + _normal_cdf(z[:, 0])) / n_classes
    z = z.clone()
    z[:, 0] = _normal_quantile(u).to(z.dtype)
    return z


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

    Conv, linear and class-embedding weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02)
    so they start near the identity; all biases 0.
    """
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _stored_weight(m: nn.Module) -> torch.Tensor:
    """The weight to draw: under spectral norm the stored one, since `m.weight` is then
    recomputed from it on every access and drawing into it would change nothing."""
    parametrized = getattr(m, "parametrizations", None)
    return parametrized.weight.original if parametrized is not None and "weight" in parametrized else m.weight


def _kaiming(w: torch.Tensor, m: nn.Module) -> None:
    # torch reads a transposed convolution's weight (in, out, k, k) as a convolution's
    # (out, in, k, k), so there its "fan_out" is the fan-in: input channels x kernel.
    mode = "fan_out" if isinstance(m, nn.ConvTranspose2d) else "fan_in"
    nn.init.kaiming_normal_(w, mode=mode, nonlinearity="relu")


# --init's schemes, for conv, linear and embedding weights. Fans are torch's:
# (in channels) x (kernel area) in, (out channels) x (kernel area) out.
_INIT_SCHEMES = {
    # the DCGAN paper's N(0, 0.02), as weights_init_normal draws it
    "normal": lambda w, m: nn.init.normal_(w, 0.0, 0.02),
    # N(0, 2 / (fan_in + fan_out)): keeps activations and gradients alike in scale (Glorot & Bengio 2010)
    "xavier": lambda w, m: nn.init.xavier_normal_(w),
    # N(0, 2 / fan_in): ReLU's gain, as G uses ReLU; D's leaky slope of 0.2 would change it by 2% (He et al. 2015)
    "kaiming": _kaiming,
    # the weight, flattened to (out, rest), has orthonormal rows or columns (Saxe et al. 2014)
    "orthogonal": lambda w, m: nn.init.orthogonal_(w),
}


def init_weights(module: nn.Module, scheme: str = "normal") -> None:
    """Initialise a net by an --init scheme: conv, linear and embedding weights by its rule
    above (normal: `weights_init_normal`'s N(0, 0.02), drawn in the same order, so the same
    weights), spectrally normalised ones included. In every scheme BatchNorm scales start
    ~ N(1, 0.02) (near the identity) and all biases at 0."""
    if scheme not in _INIT_SCHEMES:
        raise ValueError(f"init={scheme!r}: choose one of {', '.join(_INIT_SCHEMES)}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            _INIT_SCHEMES[scheme](_stored_weight(m), m)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            weights_init_normal(m)


def n_classes(cfg) -> int:
    """How many classes the nets are conditioned on: the ITA categories for condition="tone"."""
    return len(TONE_CATEGORIES) if cfg.condition == "tone" else 0


def build_generator(cfg) -> nn.Module:
    """G for a TrainConfig, before any init (a checkpoint or init_weights fills it)."""
    width = cfg.g_conv_dim or cfg.conv_dim
    if cfg.grow_from:  # progressive growing; built outside training it stands at full size
        return ProgressiveGenerator(cfg.z_size, width, cfg.image_size, cfg.grow_from)
    if cfg.arch == "resnet":
        return ResGenerator(cfg.z_size, width, cfg.image_size)
    if cfg.arch == "udacity":
        return UdacityGenerator(cfg.z_size, width, cfg.image_size)
    if cfg.arch == "keras":
        return KerasGenerator(cfg.z_size, width, cfg.image_size)
    return Generator(cfg.z_size, width, cfg.image_size, cfg.extra_layers, n_classes(cfg), sle=cfg.sle)


def _build_discriminator(cfg) -> nn.Module:
    if cfg.arch == "udacity":
        return UdacityDiscriminator(cfg.conv_dim, cfg.image_size, cfg.d_norm, cfg.leak)
    if cfg.arch == "keras":  # dropout is part of the Keras D: --d-dropout 0 keeps its own rate
        return KerasDiscriminator(cfg.conv_dim, cfg.image_size, cfg.d_dropout or KERAS_DROPOUT, cfg.d_norm, cfg.leak)
    return Discriminator(cfg.conv_dim, cfg.image_size, cfg.d_dropout, cfg.d_norm, cfg.extra_layers, n_classes(cfg),
                         cfg.leak)


def build_models(cfg) -> tuple[nn.Module, nn.Module]:
    """D and G for a TrainConfig: the DCGAN, udacity or keras nets initialised by --init, or
    the residual nets with their own (fix-up) initialisation."""
    if cfg.grow_from:  # progressive growing of the DCGAN nets (facegan/nets/progressive.py)
        D = ProgressiveDiscriminator(cfg.conv_dim, cfg.image_size, cfg.grow_from, cfg.d_dropout, cfg.d_norm, cfg.leak)
        G = build_generator(cfg)
        init_weights(D, cfg.init)
        init_weights(G, cfg.init)
        return D, G
    if cfg.arch == "resnet":
        return ResDiscriminator(cfg.conv_dim, cfg.image_size, cfg.mbstd), build_generator(cfg)
    D, G = _build_discriminator(cfg), build_generator(cfg)  # D first: the order draws were made in before
    init_weights(D, cfg.init)
    init_weights(G, cfg.init)
    return D, G
