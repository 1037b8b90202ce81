"""The seed projects' own architectures, beside the DCGAN paper's (`--arch udacity|keras`).

udacity: the Udacity deep-learning course's reference nets for this project, which two of
the seed projects trained at 32x32 with conv_dim 32. D is three strided 4x4 convolutions
(c, 2c, 4c; BatchNorm on the last two) and a fully connected layer to one logit. G is the
mirror: a fully connected layer from z to (4c, S/8, S/8), then three 4x4 stride-2
transposed convolutions. Unlike the DCGAN nets, the first and last layers are dense, so
the widths stop at 4c whatever the image size and the dense layers grow with it instead.

keras: one seed project's Keras model at 128x128, close to TensorFlow's DCGAN tutorial.
G is one big dense layer to (8c, S/4, S/4) (32x32x512 at 128 px and conv_dim 64), then two
5x5 stride-2 transposed convolutions; D is two 5x5 strided convolutions with dropout and a
dense layer to one logit. D always has dropout: it is part of the model, so `--d-dropout`
only changes its rate (0, the field's default, keeps the model's 0.3).

Both Ds return logits (no sigmoid), take `labels` only to share the DCGAN nets' call
signature, and read their leaky-ReLU slope from `--leak`. Both Gs take z as (B, z_size) or
(B, z_size, 1, 1). Neither net initialises itself: facegan.nets.models.init_weights does.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import D_NORMS, IMAGE_SIZES

KERAS_DROPOUT = 0.3  # the Keras model's rate, and TensorFlow's DCGAN tutorial's
G_SLOPE = 0.2  # the Keras G's leaky ReLU; --leak is D's alone


def _check_size(image_size: int) -> None:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size={image_size}: choose one of {IMAGE_SIZES}")


def _d_layers(norm: str):
    """(wrap, batch_norm) for D's norm: spectral norm wraps every weighted layer; "batch"
    adds BatchNorm where the architecture has it; "none" has neither."""
    if norm not in D_NORMS:
        raise ValueError(f"norm={norm!r}: choose one of {D_NORMS}")
    wrap = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)
    return wrap, norm == "batch"


def _latent(z: torch.Tensor, z_size: int) -> torch.Tensor:
    """z as (B, z_size), from (B, z_size) or (B, z_size, 1, 1)."""
    if (z.dim() == 2 and z.shape[1] == z_size) or (z.dim() == 4 and z.shape[1:] == (z_size, 1, 1)):
        return z.flatten(1)
    raise ValueError(f"z has shape {tuple(z.shape)}; expected (B, {z_size}) or (B, {z_size}, 1, 1)")


class UdacityDiscriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> logits (B, 1): the course's reference D."""

    def __init__(self, conv_dim: int = 32, image_size: int = 32, norm: str = "batch", leak: float = 0.2):
        super().__init__()
        _check_size(image_size)
        self.conv_dim, self.image_size, self.n_classes = conv_dim, image_size, 0
        wrap, batch_norm = _d_layers(norm)
        layers: list[nn.Module] = []
        in_ch = 3
        # 32 px, c=32: (3,32,32) -> (32,16,16) -> (64,8,8) -> (128,4,4)
        for i, out_ch in enumerate((conv_dim, conv_dim * 2, conv_dim * 4)):
            # No bias with BatchNorm (its shift replaces it; the course's helper has none either);
            # with norm none or spectral the bias is the layer's only shift.
            layers.append(wrap(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=not batch_norm)))
            if i > 0 and batch_norm:  # not on raw pixels, as in the DCGAN paper
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(leak, inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.classifier = wrap(nn.Linear(in_ch * (image_size // 8) ** 2, 1))  # (128*4*4) -> 1

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class UdacityGenerator(nn.Module):
    """z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1]: the course's reference G."""

    def __init__(self, z_size: int = 100, conv_dim: int = 32, image_size: int = 32):
        super().__init__()
        _check_size(image_size)
        self.z_size, self.conv_dim, self.image_size, self.n_classes = z_size, conv_dim, image_size, 0
        self.start = (conv_dim * 4, image_size // 8, image_size // 8)
        # z -> (128,4,4) at 32 px, c=32; the course applies no activation before the first deconv.
        self.fc = nn.Linear(z_size, conv_dim * 4 * (image_size // 8) ** 2)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(conv_dim * 4, conv_dim * 2, 4, 2, 1, bias=False),  # -> (64,8,8)
            nn.BatchNorm2d(conv_dim * 2), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(conv_dim * 2, conv_dim, 4, 2, 1, bias=False),  # -> (32,16,16)
            nn.BatchNorm2d(conv_dim), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(conv_dim, 3, 4, 2, 1, bias=False),  # -> (3,32,32); bias-free as in the course
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # unflatten, not view(-1, ...): no batch size in the graph, so exports stay batch-free
        return self.net(self.fc(_latent(z, self.z_size)).unflatten(1, self.start))


class KerasDiscriminator(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] -> logits (B, 1): the Keras project's D.

    It has no BatchNorm (norm is "none" or "spectral"); dropout follows each convolution.
    """

    def __init__(self, conv_dim: int = 64, image_size: int = 128, dropout: float = KERAS_DROPOUT,
                 norm: str = "none", leak: float = 0.2):
        super().__init__()
        _check_size(image_size)
        if norm == "batch":
            raise ValueError("the Keras D has no BatchNorm: use norm='none' or 'spectral'")
        self.conv_dim, self.image_size, self.n_classes = conv_dim, image_size, 0
        wrap, _ = _d_layers(norm)
        # 5x5 stride 2 with padding 2 halves an even size, as Keras' padding="same" does.
        # 128 px, c=64: (3,128,128) -> (64,64,64) -> (128,32,32)
        self.features = nn.Sequential(
            wrap(nn.Conv2d(3, conv_dim, 5, 2, 2)), nn.LeakyReLU(leak, inplace=True), nn.Dropout(dropout),
            wrap(nn.Conv2d(conv_dim, conv_dim * 2, 5, 2, 2)), nn.LeakyReLU(leak, inplace=True), nn.Dropout(dropout),
        )
        self.classifier = wrap(nn.Linear(conv_dim * 2 * (image_size // 4) ** 2, 1))  # (128*32*32) -> 1

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class KerasGenerator(nn.Module):
    """z (B, z_size) or (B, z_size, 1, 1) -> image (B, 3, S, S) in [-1, 1]: the Keras project's G."""

    def __init__(self, z_size: int = 100, conv_dim: int = 64, image_size: int = 128):
        super().__init__()
        _check_size(image_size)
        self.z_size, self.conv_dim, self.image_size, self.n_classes = z_size, conv_dim, image_size, 0
        self.start = (conv_dim * 8, image_size // 4, image_size // 4)
        # z -> (512,32,32) at 128 px, c=64. No bias: the BatchNorm after it has its own shift.
        # BatchNorm is per channel after the reshape; Keras normalised each dense unit apart,
        # which is 2 x 524,288 more parameters for what per-channel statistics do in convolutions.
        self.fc = nn.Linear(z_size, conv_dim * 8 * (image_size // 4) ** 2, bias=False)
        # output_padding=1: with padding 2 a 5x5 stride-2 transposed convolution exactly doubles
        # the size, as Keras' padding="same" does.
        self.net = nn.Sequential(
            nn.BatchNorm2d(conv_dim * 8), nn.LeakyReLU(G_SLOPE, inplace=True),
            nn.ConvTranspose2d(conv_dim * 8, conv_dim * 4, 5, 2, 2, output_padding=1, bias=False),  # (256,64,64)
            nn.BatchNorm2d(conv_dim * 4), nn.LeakyReLU(G_SLOPE, inplace=True),
            nn.ConvTranspose2d(conv_dim * 4, 3, 5, 2, 2, output_padding=1),  # -> (3,128,128)
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.fc(_latent(z, self.z_size)).unflatten(1, self.start))
