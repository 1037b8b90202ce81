import torch
from torch import nn

from facegan.training.ema import EMA


def test_ema_warms_up_then_averages_at_the_configured_decay():
    model = nn.Linear(3, 2)
    ema = EMA(model, decay=0.999)
    start = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=0)
    # Early on the average follows the model closely (weight 0.9 at step 0), instead of
    # keeping 99.9% of the random initial weights.
    assert torch.allclose(ema.model.weight, start + 0.9, atol=1e-6)
    assert ema.decay_at(0) == 0.1 and ema.decay_at(10**6) == 0.999
    before = ema.model.weight.clone()
    ema.update(model, step=10**6)
    assert torch.allclose(ema.model.weight, before + 0.001 * (model.weight - before), atol=1e-7)


def test_ema_copies_batchnorm_statistics_and_never_trains():
    model = nn.BatchNorm1d(4)
    ema = EMA(model, decay=0.99)
    model(torch.randn(16, 4) * 3 + 1)  # updates the running statistics
    ema.update(model, step=5)
    assert torch.equal(ema.model.running_mean, model.running_mean)
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training


def _net_with_foreign_statistics():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=0.3))
    net(torch.randn(32, 3) * 5 + 2)  # statistics of activations G_ema will never produce
    return EMA(net, decay=0.9)


def test_measured_norms_are_the_averages_own_batch_statistics():
    from facegan.generate.sample import sample_z
    from facegan.training.ema import NORM_BATCH

    ema = _net_with_foreign_statistics()
    linear, norm = ema.model
    samples = NORM_BATCH + 40  # two batches: a full one and a short one
    rng_before = torch.get_rng_state()
    ema.measure_norms(z_size=3, samples=samples, seed=5)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the training's streams are untouched
    with torch.no_grad():
        h = linear(sample_z(samples, 3, torch.Generator().manual_seed(5)))
    batches = h.split(NORM_BATCH)
    # A plain average over the batches (not a decaying one) of each batch's mean and variance.
    assert torch.allclose(norm.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0), atol=1e-6)
    assert torch.allclose(norm.running_var, torch.stack([b.var(0) for b in batches]).mean(0), atol=1e-5)
    assert not ema.model.training and norm.momentum == 0.3


def test_measured_norms_depend_only_on_the_weights_and_the_seed():
    a, b = _net_with_foreign_statistics(), _net_with_foreign_statistics()
    b.model.load_state_dict(a.model.state_dict())
    b.model[1].running_mean.add_(7)  # other copied statistics are replaced, not blended in
    for ema in (a, b):
        ema.measure_norms(z_size=3, samples=64, seed=1)
    assert torch.equal(a.model[1].running_mean, b.model[1].running_mean)
    assert torch.equal(a.model[1].running_var, b.model[1].running_var)
    copied = a.model[1].running_mean.clone()
    a.measure_norms(z_size=3, samples=0, seed=2)  # 0 keeps what is there
    assert torch.equal(a.model[1].running_mean, copied)
