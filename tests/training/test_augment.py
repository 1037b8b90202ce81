"""DiffAugment and instance noise: layout, reproducibility, gradients, and what each op does."""
import io

import pytest
import torch

from facegan.training.augment import Augmenter, diff_augment, instance_noise, noise_sigma

ALL = "color,translation,cutout"
POLICIES = ["color", "translation", "cutout", ALL]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def images(b=8, size=32, seed=0):
    return torch.rand(b, 3, size, size, generator=gen(seed)) * 2 - 1


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_keeps_shape_dtype_device_and_channels_last(policy, dtype):
    x = images().to(dtype)
    out = diff_augment(x, policy, gen(1))
    assert (out.shape, out.dtype, out.device) == (x.shape, x.dtype, x.device)
    assert not torch.equal(out, x)
    cl = diff_augment(x.to(memory_format=torch.channels_last), policy, gen(1))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cl, out)  # same draws give the same images in either layout


@CUDA
@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_cuda_input_with_cpu_or_cuda_generator(gen_device):
    x = images().cuda()
    a = diff_augment(x, ALL, gen(3, gen_device))
    b = instance_noise(a, 0.1, gen(3, gen_device))
    assert b.device == x.device
    assert torch.equal(diff_augment(x, ALL, gen(3, gen_device)), a)
    if gen_device == "cpu":  # a CPU generator draws the same transforms whatever the device
        torch.testing.assert_close(diff_augment(x.cpu(), ALL, gen(3)), a.cpu())


def test_same_seed_same_output_different_seed_different():
    x = images()
    assert torch.equal(diff_augment(x, ALL, gen(3)), diff_augment(x, ALL, gen(3)))
    assert not torch.equal(diff_augment(x, ALL, gen(3)), diff_augment(x, ALL, gen(4)))
    assert torch.equal(instance_noise(x, 0.1, gen(3)), instance_noise(x, 0.1, gen(3)))
    assert not torch.equal(instance_noise(x, 0.1, gen(3)), instance_noise(x, 0.1, gen(4)))


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_reach_the_input(policy):
    x = images().requires_grad_()
    (instance_noise(diff_augment(x, policy, gen(2)), 0.1, gen(2)) ** 2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_translation_moves_content_by_at_most_an_eighth_with_zero_padding():
    n, size, c = 300, 32, 16
    x = torch.full((n, 3, size, size), 0.5)
    x[:, :, c, c] = 1.0  # a bright marker whose new position gives the shift
    out = diff_augment(x, "translation", gen(5))
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // size - c, pos % size - c
    assert (out[:, 0].flatten(1).max(1).values == 1.0).all()  # marker never lost
    assert dy.abs().max() == 4 and dx.abs().max() == 4  # 1/8 of 32, and reached
    assert dy.min() < 0 < dy.max() and dx.min() < 0 < dx.max()
    # everything shifted in is zero padding: the kept area is (32-|dy|) x (32-|dx|)
    kept = (out[:, 0] != 0).sum((1, 2))
    assert torch.equal(kept, (size - dy.abs()) * (size - dx.abs()))
    assert ((out == 0) | (out == 0.5) | (out == 1.0)).all()  # moved, not resampled


def test_translation_gradient_routes_back_to_the_kept_pixels():
    x = torch.ones(16, 3, 32, 32, requires_grad=True)
    out = diff_augment(x, "translation", gen(6))
    out.sum().backward()
    # each kept output pixel came from exactly one input pixel
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(x.grad.sum((1, 2, 3)), out.detach().sum((1, 2, 3)))


def test_cutout_zeros_one_square_of_about_a_quarter_of_the_image():
    x = torch.ones(400, 3, 32, 32)
    out = diff_augment(x, "cutout", gen(7))
    zero = out[:, 0] == 0
    assert torch.equal(zero, (out == 0).all(1))  # the same square in every channel
    assert 0.15 < zero.float().mean() < 0.35
    rows, cols = zero.any(2), zero.any(1)
    assert (rows.sum(1) <= 16).all() and (cols.sum(1) <= 16).all()
    assert torch.equal(zero.sum((1, 2)), rows.sum(1) * cols.sum(1))  # a rectangle
    # unclipped squares are 16x16: centres 8..24 of 0..32 on both axes, (17/33)^2 = 0.27
    assert 0.2 < (zero.sum((1, 2)) == 16 * 16).float().mean() < 0.35
    assert ((out == 0) | (out == 1)).all()


def test_color_moves_mean_and_contrast_within_the_paper_ranges():
    # gray images: saturation has no colour to scale, so only brightness moves the
    # mean (by U(-0.5, 0.5)) and only contrast scales the spread (by U(0.5, 1.5))
    gray = torch.rand(300, 1, 16, 16, generator=gen(0)) - 0.5
    x = gray.expand(-1, 3, -1, -1).contiguous()
    out = diff_augment(x, "color", gen(8))
    shift = out.mean((1, 2, 3)) - x.mean((1, 2, 3))
    ratio = out.std((1, 2, 3)) / x.std((1, 2, 3))
    assert shift.abs().max() <= 0.5 + 1e-5 and shift.std() > 0.2
    assert ratio.min() >= 0.5 - 1e-4 and ratio.max() <= 1.5 + 1e-4 and ratio.std() > 0.2


def test_color_scales_saturation_by_one_factor_per_image():
    x = images(b=200, size=8)
    out = diff_augment(x, "color", gen(9))
    chroma_in = x - x.mean(1, keepdim=True)
    chroma_out = out - out.mean(1, keepdim=True)
    # saturation U(0, 2) times contrast U(0.5, 1.5): one factor in [0, 3] per image
    factor = (chroma_out * chroma_in).sum((1, 2, 3)) / (chroma_in ** 2).sum((1, 2, 3))
    torch.testing.assert_close(chroma_out, factor[:, None, None, None] * chroma_in,
                               atol=1e-5, rtol=1e-4)
    assert factor.min() >= 0 and factor.max() <= 3 + 1e-4 and factor.std() > 0.3


def test_color_equals_diffaugments_three_steps_one_after_the_other():
    # color() computes them in one fused pass; it must stay DiffAugment's transform
    x = images(b=64, size=8)
    draws = gen(11)
    brightness, saturation, contrast = (torch.rand(64, 1, 1, 1, generator=draws) for _ in range(3))
    want = x + (brightness - 0.5)
    gray = want.mean(1, keepdim=True)
    want = (want - gray) * (saturation * 2) + gray
    mean = want.mean((1, 2, 3), keepdim=True)
    want = (want - mean) * (contrast + 0.5) + mean
    torch.testing.assert_close(diff_augment(x, "color", gen(11)), want)


@pytest.mark.parametrize("policy", ["", " , "])
def test_empty_policy_returns_the_input_itself(policy):
    x = images()
    assert diff_augment(x, policy, gen(1)) is x
    aug = Augmenter(policy, noise_start=0.0)
    assert not aug.enabled and aug(x, 0.3) is x


def test_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match="'flip'.*color, translation, cutout"):
        diff_augment(images(), "color,flip")
    with pytest.raises(ValueError, match="flip"):
        Augmenter("flip")


def test_instance_noise_identity_at_zero_and_std_sigma_otherwise():
    x = torch.zeros(64, 3, 32, 32)
    assert instance_noise(x, 0.0) is x
    noisy = instance_noise(x, 0.3, gen(10))
    assert abs(noisy.std().item() - 0.3) < 0.01 and abs(noisy.mean().item()) < 0.01
    with pytest.raises(ValueError, match="sigma"):
        instance_noise(x, -0.1)


def test_noise_sigma_anneals_linearly_to_zero_and_clamps():
    assert [noise_sigma(0.2, p) for p in (-1.0, 0.0, 0.5, 1.0, 2.0)] == \
        pytest.approx([0.2, 0.2, 0.1, 0.0, 0.0])


def test_augmenter_anneals_its_noise_and_reports_enabled():
    x = torch.zeros(32, 3, 16, 16)
    aug = Augmenter("", noise_start=0.2, seed=1)
    assert aug.enabled and Augmenter("cutout").enabled
    assert abs(aug(x, 0.0).std().item() - 0.2) < 0.01
    assert abs(aug(x, 0.5).std().item() - 0.1) < 0.005
    assert aug(x, 1.0) is x


def test_augmenter_state_round_trip_continues_exactly():
    x = images()
    aug = Augmenter(ALL, noise_start=0.1, seed=7)
    for _ in range(3):
        aug(x, 0.1)
    buf = io.BytesIO()
    torch.save(aug.state_dict(), buf)  # as it would travel in a checkpoint
    buf.seek(0)
    resumed = Augmenter(ALL, noise_start=0.1, seed=123)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    for progress in (0.2, 0.3):
        assert torch.equal(resumed(x, progress), aug(x, progress))
    assert not torch.equal(Augmenter(ALL, 0.1, seed=123)(x, 0.2), Augmenter(ALL, 0.1, seed=7)(x, 0.2))
