import math

import pytest
import torch

from facegan.data.tone import soft_ita
from facegan.training.losses import d_accuracy, d_loss, fake_loss, g_loss, real_loss, sorted_gap, tone_gap


def test_bce_values_on_known_logits():
    zeros = torch.zeros(4, 1)
    assert real_loss(zeros).item() == pytest.approx(math.log(2))
    assert fake_loss(zeros).item() == pytest.approx(math.log(2))
    assert real_loss(torch.full((4, 1), 20.0)).item() < 1e-6
    assert fake_loss(torch.full((4, 1), -20.0)).item() < 1e-6
    assert real_loss(torch.full((4, 1), -20.0)).item() == pytest.approx(20, rel=1e-3)


def test_label_smoothing_targets_point_nine():
    x = torch.tensor([[2.0]])
    p = torch.sigmoid(x).item()
    expected = -(0.9 * math.log(p) + 0.1 * math.log(1 - p))
    assert real_loss(x, smooth=True).item() == pytest.approx(expected, rel=1e-5)
    assert real_loss(x, smooth=0.9).item() == pytest.approx(expected, rel=1e-5)
    # a confident D is penalised under smoothing, not without it
    big = torch.full((1, 1), 10.0)
    assert real_loss(big, smooth=True) > 0.3 > real_loss(big)


def test_least_squares_values():
    ones = torch.ones(3, 1)
    assert real_loss(ones, kind="ls").item() == 0
    assert fake_loss(ones, kind="ls").item() == 1
    assert d_loss(torch.zeros(3, 1), torch.ones(3, 1), "ls").item() == 2


def test_generator_loss_is_non_saturating():
    # Early on D rejects fakes confidently; G must still get a strong gradient.
    logits = torch.full((8, 1), -10.0, requires_grad=True)
    g_loss(logits).backward()
    assert (logits.grad < -0.9 / 8).all()


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="choose one of bce, ls, hinge, wgan"):
        real_loss(torch.zeros(1, 1), kind="relativistic")


def test_accuracy_counts_correct_decisions():
    real = torch.tensor([[1.0], [-1.0]])   # one right, one wrong
    fake = torch.tensor([[-3.0], [-2.0]])  # both right
    assert d_accuracy(real, fake).item() == 0.75
    assert d_accuracy(torch.tensor([[0.9]]), torch.tensor([[0.1]]), "ls").item() == 1.0


def test_hinge_values():
    x = torch.tensor([[2.0], [0.5], [-3.0]])
    assert real_loss(x, kind="hinge").item() == pytest.approx((0 + 0.5 + 4) / 3)
    assert fake_loss(x, kind="hinge").item() == pytest.approx((3 + 1.5 + 0) / 3)
    assert g_loss(x, "hinge").item() == pytest.approx(0.5 / 3)


def test_wgan_critic_loss_is_fake_minus_real():
    real, fake = torch.tensor([[3.0], [1.0]]), torch.tensor([[0.5], [-0.5]])
    assert d_loss(real, fake, "wgan").item() == pytest.approx(0.0 - 2.0)


def test_penalties_measure_d_gradients():
    from facegan.training.losses import gradient_penalty, r1_penalty

    class Linear(torch.nn.Module):  # D(x) = w . x, whose input gradient is w everywhere
        def __init__(self, w):
            super().__init__()
            self.w = torch.nn.Parameter(w)

        def forward(self, x):
            return (x.flatten(1) * self.w).sum(1, keepdim=True)

    w = torch.full((12,), 0.5)  # ||w||^2 = 3, ||w|| = sqrt(3)
    D = Linear(w)
    x = torch.randn(4, 3, 2, 2)
    assert r1_penalty(D, x).item() == pytest.approx(3.0)
    assert gradient_penalty(D, x, torch.randn_like(x)).item() == pytest.approx((3 ** 0.5 - 1) ** 2)
    r1_penalty(D, x).backward()
    assert D.w.grad is not None and D.w.grad.abs().sum() > 0  # the penalty trains D


def test_sorted_gap_is_the_1d_wasserstein_distance():
    a = torch.tensor([0.0, 1.0, 5.0, 2.0])
    assert sorted_gap(a, a[torch.randperm(4)]) == 0  # order within a batch does not matter
    assert torch.isclose(sorted_gap(a, a + 3), torch.tensor(3.0))
    # quantile against quantile: {0, 10} vs {4, 6} is (4 + 4) / 2, not a pairing by position
    assert torch.isclose(sorted_gap(torch.tensor([10.0, 0.0]), torch.tensor([4.0, 6.0])), torch.tensor(4.0))
    with pytest.raises(ValueError, match="one size"):
        sorted_gap(a, a[:3])


def flat_faces(rgb: torch.Tensor, size: int = 16) -> torch.Tensor:
    """(N, 3, size, size) faces in [-1, 1], each one flat colour from rgb (N, 3) in 0..1."""
    return (rgb * 2 - 1)[:, :, None, None].expand(-1, -1, size, size)


def test_tone_gap_pulls_one_tone_onto_the_real_spread():
    # Fake faces start as one warm middle tone; the real batch spans light to dark. Gradient
    # descent on the gap alone must spread the fakes over the real tones, as --tone-match
    # asks of G: the narrowing a GAN shows on CelebA, undone.
    t = torch.linspace(0, 1, 16)[:, None]
    light, dark = torch.tensor([0.93, 0.78, 0.70]), torch.tensor([0.38, 0.24, 0.18])
    real = flat_faces(light * (1 - t) + dark * t)
    logits = torch.logit(torch.tensor([0.69, 0.50, 0.40])).repeat(16, 1)
    logits = (logits + 0.01 * torch.randn(16, 3, generator=torch.Generator().manual_seed(0))).requires_grad_()
    opt = torch.optim.Adam([logits], lr=0.05)
    before = tone_gap(flat_faces(torch.sigmoid(logits)), real).item()
    for _ in range(300):
        opt.zero_grad()
        gap = tone_gap(flat_faces(torch.sigmoid(logits)), real)
        gap.backward()
        opt.step()
    fake_ita, real_ita = soft_ita(flat_faces(torch.sigmoid(logits))), soft_ita(real)
    print(f"\ntone gap {before:.3f} -> {gap.item():.3f} rad; ITA spread {fake_ita.std():.1f} vs real {real_ita.std():.1f} deg")
    assert before > 0.2 and gap.item() < 0.1 * before
    assert fake_ita.std() > 0.8 * real_ita.std()


def test_tone_gap_gradients_are_finite_at_the_colour_extremes():
    extremes = torch.tensor([[0.0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [0.04, 0.04, 0.04]]).requires_grad_()
    real = flat_faces(torch.rand(4, 3, generator=torch.Generator().manual_seed(1)))
    tone_gap(flat_faces(extremes), real).backward()
    assert torch.isfinite(extremes.grad).all()


def test_rpgan_pairs_each_real_image_with_a_fake_one():
    real, fake = torch.tensor([[5.0], [5.0]]), torch.tensor([[-5.0], [-5.0]])
    assert d_loss(real, fake, "rpgan") < 0.01 and g_loss(fake, "rpgan", real) > 9.9
    # Shifting every logit by the same amount changes nothing: only the differences count.
    assert torch.allclose(d_loss(real + 3, fake + 3, "rpgan"), d_loss(real, fake, "rpgan"))
    mixed = torch.tensor([[1.0], [-1.0]])
    assert d_accuracy(mixed, torch.zeros(2, 1), "rpgan") == 0.5
    with pytest.raises(ValueError, match="real_logits"):
        g_loss(fake, "rpgan")


def test_r2_is_r1_on_the_fake_images():
    from facegan.training.losses import r1_penalty, r2_penalty

    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1))
    fake = torch.randn(4, 3, 2, 2)
    assert torch.equal(r2_penalty(D, fake), r1_penalty(D, fake)) and r2_penalty(D, fake) > 0
