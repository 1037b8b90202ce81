import torch
from torch import nn

from facegan.ema import EMA


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
