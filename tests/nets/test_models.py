import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from facegan.config import ConfigError, TrainConfig
from facegan.nets.models import (
    Discriminator,
    Generator,
    build_generator,
    build_models,
    weights_init_normal,
)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


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


@pytest.mark.parametrize("arch,extra", [("dcgan", {}), ("resnet", {"d_norm": "none"}), ("udacity", {}),
                                        ("dcgan", {"grow_from": 8})])
def test_g_conv_dim_sets_g_width_alone(arch, extra):
    base = TrainConfig(arch=arch, image_size=32, conv_dim=8, z_size=10, **extra)
    (D, G), (D_wide, G_wide) = build_models(base), build_models(replace(base, g_conv_dim=16))
    assert [p.shape for p in D_wide.parameters()] == [p.shape for p in D.parameters()]
    assert count_parameters(G_wide) > count_parameters(G)
    assert G_wide.conv_dim == 16 and G_wide(torch.randn(2, 10)).shape == (2, 3, 32, 32)
    same = build_generator(replace(base, g_conv_dim=8))  # naming conv_dim itself changes nothing
    assert [p.shape for p in same.parameters()] == [p.shape for p in G.parameters()]


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


# ---------------------------------------------------------------- conditional nets (--condition tone)

def test_class_slices_of_z_are_equally_likely_and_leave_z_standard_normal():
    from facegan.nets.models import split_latent
    z = torch.randn(60_000, 4, generator=torch.Generator().manual_seed(0))
    z_free, labels = split_latent(z, 6)
    counts = torch.bincount(labels, minlength=6).float()
    assert (counts / len(z) - 1 / 6).abs().max() < 0.01
    # Within every class the remapped coordinate is N(0, 1) again: no class has its own z.
    for k in range(6):
        part = z_free[labels == k, 0]
        assert abs(part.mean()) < 0.05 and abs(part.std() - 1) < 0.05
    assert torch.equal(z_free[:, 1:], z[:, 1:])


def test_latents_of_class_inverts_split_latent():
    from facegan.nets.models import latents_of_class, split_latent
    z = torch.randn(500, 8, generator=torch.Generator().manual_seed(1))
    wanted = torch.arange(500) % 6
    z_back, labels = split_latent(latents_of_class(z, wanted, 6), 6)
    assert torch.equal(labels, wanted)
    assert torch.allclose(z_back, z, atol=1e-3)


def test_conditional_generator_reads_its_class_and_draws_it_from_z_when_not_given():
    from facegan.nets.models import latents_of_class
    torch.manual_seed(0)
    G = Generator(z_size=10, conv_dim=8, image_size=32, n_classes=6).eval()
    G.apply(weights_init_normal)
    z = torch.randn(6, 10)
    same_z = z[:1].expand(6, -1)
    by_class = G(same_z, torch.arange(6))
    assert all((by_class[i] - by_class[j]).abs().max() > 1e-4 for i in range(6) for j in range(i))
    # The same face asked for another class through z alone, as exports and samplers do.
    assert torch.allclose(G(latents_of_class(z, torch.arange(6), 6)), G(z, torch.arange(6)), atol=1e-5)
    # The first layer reads z alone in a plain G, z and the one-hot class in a conditional one.
    assert Generator(z_size=10, conv_dim=8, image_size=32).net[0].in_channels == 10
    assert G.net[0].in_channels == 16


@pytest.mark.parametrize("norm", ["batch", "spectral"])
def test_conditional_discriminator_scores_the_class_and_demands_labels(norm):
    torch.manual_seed(0)
    D = Discriminator(conv_dim=8, image_size=32, norm=norm, n_classes=6).eval()
    D.apply(weights_init_normal)
    x = torch.randn(1, 3, 32, 32).expand(6, -1, -1, -1)
    logits = D(x, torch.arange(6))
    assert logits.shape == (6, 1) and logits.unique().numel() == 6  # one image, six class scores
    with pytest.raises(ValueError, match="D\\(x, labels\\)"):
        D(x)
    # The projection starts at the DCGAN init scale, not at nn.Embedding's N(0, 1).
    if norm == "batch":
        assert abs(D.embed.weight.std() - 0.02) < 0.01


# ---------------------------------------------------------------- the residual nets (--arch resnet)

@pytest.mark.parametrize("size", [32, 64, 128])
def test_residual_nets_have_the_dcgan_nets_shapes(size):
    from facegan.nets.resnets import ResDiscriminator, ResGenerator

    G, D = ResGenerator(16, 8, size), ResDiscriminator(8, size, mbstd=True)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, 3, size, size) and x.abs().max() <= 1
    assert D(x).shape == (4, 1)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)) for m in (*G.modules(), *D.modules()))


def test_residual_branches_start_at_zero_so_each_block_starts_as_its_skip():
    from facegan.nets.resnets import ResBlock, _fixup

    block = ResBlock(8, 8)
    _fixup(block)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(block(x), x)  # identity skip, zero branch
    assert block.conv1.weight.abs().sum() > 0  # the first convolution still learns


def test_minibatch_std_sees_a_collapsed_batch():
    from facegan.nets.resnets import minibatch_std

    varied, copies = torch.randn(8, 4, 2, 2), torch.randn(1, 4, 2, 2).expand(8, 4, 2, 2)
    assert minibatch_std(varied).shape == (8, 5, 2, 2)
    assert minibatch_std(copies)[:, 4].abs().max() < 1e-3 < minibatch_std(varied)[:, 4].min()
    assert minibatch_std(torch.randn(3, 4, 2, 2))[:, 4].abs().max() < 1e-3  # 3 images: groups of 1


@pytest.mark.parametrize("size", [32, 64, 128])
def test_skip_layer_excitation_gates_each_block_two_blocks_finer(size):
    torch.manual_seed(0)
    G = Generator(z_size=16, conv_dim=8, image_size=size, sle=True)
    blocks = int(math.log2(size)) - 2
    assert len(G.excite) == blocks - 2  # 64 px: 4x4 gates 16x16, 8x8 gates 32x32
    z = torch.randn(3, 16)
    out = G(z)
    assert out.shape == (3, 3, size, size)
    gates = [m(torch.randn(3, m.gate[1].in_channels, 4, 4)) for m in G.excite.values()]
    assert all(g.shape[2:] == (1, 1) and ((g > 0) & (g < 1)).all() for g in gates)
    # With every gate open (1) the net is the plain DCGAN G over the same layers: the gates are all that SLE adds
    for m in G.excite.values():
        m.forward = lambda low, m=m: torch.ones(low.shape[0], m.gate[1].out_channels, 1, 1)
    assert torch.allclose(G(z), G.net(z[:, :, None, None]))
    assert not torch.allclose(out, G(z))


def test_without_sle_the_generator_keeps_its_parameters_and_state_dict_keys():
    plain, gated = Generator(z_size=16, conv_dim=8), Generator(z_size=16, conv_dim=8, sle=True)
    assert all(k.startswith("net.") for k in plain.state_dict())
    assert set(gated.state_dict()) - set(plain.state_dict()) == {k for k in gated.state_dict() if k.startswith("excite.")}
    with pytest.raises(ConfigError, match="add --arch dcgan|use --arch dcgan"):
        TrainConfig(sle=True, arch="resnet", d_norm="none")
