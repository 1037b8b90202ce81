"""The seed projects' architectures (--arch udacity|keras), --init schemes and --leak (issue 20)."""
import json
import math

import pytest
import torch
from torch import nn

import problem_unittests
from facegan.checkpoint import load_checkpoint
from facegan.commands.cli import main
from facegan.config import IMAGE_SIZES, ConfigError, TrainConfig
from facegan.generate.export import generator_from_checkpoint, load_exported
from facegan.nets.archs import KerasDiscriminator, KerasGenerator, UdacityDiscriminator, UdacityGenerator
from facegan.nets.models import Discriminator, Generator, build_models, init_weights, weights_init_normal
from facegan.training.loop import train, weights_fingerprint

# What each new arch needs besides its name: the Keras D has no BatchNorm.
ARCH_OPTIONS = {"udacity": {}, "keras": {"d_norm": "none"}}
NETS = {"udacity": (UdacityDiscriminator, UdacityGenerator), "keras": (KerasDiscriminator, KerasGenerator)}


def tiny_models(arch, size, **extra):
    cfg = TrainConfig(**{"arch": arch, "image_size": size, "conv_dim": 4, "z_size": 8, **ARCH_OPTIONS[arch], **extra})
    torch.manual_seed(0)
    return (*build_models(cfg), cfg)


# ---------------------------------------------------------------- shapes and layers

@pytest.mark.parametrize("size", IMAGE_SIZES)
@pytest.mark.parametrize("arch", sorted(ARCH_OPTIONS))
def test_each_arch_gives_images_and_logits_at_every_size(arch, size):
    D, G, cfg = tiny_models(arch, size)
    assert (type(D), type(G)) == NETS[arch]
    z = torch.randn(3, cfg.z_size)
    fake = G(z)
    assert fake.shape == (3, 3, size, size) and fake.min() >= -1 and fake.max() <= 1
    assert G.eval()(z[:, :, None, None]).shape == fake.shape  # (B, z, 1, 1) too
    assert D(fake).shape == (3, 1)
    assert not any(isinstance(m, (nn.Sigmoid, nn.MaxPool2d, nn.AvgPool2d)) for m in D.modules())


def kinds(net, kind):
    return [m for m in net.modules() if isinstance(m, kind)]


def test_the_udacity_nets_are_the_course_reference():
    D, G, _ = tiny_models("udacity", 32, conv_dim=32, z_size=100)
    convs = kinds(D, nn.Conv2d)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (4, 4), (2, 2)), (64, (4, 4), (2, 2)),
                                                                         (128, (4, 4), (2, 2))]
    assert [b.num_features for b in kinds(D, nn.BatchNorm2d)] == [64, 128]  # not on raw pixels
    assert [(fc.in_features, fc.out_features) for fc in kinds(D, nn.Linear)] == [(128 * 4 * 4, 1)]
    assert [(fc.in_features, fc.out_features) for fc in kinds(G, nn.Linear)] == [(100, 128 * 4 * 4)]
    assert [(t.in_channels, t.out_channels) for t in kinds(G, nn.ConvTranspose2d)] == [(128, 64), (64, 32), (32, 3)]


def test_the_keras_nets_are_the_projects_model():
    D, G, _ = tiny_models("keras", 128, conv_dim=64, z_size=100)
    assert [(c.out_channels, c.kernel_size, c.stride) for c in kinds(D, nn.Conv2d)] == [(64, (5, 5), (2, 2)),
                                                                                       (128, (5, 5), (2, 2))]
    assert [d.p for d in kinds(D, nn.Dropout)] == [0.3, 0.3]  # the model's own rate when --d-dropout is 0
    assert not kinds(D, nn.BatchNorm2d)
    assert [fc.out_features for fc in kinds(G, nn.Linear)] == [32 * 32 * 512]
    assert [t.kernel_size for t in kinds(G, nn.ConvTranspose2d)] == [(5, 5), (5, 5)]
    D, _, _ = tiny_models("keras", 32, d_dropout=0.5)
    assert [d.p for d in kinds(D, nn.Dropout)] == [0.5, 0.5]


@pytest.mark.parametrize("arch", sorted(ARCH_OPTIONS))
def test_the_course_checks_pass_for_the_new_nets(arch, capsys):
    D, G = NETS[arch]
    problem_unittests.check_discriminator(D)
    problem_unittests.check_generator(G)
    assert capsys.readouterr().out.count("Tests Passed") == 2


@pytest.mark.parametrize("norm", ["spectral", "none"])
def test_the_udacity_d_takes_other_normalisations(norm):
    D, _, _ = tiny_models("udacity", 32, d_norm=norm)
    assert not kinds(D, nn.BatchNorm2d)
    spectral = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(spectral) == (4 if norm == "spectral" else 0)  # 3 convolutions and the dense layer
    assert D(torch.randn(2, 3, 32, 32)).shape == (2, 1)


@pytest.mark.parametrize("arch, bad, needle", [
    ("udacity", {"condition": "tone"}, "condition"), ("keras", {"condition": "tone"}, "condition"),
    ("udacity", {"extra_layers": 1}, "extra_layers"), ("keras", {"extra_layers": 2}, "extra_layers"),
    ("udacity", {"d_dropout": 0.3}, "d_dropout.*--arch keras"), ("keras", {"d_norm": "batch"}, "--d-norm none"),
])
def test_options_the_new_archs_lack_are_refused_in_one_line(arch, bad, needle):
    with pytest.raises(ConfigError, match=f"^arch='{arch}'.*{needle}") as refused:
        TrainConfig(arch=arch, **{**ARCH_OPTIONS[arch], **bad})
    assert "\n" not in str(refused.value)


# ---------------------------------------------------------------- training, resume, sample, export

def same_state(a: dict, b: dict) -> bool:
    nets = all(torch.equal(a[k][n], b[k][n]) for k in ("G", "D") for n in a[k])
    moments = all(torch.equal(t, b[k]["state"][pid][name]) for k in ("opt_d", "opt_g")
                  for pid, st in a[k]["state"].items() for name, t in st.items())
    return nets and moments


def metric_rows(run):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("arch", sorted(ARCH_OPTIONS))
def test_a_run_trains_resumes_exactly_and_samples(arch, tiny_cfg, tmp_path, capsys):
    options = {"arch": arch, **ARCH_OPTIONS[arch], "epochs": 2, "leak": 0.1, "init": "orthogonal"}
    straight = tiny_cfg(out=str(tmp_path / "straight"), **options)
    train(straight, progress=False)
    split = tiny_cfg(out=str(tmp_path / "split"), **options)
    train(split, progress=False, should_stop=lambda epochs_done: epochs_done == 1)
    halfway = load_checkpoint(split.run_dir / "checkpoints/latest.pt")
    train(split, resume=True, progress=False)

    a, b = (load_checkpoint(c.run_dir / "checkpoints/latest.pt") for c in (straight, split))
    assert halfway["epoch"] == 1 and a["epoch"] == b["epoch"] == 2
    assert same_state(a, b) and metric_rows(straight.run_dir) == metric_rows(split.run_dir)
    assert not same_state(halfway, a)  # the second epoch trained
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in metric_rows(straight.run_dir))

    checkpoint = straight.run_dir / "checkpoints/latest.pt"
    G, cfg = generator_from_checkpoint(checkpoint)
    assert isinstance(G, NETS[arch][1]) and cfg.arch == arch
    ref = build_models(cfg)[1]
    ref.load_state_dict(a["G"])
    assert weights_fingerprint(G) == weights_fingerprint(ref)

    out = tmp_path / "g.safetensors"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    z = torch.randn(3, cfg.z_size)
    assert torch.equal(load_exported(out)(z), G(z))
    program = torch.export.load(str(out.with_suffix(".pt2"))).module()
    assert torch.allclose(program(z), G(z), atol=1e-6)
    for source in (checkpoint, out):
        faces = tmp_path / f"faces-{source.suffix[1:]}"
        assert main(["sample", "--checkpoint", str(source), "--n", "4", "--out", str(faces)]) == 0
        assert len(list(faces.glob("*.png"))) == 4


# ---------------------------------------------------------------- --init

def weighted(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def fans(m) -> tuple[int, int]:
    """(fan_in, fan_out) worked out by hand: what reaches one output, what one input reaches."""
    if isinstance(m, nn.Linear):
        return m.in_features, m.out_features
    area = m.kernel_size[0] * m.kernel_size[1]
    return m.in_channels * area, m.out_channels * area


def expected_std(scheme, m) -> float:
    fan_in, fan_out = fans(m)
    return {"normal": 0.02, "xavier": math.sqrt(2 / (fan_in + fan_out)), "kaiming": math.sqrt(2 / fan_in)}[scheme]


def wide_net():
    # Wide enough that each layer's sample std is within 2% of its true std; biases on, to be zeroed.
    return nn.Sequential(nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ConvTranspose2d(128, 64, 4, 2, 1),
                         nn.BatchNorm2d(64), nn.Linear(512, 256))


def check_batchnorm_and_biases(net):
    scales = torch.cat([b.weight.detach() for b in kinds(net, nn.BatchNorm2d)])
    assert abs(scales.mean() - 1) < 0.01 and 0.01 < scales.std() < 0.03  # ~N(1, 0.02)
    assert all((b.bias == 0).all() for b in kinds(net, nn.BatchNorm2d))
    assert all(m.bias is None or (m.bias == 0).all() for m in weighted(net))


@pytest.mark.parametrize("scheme", ["normal", "xavier", "kaiming"])
def test_each_scheme_draws_weights_with_its_documented_std(scheme):
    torch.manual_seed(0)
    net = wide_net()
    init_weights(net, scheme)
    for m in weighted(net):
        w = m.weight.detach()
        assert abs(w.mean()) < 0.1 * expected_std(scheme, m)
        assert w.std().item() == pytest.approx(expected_std(scheme, m), rel=0.03), type(m).__name__
        if scheme != "normal":  # and unlike the paper's N(0, 0.02), at these widths
            assert abs(w.std().item() - 0.02) > 0.1 * 0.02
    check_batchnorm_and_biases(net)


def is_orthogonal(w: torch.Tensor) -> bool:
    w = w.detach().flatten(1)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return torch.allclose(gram, torch.eye(len(gram)), atol=1e-4)


def test_orthogonal_weights_have_orthonormal_rows_or_columns():
    torch.manual_seed(0)
    net = wide_net()
    init_weights(net, "normal")
    assert not any(is_orthogonal(m.weight) for m in weighted(net))
    init_weights(net, "orthogonal")
    assert all(is_orthogonal(m.weight) for m in weighted(net))
    check_batchnorm_and_biases(net)


def test_normal_is_the_paper_init_exactly_as_before():
    # Same draws in the same order as D.apply / G.apply(weights_init_normal): older runs reproduce.
    cfg = TrainConfig(image_size=32, conv_dim=8, z_size=16)
    torch.manual_seed(0)
    D, G = build_models(cfg)
    torch.manual_seed(0)
    D0, G0 = Discriminator(8, 32), Generator(16, 8, 32)
    D0.apply(weights_init_normal)
    G0.apply(weights_init_normal)
    assert weights_fingerprint(D, G) == weights_fingerprint(D0, G0)


@pytest.mark.parametrize("arch", ["dcgan", "udacity", "keras"])
def test_build_models_applies_the_configured_scheme(arch):
    cfg = TrainConfig(arch=arch, image_size=32, conv_dim=8, z_size=16, init="kaiming",
                      **ARCH_OPTIONS.get(arch, {}))
    torch.manual_seed(0)
    D, G = build_models(cfg)
    w = torch.cat([m.weight.detach().flatten() / expected_std("kaiming", m) for m in weighted(D) + weighted(G)])
    assert w.std().item() == pytest.approx(1, rel=0.05)  # every layer at its own He std


def test_schemes_reach_weights_under_spectral_norm():
    # m.weight is recomputed from a stored weight under spectral norm: the init must draw that one.
    D, _, _ = tiny_models("udacity", 32, d_norm="spectral", conv_dim=16, init="orthogonal")
    stored = [m.parametrizations.weight.original for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(stored) == 4 and all(is_orthogonal(w) for w in stored)


@pytest.mark.parametrize("arch", ["dcgan", "udacity"])
def test_normal_reaches_spectrally_normalised_weights(arch):
    # The default scheme too: before, `quality`'s spectral-norm D kept torch's default init.
    torch.manual_seed(0)
    D, _ = build_models(TrainConfig(arch=arch, image_size=32, conv_dim=16, z_size=8, d_norm="spectral",
                                    **ARCH_OPTIONS.get(arch, {})))
    stored = [m.parametrizations.weight.original for m in D.modules() if hasattr(m, "parametrizations")]
    assert stored and all(w.std().item() == pytest.approx(0.02, rel=0.2) for w in stored if w.numel() > 500)


def test_an_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="init='uniform'"):
        init_weights(nn.Linear(2, 2), "uniform")
    with pytest.raises(ConfigError, match="^init='uniform'"):
        TrainConfig(init="uniform")


@pytest.mark.parametrize("bad", [{"init": "xavier"}, {"leak": 0.1}])
def test_the_residual_nets_refuse_another_init_or_slope(bad):
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=f"^arch='resnet': {name}=.*drop --{name}") as refused:
        TrainConfig(arch="resnet", d_norm="none", **bad)
    assert "\n" not in str(refused.value)


# ---------------------------------------------------------------- --leak

@pytest.mark.parametrize("arch", ["dcgan", "udacity", "keras"])
@pytest.mark.parametrize("leak", [0.2, 0.05])
def test_leak_sets_every_leaky_relu_of_d(arch, leak):
    cfg = TrainConfig(arch=arch, image_size=32, conv_dim=8, z_size=16, leak=leak,
                      **ARCH_OPTIONS.get(arch, {}))
    D, _ = build_models(cfg)
    slopes = [m.negative_slope for m in kinds(D, nn.LeakyReLU)]
    assert slopes and all(s == leak for s in slopes)


def test_the_dcgan_d_takes_leak_last_and_keeps_its_old_signature():
    old = Discriminator(8, 32, 0.0, "batch", 1, 0)  # positional callers from before --leak
    assert {m.negative_slope for m in kinds(old, nn.LeakyReLU)} == {0.2}
    new = Discriminator(8, 32, extra_layers=1, leak=0.3)
    assert {m.negative_slope for m in kinds(new, nn.LeakyReLU)} == {0.3}  # the extra blocks too
