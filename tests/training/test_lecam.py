"""LeCam: D's logits pulled toward the running means of its other verdicts, and nothing else."""
import pytest
import torch

from facegan.config import ConfigError, TrainConfig
from facegan.training.lecam import LeCam
from facegan.training.step import GAN, train_step


def test_the_penalty_is_the_papers_on_known_logits():
    lecam = LeCam(weight=0.5)
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[-1.0], [-3.0]])
    # anchors: the first batch's means, 1 (real) and -2 (fake). Reals above -2: (4^2 + 2^2) / 2 = 10;
    # fakes below 1: (2^2 + 4^2) / 2 = 10; weighted: 0.5 * 20
    assert lecam(real, fake).item() == pytest.approx(10.0)
    # Logits within the anchors' bounds cost nothing
    assert LeCam(weight=1.0)(torch.tensor([[-5.0]]), torch.tensor([[5.0]])).item() == 0.0


def test_the_anchors_are_running_means_that_carry_no_gradient():
    lecam = LeCam(weight=1.0)
    lecam(torch.tensor([[1.0]]), torch.tensor([[-1.0]]))
    real = torch.tensor([[3.0]], requires_grad=True)
    fake = torch.tensor([[1.0]], requires_grad=True)
    penalty = lecam(real, fake)
    assert lecam.anchor_real.item() == pytest.approx(0.99 * 1 + 0.01 * 3)
    assert lecam.anchor_fake.item() == pytest.approx(0.99 * -1 + 0.01 * 1)
    penalty.backward()
    # d/dreal (real - a_F)^2 = 2 (3 - a_F); the fake (1) lies below a_R (1.02): a small pull up
    assert real.grad.item() == pytest.approx(2 * (3 - lecam.anchor_fake.item()))
    assert fake.grad.item() == pytest.approx(-2 * (lecam.anchor_real.item() - 1))
    assert not lecam.anchor_real.requires_grad and not lecam.anchor_fake.requires_grad


def test_the_anchors_round_trip_through_a_state_dict_and_refuse_junk():
    lecam = LeCam(weight=1.0)
    lecam(torch.tensor([[2.0]]), torch.tensor([[-2.0]]))
    again = LeCam(weight=1.0)
    again.load_state_dict(lecam.state_dict())
    assert (again.anchor_real.item(), again.anchor_fake.item()) == (2.0, -2.0)
    with pytest.raises(ValueError, match="scalar tensors"):
        again.load_state_dict({"anchor_real": torch.zeros(3), "anchor_fake": None})


def test_a_step_with_lecam_changes_d_alone_and_only_when_d_trains(tiny_cfg):
    cfg = tiny_cfg(lecam=0.3)
    torch.manual_seed(0)
    gan = GAN.build(cfg, torch.device("cpu"))
    real, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, cfg.z_size)
    train_step(real, gan.D, gan.G, gan.d_opt, gan.g_opt, z, train_d=False, logit_penalty=gan.lecam)
    assert gan.lecam.anchor_real is None  # a step that leaves D alone leaves the anchors too
    train_step(real, gan.D, gan.G, gan.d_opt, gan.g_opt, z, logit_penalty=gan.lecam)
    assert gan.lecam.anchor_real is not None and "lecam" in gan.parts()
    assert GAN.build(tiny_cfg(), torch.device("cpu")).lecam is None  # off by default


def test_a_negative_weight_is_refused():
    with pytest.raises(ConfigError, match=r"lecam=-0.1: must be >= 0 \(0 turns it off\)"):
        TrainConfig(lecam=-0.1)
