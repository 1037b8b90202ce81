import pytest
import torch
from torch import nn

from facegan.models import Discriminator, Generator, count_parameters, weights_init_normal


@pytest.mark.parametrize("size", [32, 64, 128])
def test_discriminator_gives_one_logit_per_image(size):
    D = Discriminator(conv_dim=8, image_size=size)
    assert D(torch.randn(3, 3, size, size)).shape == (3, 1)


def test_discriminator_has_no_pooling_and_no_sigmoid():
    D = Discriminator(conv_dim=8)
    kinds = {type(m) for m in D.modules()}
    assert not kinds & {nn.MaxPool2d, nn.AvgPool2d, nn.Sigmoid}
    # logits, not probabilities: some are negative
    torch.manual_seed(0)
    D.apply(weights_init_normal)
    assert D(torch.randn(16, 3, 64, 64)).min() < 0


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_shape_and_tanh_range(size):
    G = Generator(z_size=10, conv_dim=8, image_size=size)
    x = G(torch.randn(5, 10))
    assert x.shape == (5, 3, size, size)
    assert x.min() >= -1 and x.max() <= 1


def test_generator_accepts_4d_z_and_rejects_wrong_length():
    G = Generator(z_size=10, conv_dim=8, image_size=32).eval()
    z = torch.randn(2, 10)
    assert torch.equal(G(z), G(z[:, :, None, None]))
    with pytest.raises(ValueError, match="expected"):
        G(torch.randn(2, 11))


def test_unsupported_size_is_refused():
    with pytest.raises(ValueError, match="image_size"):
        Generator(image_size=48)


def test_weights_init_normal_statistics():
    torch.manual_seed(0)
    G = Generator(z_size=100, conv_dim=64)
    G.apply(weights_init_normal)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    g = torch.cat([m.weight.flatten() for m in bns])
    assert abs(g.mean() - 1) < 5e-3 and abs(g.std() - 0.02) < 5e-3
    assert all((m.bias == 0).all() for m in bns)
    assert all(m.bias is None or (m.bias == 0).all() for m in convs)


def test_dropout_variant_is_stochastic_only_in_train_mode():
    D = Discriminator(conv_dim=8, image_size=32, dropout=0.5)
    assert any(isinstance(m, nn.Dropout) for m in D.modules())
    x = torch.randn(4, 3, 32, 32)
    assert not torch.equal(D(x), D(x))
    D.eval()
    assert torch.equal(D(x), D(x))


def test_widths_follow_conv_dim():
    assert count_parameters(Discriminator(conv_dim=16)) < count_parameters(Discriminator(conv_dim=32))


@pytest.mark.parametrize("norm", ["batch", "spectral", "none"])
def test_extra_layers_deepen_both_nets_without_changing_their_interfaces(norm):
    convs = lambda m: sum(isinstance(x, (nn.Conv2d, nn.ConvTranspose2d)) for x in m.modules())  # noqa: E731
    D0, D2 = Discriminator(8, 32, norm=norm), Discriminator(8, 32, norm=norm, extra_layers=2)
    G0, G2 = Generator(10, 8, 32), Generator(10, 8, 32, extra_layers=2)
    assert convs(D2) == convs(D0) + 2 and convs(G2) == convs(G0) + 2
    assert D2(torch.randn(3, 3, 32, 32)).shape == (3, 1)
    assert G2(torch.randn(3, 10)).shape == (3, 3, 32, 32)
    # with none, the state_dict is the paper's, so older checkpoints still load
    assert list(Generator(10, 8, 32, extra_layers=0).state_dict()) == list(G0.state_dict())
