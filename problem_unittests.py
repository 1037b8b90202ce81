"""Checks for the face-generation notebook, and a pytest module of its own.

The notebook calls `check_*` on what its cells just built (`import problem_unittests
as tests; tests.check_scale(scale)`); each prints "Tests Passed" or raises an
AssertionError whose one line says what is wrong and, for the classic mistakes (a sigmoid
before BCE with logits, pooling, BatchNorm in the wrong place, scaling to [0, 1], Adam's
default betas, a D step that reaches G, gradients never zeroed, the wrong optimizer
stepped), how to fix it. The `test_*` functions at the bottom run the same checks on the
library's objects, and on each classic mistake, so `pytest problem_unittests.py` passes
on its own.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from facegan import IMAGE_SIZES as SIZES  # the sizes the library supports

CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _passed(what: str) -> None:
    print(f"Tests Passed: {what}")


class _CallLog(TorchFunctionMode):
    """Names every torch function a forward pass calls, nn.Module or functional alike
    (torch.sigmoid, Tensor.sigmoid, F.max_pool2d, ...)."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", ""))
        return func(*args, **(kwargs or {}))


def _trace(net: nn.Module, *inputs):
    """net(*inputs), the torch functions it called, and the leaf modules it ran, in order."""
    ran = []
    hooks = [m.register_forward_hook(lambda m, i, o: ran.append(m))
             for m in net.modules() if isinstance(m, (*CONVS, nn.BatchNorm2d)) or not list(m.children())]
    try:
        with _CallLog() as log:
            out = net(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return out, log.names, ran


def _batchnorm_placement(ran: list, who: str, first_block: bool) -> None:
    """BatchNorm sits right after a convolution (conv -> BatchNorm -> activation), never on
    the net's last convolution and, for D (`first_block`), not in the first block."""
    convs = [i for i, m in enumerate(ran) if isinstance(m, CONVS)]
    weighted = [i for i, m in enumerate(ran) if isinstance(m, (*CONVS, nn.Linear))]  # the last makes the output
    for i, m in enumerate(ran):
        if not isinstance(m, nn.BatchNorm2d):
            continue
        if first_block and len(convs) > 1 and i < convs[1]:
            raise AssertionError(f"{who}'s first block has BatchNorm: leave it out there (the DCGAN paper "
                                 "normalises neither D's input layer nor G's output layer)")
        if weighted and i > weighted[-1]:
            last = "D's logit" if first_block else "what tanh turns into the image"
            raise AssertionError(f"{who} has BatchNorm after its last layer: leave it out, {last} is not "
                                 "normalised (DCGAN paper)")
        # A dense layer reshaped to a feature map (G's first layer in the course's and Keras's
        # nets) is normalised like a convolution's output.
        if i == 0 or not isinstance(ran[i - 1], (*CONVS, nn.Linear)):
            before = type(ran[i - 1]).__name__ if i else "the input"
            raise AssertionError(f"{who} applies BatchNorm after {before}: put it right after each "
                                 "convolution, before the activation (conv -> BatchNorm -> activation)")


# ------------------------------------------------------------------ data

def check_dataloader(loader, image_size: int, batch_size: int | None = None) -> None:
    """One batch: (B, 3, S, S) floats in [0, 1], as ToTensor gives before `scale`."""
    images = next(iter(loader))
    if isinstance(images, (list, tuple)):  # an ImageFolder-style (images, labels) pair
        images = images[0]
    assert torch.is_tensor(images) and images.is_floating_point(), \
        f"a batch should be a float tensor, got {type(images).__name__} {getattr(images, 'dtype', '')}"
    assert images.dim() == 4 and images.shape[1:] == (3, image_size, image_size), \
        f"batch shape {tuple(images.shape)}; expected (B, 3, {image_size}, {image_size})"
    if batch_size is not None:
        assert images.shape[0] == batch_size, f"batch of {images.shape[0]}; expected {batch_size}"
    assert images.min() >= 0 and images.max() <= 1, \
        f"pixels lie in [{images.min():.3f}, {images.max():.3f}]; the loader should give [0, 1]"
    assert images.std() > 0.01, "the batch is (nearly) constant: are the images blank?"
    _passed(f"dataloader gives (B, 3, {image_size}, {image_size}) batches in [0, 1]")


def check_scale(scale) -> None:
    """scale(x) maps [0, 1] to [-1, 1] (tanh's range) elementwise, keeping the shape;
    scale(x, feature_range) maps it to that range."""
    x = torch.rand(2, 3, 8, 8)
    x[0, 0, 0, 0], x[0, 0, 0, 1] = 0.0, 1.0
    y = scale(x)
    assert torch.is_tensor(y) and y.shape == x.shape, \
        f"scale should return a tensor of x's shape {tuple(x.shape)}, got {getattr(y, 'shape', type(y).__name__)}"
    lo, hi = y.min().item(), y.max().item()
    assert not (lo == 0 and hi == 1), \
        "scale(x) is still in [0, 1]: map it to [-1, 1], the range tanh gives G's images, with x * (max - min) + min"
    assert lo == -1 and hi == 1, f"scale(x) spans [{lo:.3f}, {hi:.3f}]; expected exactly [-1, 1] for x in [0, 1]"
    assert torch.allclose(y, x * 2 - 1, atol=1e-6), "scale should be linear: 0 -> -1, 0.5 -> 0, 1 -> 1"
    assert torch.allclose(scale(x, feature_range=(0, 2)), x * 2, atol=1e-6), \
        "scale(x, feature_range=(0, 2)) should give [0, 2]: use min, max = feature_range"
    _passed("scale maps [0, 1] to [-1, 1]")


# ------------------------------------------------------------------ models

def check_discriminator(Discriminator, conv_dim: int = 8) -> None:
    """For every supported size, D(images) gives one logit per image, shape (B, 1), from
    strided convolutions (no pooling), BatchNorm where the DCGAN paper puts it, no sigmoid."""
    for size in SIZES:
        D = Discriminator(conv_dim=conv_dim, image_size=size)
        out, called, ran = _trace(D, torch.rand(4, 3, size, size) * 2 - 1)
        assert out.shape == (4, 1), f"{size} px: D gave shape {tuple(out.shape)}; expected (4, 1)"
        pooled = sorted({name for name in called if "pool" in name})
        assert not pooled and not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in D.modules()), \
            f"D pools ({', '.join(pooled) or 'a pooling layer'}): halve the resolution with stride-2 " \
            "convolutions instead, which learn how to downsample"
        assert not any(name.startswith("sigmoid") for name in called) and \
            not isinstance(list(D.modules())[-1], nn.Sigmoid), \
            "D applies a sigmoid: return the logits, since real_loss and fake_loss (BCE with logits) apply it"
        _batchnorm_placement(ran, "D", first_block=True)
    _passed(f"Discriminator gives (B, 1) logits at {', '.join(map(str, SIZES))} px")


def check_generator(Generator, z_size: int = 16, conv_dim: int = 8) -> None:
    """For every supported size, G(z) gives (B, 3, S, S) images in [-1, 1] through tanh, from
    (B, z) or (B, z, 1, 1), with BatchNorm after each convolution but the last."""
    for size in SIZES:
        G = Generator(z_size=z_size, conv_dim=conv_dim, image_size=size)
        z = torch.rand(4, z_size) * 2 - 1
        out, called, ran = _trace(G, z)
        assert out.shape == (4, 3, size, size), \
            f"{size} px: G gave shape {tuple(out.shape)}; expected (4, 3, {size}, {size})"
        assert "tanh" in called and out.min() >= -1 and out.max() <= 1, \
            "G's last layer should be tanh, so its images lie in [-1, 1] like the scaled real ones"
        _batchnorm_placement(ran, "G", first_block=False)
        assert G(z[:, :, None, None]).shape == out.shape, "G should also accept z as (B, z_size, 1, 1)"
    _passed(f"Generator gives (B, 3, S, S) images in [-1, 1] at {', '.join(map(str, SIZES))} px")


def check_weights_init(weights_init_normal, model: nn.Module | None = None) -> None:
    """After model.apply(init): conv/linear weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0."""
    if model is None:
        model = nn.Sequential(nn.Conv2d(3, 64, 4), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 64, 4),
                              nn.BatchNorm2d(64), nn.Linear(256, 64))
    model.apply(weights_init_normal)
    for kind in (nn.Conv2d, nn.ConvTranspose2d, nn.Linear):
        of_kind = [m.weight.detach().flatten() for m in model.modules() if type(m) is kind]
        std = torch.cat(of_kind).std().item() if of_kind else 0.02
        assert abs(std - 0.02) < 0.005, \
            f"{kind.__name__} weights have std {std:.4f}, not 0.02: initialise every Conv2d, ConvTranspose2d " \
            "and Linear layer (isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)))"
    weights = [m.weight.detach().flatten() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    w = torch.cat(weights)
    assert abs(w.mean()) < 0.005 and abs(w.std() - 0.02) < 0.005, \
        f"conv/linear weights have mean {w.mean():.4f}, std {w.std():.4f}; expected N(0, 0.02)"
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert abs(m.weight.mean() - 1) < 0.02, f"BatchNorm weights have mean {m.weight.mean():.3f}; expected ~1"
            assert torch.all(m.bias == 0), "BatchNorm biases should start at 0"
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.bias is not None:
            assert torch.all(m.bias == 0), f"{type(m).__name__} biases should start at 0"
    _passed(f"weights ~ N(0, 0.02) (measured mean {w.mean():+.4f}, std {w.std():.4f})")


# ------------------------------------------------------------------ losses and optimizers

def _loss_at_zero(loss, name: str, label: int) -> None:
    """BCE with logits at logit 0 is log 2 whatever the label; other values betray the mistake."""
    value = float(loss(torch.zeros(8, 1)))
    if math.isclose(value, math.log(2), rel_tol=1e-4):
        return
    twice = float(F.softplus(torch.tensor(0.5 if label == 0 else -0.5)))  # BCE with logits of sigmoid(0)
    if math.isclose(value, twice, rel_tol=1e-3):
        hint = ("it applies a sigmoid before BCE with logits, which applies it again: pass D's logits "
                "straight to BCEWithLogitsLoss")
    elif not math.isfinite(value) or value > 10:
        hint = "BCELoss wants probabilities, and D gives logits: use BCEWithLogitsLoss (it applies the sigmoid)"
    else:
        hint = "use BCEWithLogitsLoss on D's logits, binary cross-entropy with the sigmoid built in"
    raise AssertionError(f"{name}(0) = {value:.4f}, expected log 2 = 0.6931: {hint}")


def check_losses(real_loss, fake_loss) -> None:
    """BCE on logits: log 2 at logit 0, ~0 when D is right, large when it is wrong; smoothing to 0.9."""
    right, wrong = torch.full((8, 1), 12.0), torch.full((8, 1), -12.0)
    _loss_at_zero(real_loss, "real_loss", 1)
    _loss_at_zero(fake_loss, "fake_loss", 0)
    assert not (real_loss(right).item() > 10 and fake_loss(wrong).item() > 10), \
        "the labels are swapped: real_loss compares D's logits with 1 (real), fake_loss with 0 (fake)"
    assert real_loss(right).item() < 1e-4 and fake_loss(wrong).item() < 1e-4, \
        "the loss should be ~0 when D is confidently right"
    assert real_loss(wrong).item() > 10 and fake_loss(right).item() > 10, \
        "the loss should be large when D is confidently wrong"
    smoothed = real_loss(right, smooth=True).item()
    assert smoothed != real_loss(right).item(), "real_loss(x, smooth=True) should use the target 0.9 instead of 1"
    assert 0.3 < smoothed < 1.5, f"real_loss(x, smooth=True) = {smoothed:.3f}; targets of 0.9 " \
                                 "should penalise an over-confident D"
    _passed("real_loss and fake_loss give the expected values on known logits")


def check_optimizers(d_optimizer, g_optimizer, D: nn.Module, G: nn.Module) -> None:
    """Each optimizer updates exactly its own network's parameters."""
    for name, opt, net, other in (("d_optimizer", d_optimizer, D, G), ("g_optimizer", g_optimizer, G, D)):
        owned = {id(p) for group in opt.param_groups for p in group["params"]}
        assert owned == {id(p) for p in net.parameters()}, \
            f"{name} should hold exactly the parameters of {type(net).__name__}"
        assert not owned & {id(p) for p in other.parameters()}, \
            f"{name} must not update {type(other).__name__}'s parameters"
        for group in opt.param_groups:
            assert group["lr"] != 1e-3, f"{name} has Adam's default lr 0.001: DCGAN uses lr=0.0002"
            assert 0 < group["lr"] < 0.01, f"{name} lr={group['lr']}; GANs want small rates like 2e-4"
            if "betas" in group:
                assert group["betas"][0] != 0.9, \
                    f"{name} has Adam's default betas {tuple(group['betas'])}: DCGAN uses betas=(0.5, 0.999), " \
                    "whose shorter momentum keeps the two-player game from oscillating"
                assert group["betas"][0] <= 0.5, f"{name} beta1={group['betas'][0]}; DCGAN uses 0.5"
    _passed("d_optimizer and g_optimizer each hold their own network's parameters")


# ------------------------------------------------------------------ the training step

class _WatchedAdam(torch.optim.Adam):
    """Adam that calls `watch()` just before each step, to see the gradients it is given."""

    def __init__(self, params, watch):
        super().__init__(params, lr=2e-4, betas=(0.5, 0.999))
        self.watch = watch

    def step(self, closure=None):
        self.watch()
        return super().step(closure)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _grads_like(net: nn.Module, expected: list, scales=(1.0, 0.5)) -> bool:
    """The net's gradients equal `expected` (or `expected` times a scale: averaging D's two
    losses instead of adding them is fine)."""
    got = [p.grad for p in net.parameters()]
    if any(g is None for g in got):
        return False
    return any(all(torch.allclose(g, s * e, rtol=1e-3, atol=1e-7) for g, e in zip(got, expected)) for s in scales)


def _empty(net: nn.Module) -> bool:
    return all(p.grad is None or not p.grad.any() for p in net.parameters())


def check_train_step(train_step) -> None:
    """train_step(real, D, G, d_optimizer, g_optimizer, z) -> {"d_loss", "g_loss"}: one D update on
    real images and detached fakes, then one G update against the updated D, each on freshly
    zeroed gradients. Watched on tiny nets (8x8 images) whose gradients start out stale."""
    torch.manual_seed(0)
    z_size, stale = 4, 1e6
    D = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4, 1, 0), nn.Flatten())
    G = nn.Sequential(nn.Unflatten(1, (z_size, 1, 1)), nn.ConvTranspose2d(z_size, 8, 4, 1, 0, bias=False),
                      nn.BatchNorm2d(8), nn.ReLU(), nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())
    real, z = torch.rand(8, 3, 8, 8) * 2 - 1, torch.randn(8, z_size)
    for p in [*D.parameters(), *G.parameters()]:
        p.grad = torch.full_like(p, stale)  # what a previous step would have left behind

    # D's loss and gradients as they should be: real_loss(D(real)) + fake_loss(D(G(z).detach()))
    D0, G0 = copy.deepcopy(D), copy.deepcopy(G)
    d_expected = _bce(D0(real), 1.0) + _bce(D0(G0(z).detach()), 0.0)
    d_grads = torch.autograd.grad(d_expected, list(D0.parameters()))
    steps, g_expected = [], {}

    def at_d_step():
        steps.append("d")
        assert steps == ["d"], "d_optimizer.step() ran twice: G's update must step g_optimizer, not d_optimizer"
        assert all(p.grad is None or (p.grad == stale).all() or not p.grad.any() for p in G.parameters()), \
            "D's update changed G's gradients: detach the fakes D judges (D(fake_images.detach())), so " \
            "D's loss does not backpropagate into G"
        assert all(p.grad is None or p.grad.abs().max() < stale / 2 for p in D.parameters()), \
            "D's gradients still hold the previous step's: call d_optimizer.zero_grad() before d_loss.backward()"
        assert not _empty(D), \
            "D's gradients are empty at d_optimizer.step(): call d_loss.backward() between zero_grad() and step()"
        assert _grads_like(D, d_grads), \
            "D's gradients are not those of real_loss(D(real)) + fake_loss(D(G(z).detach())): check " \
            "real_loss and fake_loss, and use the real images and z passed in"

    def at_g_step():
        steps.append("g")
        assert steps == ["d", "g"], ("g_optimizer stepped before d_optimizer: update D first, then G against it"
                                     if steps == ["g"] else "g_optimizer.step() ran twice")
        # G's loss as it should be, against the D just updated: real_loss(D(G(z))), the non-saturating loss
        D1, G1 = copy.deepcopy(D), copy.deepcopy(G)
        fake_logits = D1(G1(z))
        g_expected["loss"] = _bce(fake_logits, 1.0)
        expected = torch.autograd.grad(g_expected["loss"], list(G1.parameters()), retain_graph=True)
        wrong_label = torch.autograd.grad(_bce(fake_logits, 0.0), list(G1.parameters()))
        assert not any(p.grad is not None and p.grad.abs().max() > stale / 2 for p in G.parameters()), \
            "G's gradients still hold the previous step's: call g_optimizer.zero_grad() before g_loss.backward()"
        assert not _empty(G), "G's gradients are empty at g_optimizer.step(): G's loss must reach G, so do not " \
                              "detach the fakes in G's update, and call g_loss.backward() before step()"
        assert not _grads_like(G, wrong_label, scales=(1.0,)), \
            "G's loss labels its fakes fake: G wants D to call them real, g_loss = real_loss(D(fake_images))"
        assert _grads_like(G, expected, scales=(1.0,)), \
            "G's gradients are not those of real_loss(D(G(z))) with the D just updated: recompute D's verdict " \
            "on the fakes after d_optimizer.step(), and use the z passed in"

    d_opt, g_opt = _WatchedAdam(D.parameters(), at_d_step), _WatchedAdam(G.parameters(), at_g_step)
    result = train_step(real, D, G, d_opt, g_opt, z)
    assert result is not None, "train_step should return {'d_loss': ..., 'g_loss': ...}"
    assert steps, "neither optimizer stepped: call d_optimizer.step() and g_optimizer.step()"
    assert steps == ["d", "g"], "g_optimizer.step() never ran: after g_loss.backward(), call g_optimizer.step()"
    if isinstance(result, dict):
        assert {"d_loss", "g_loss"} <= set(result), f"train_step returned keys {sorted(result)}; expected d_loss, g_loss"
        d_loss, g_loss = float(result["d_loss"]), float(result["g_loss"])
    else:
        d_loss, g_loss = map(float, result)
    assert any(math.isclose(d_loss, s * d_expected.item(), rel_tol=1e-4) for s in (1.0, 0.5)), \
        f"train_step's d_loss is {d_loss:.5f}, expected {d_expected.item():.5f}: return D's loss of this step"
    assert math.isclose(g_loss, g_expected["loss"].item(), rel_tol=1e-4), \
        f"train_step's g_loss is {g_loss:.5f}, expected {g_expected['loss'].item():.5f}: return G's loss of this step"
    _passed("train_step: D on real and detached fakes, then G against the updated D, each from zeroed gradients")


# ------------------------------------------------------------------ skin-tone audit

UNIFORM_SHARES = np.full(6, 1 / 6)


def _tv(p, q) -> float:
    """Total variation distance, written out here so the checks do not trust the library's."""
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def check_ita(ita_degrees) -> None:
    """ITA = arctan((L* - 50) / b*) in degrees, on (L*, b*) pairs whose angle is known."""
    L, b = np.array([50.0, 70.0, 30.0, 80.0]), np.array([20.0, 20.0, 20.0, 15.0])
    expected = np.array([0.0, 45.0, -45.0, 63.435])
    got = np.asarray(ita_degrees(L, b), dtype=np.float64)
    assert got.shape == expected.shape, f"ita_degrees gave shape {got.shape} for {len(L)} inputs; expected one angle each"
    assert np.allclose(got, expected, atol=0.01), \
        f"ITA of (L*, b*) = (70, 20) should be 45 degrees, got {got[1]:.3f}: use degrees(arctan((L* - 50) / b*))"
    _passed("ITA gives 0, 45, -45 and 63.4 degrees on known (L*, b*) pairs")


def check_tone_audit(result: dict) -> None:
    """An audit dict: six category shares per image set that sum to 1 and match the counts,
    and total-variation distances that follow from those shares."""
    sets = [name for name in ("real", "generated") if name in result]
    assert sets, "the audit has neither 'real' nor 'generated' shares"
    for name in sets:
        part = result[name]
        counts, p = np.asarray(part["counts"]), np.asarray(part["shares"])
        assert len(p) == 6 == len(result["categories"]), f"{name}: expected 6 ITA categories, got {len(p)}"
        assert counts.sum() == part["n"] and np.allclose(p, counts / part["n"]), \
            f"{name}: shares should be counts / n (counts sum to {counts.sum()}, n = {part['n']})"
        assert math.isclose(part["tv_to_uniform"], _tv(p, UNIFORM_SHARES), abs_tol=1e-9), \
            f"{name}: tv_to_uniform should be 0.5 * sum |shares - 1/6|"
    if len(sets) == 2:
        tv = _tv(result["real"]["shares"], result["generated"]["shares"])
        assert math.isclose(result["tv_real_generated"], tv, abs_tol=1e-9), \
            "tv_real_generated should be 0.5 * sum |real shares - generated shares|"
    _passed(f"{' and '.join(sets)} shares over 6 categories, with consistent TV distances")


def check_balanced_draw(data_shares, drawn_shares) -> None:
    """Balanced sampling draws the tone categories more evenly than the data holds them."""
    before, after = _tv(data_shares, UNIFORM_SHARES), _tv(drawn_shares, UNIFORM_SHARES)
    assert math.isclose(float(np.sum(drawn_shares)), 1.0, abs_tol=1e-6), "the drawn shares should sum to 1"
    assert after <= 0.9 * before or before < 0.02, \
        f"balanced draws are no flatter than the data (TV to uniform {after:.3f} vs {before:.3f}): " \
        "weight each image by 1 / (its category's size)"
    _passed(f"TV to uniform falls from {before:.3f} (data) to {after:.3f} (balanced draws)")


def check_sorted_gap(sorted_gap) -> None:
    """The 1-D Wasserstein distance behind --tone-match: it compares two samples as
    distributions, quantile against quantile, whatever order each batch comes in."""
    a = torch.tensor([3.0, -1.0, 7.0, 0.5])
    assert torch.isclose(sorted_gap(a, a[[2, 0, 3, 1]]), torch.tensor(0.0), atol=1e-6), \
        "the same values in another order should be 0 apart: sort both samples before comparing"
    assert torch.isclose(sorted_gap(a, a + 2.5), torch.tensor(2.5), atol=1e-6), \
        "a sample shifted by 2.5 should be 2.5 away: take the mean absolute gap"
    got = float(sorted_gap(torch.tensor([10.0, 0.0]), torch.tensor([4.0, 6.0])))
    assert math.isclose(got, 4.0, abs_tol=1e-5), \
        f"{{0, 10}} vs {{4, 6}} should be 4 (0 meets 4, 10 meets 6), got {got}: pair the sorted values"
    fake = torch.tensor([0.0, 0.0, 0.0], requires_grad=True)
    sorted_gap(fake, torch.tensor([-1.0, 0.5, 2.0])).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0, "the gap should pass gradients to G's side"
    _passed("sorted gap: order-free, shift-exact, quantile against quantile, differentiable")


def check_conditional_generator(G: nn.Module, split_latent) -> None:
    """A generator conditioned on skin tone (--condition tone): it reads its class, and the
    classes it draws from z alone come in equal shares, with the rest of z still N(0, I)."""
    n, z_size = G.n_classes, G.z_size
    z = torch.randn(1, z_size).expand(n, -1)
    G.eval()
    with torch.no_grad():
        by_class = G(z, torch.arange(n))
    assert all((by_class[i] - by_class[j]).abs().max() > 1e-5 for i in range(n) for j in range(i)), \
        "one z with different classes gave the same face: G must read the class (e.g. a one-hot beside z)"
    many = torch.randn(60_000, z_size, generator=torch.Generator().manual_seed(0))
    z_free, labels = split_latent(many, n)
    shares = torch.bincount(labels, minlength=n).float() / len(many)
    assert (shares - 1 / n).abs().max() < 0.01, \
        f"classes drawn from z should come in equal shares, got {[round(float(s), 3) for s in shares]}"
    for k in range(n):
        part = z_free[labels == k, 0]
        assert abs(float(part.mean())) < 0.05 and abs(float(part.std()) - 1) < 0.05, \
            f"class {k}'s remaining z[:, 0] is not N(0, 1): G would see a z it never trained on"
    with torch.no_grad():
        assert torch.allclose(G(many[:8]), G(z_free[:8], labels[:8]), atol=1e-5), \
            "G(z) without labels should draw its classes from z as split_latent does"
    _passed(f"conditional generator: reads its class; {n} classes drawn from z in equal shares")


# ------------------------------------------------------------------ a short run

def check_training_run(run_dir) -> None:
    """A finished run: finite logged losses and a train_samples.pkl of uint8 images per epoch."""
    from facegan import load_train_samples

    run_dir = Path(run_dir)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    assert rows, f"{run_dir}/metrics.jsonl has no rows: did training run?"
    for key in ("d_loss", "g_loss"):
        values = [r[key] for r in rows if key in r]
        assert values and all(math.isfinite(v) for v in values), f"{key} is missing or not finite"
    samples = load_train_samples(run_dir / "train_samples.pkl")
    assert samples, "train_samples.pkl is empty"
    for s in samples:
        assert s.dtype == np.uint8 and s.ndim == 4 and s.shape[-1] == 3, \
            f"each entry should be (N, H, W, 3) uint8; got {s.shape} {s.dtype}"
    _passed(f"{len(rows)} logged steps with finite losses, {len(samples)} epochs of samples")


# ------------------------------------------------------------------ pytest: the checks on the library

def test_dataloader(tmp_path):
    from facegan import get_dataloader, write_face_folder

    folder = write_face_folder(tmp_path / "faces", 12, size=32)
    check_dataloader(get_dataloader(4, 32, str(folder)), 32, batch_size=4)


def test_scale():
    from facegan import scale
    check_scale(scale)


def test_discriminator():
    from facegan import Discriminator
    check_discriminator(Discriminator)


def test_generator():
    from facegan import Generator
    check_generator(Generator)


def test_weights_init():
    from facegan import Generator, weights_init_normal
    torch.manual_seed(0)
    check_weights_init(weights_init_normal)
    check_weights_init(weights_init_normal, Generator(z_size=100, conv_dim=64))


def test_losses():
    from facegan import fake_loss, real_loss
    check_losses(real_loss, fake_loss)


def test_optimizers():
    from facegan import TrainConfig, build_models, make_optimizers

    cfg = TrainConfig(image_size=32, conv_dim=8)
    D, G = build_models(cfg)
    check_optimizers(*make_optimizers(cfg, D, G), D, G)


def test_train_step():
    from facegan import train_step
    check_train_step(train_step)


def test_ita():
    from facegan import ita_degrees
    check_ita(ita_degrees)


def test_tone_audit_and_balanced_draw(tmp_path):
    from facegan import audit, cached_image_array, categorize, image_ita, shares, tone_weights, write_face_folder

    folder = write_face_folder(tmp_path / "faces", 96, size=32)
    faces = np.asarray(cached_image_array(folder, 32, tmp_path / "cache", progress=False))
    result = audit(faces[:48], faces[48:])
    check_tone_audit(result)
    ita = image_ita(faces)
    check_balanced_draw(shares(ita), np.bincount(categorize(ita), weights=tone_weights(faces), minlength=6))


def test_sorted_gap():
    from facegan import sorted_gap
    check_sorted_gap(sorted_gap)


def test_conditional_generator():
    from facegan import Generator, split_latent
    torch.manual_seed(0)
    check_conditional_generator(Generator(z_size=16, conv_dim=8, image_size=32, n_classes=6), split_latent)


def test_short_training_run(tmp_path):
    from facegan import preset, train

    cfg = preset("tiny", out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    train(cfg, progress=False)
    check_training_run(cfg.run_dir)


def test_checks_catch_mistakes():
    """The checks must fail on the classic mistakes, or they check nothing."""
    import pytest

    from facegan import fake_loss, real_loss

    with pytest.raises(AssertionError):
        check_scale(lambda x: x)  # forgot to scale
    with pytest.raises(AssertionError):
        check_losses(lambda x, smooth=False: torch.nn.functional.mse_loss(x, torch.ones_like(x)), fake_loss)
    with pytest.raises(AssertionError):
        check_weights_init(lambda m: None)  # PyTorch's default init, not N(0, 0.02)
    D, G = nn.Linear(2, 1), nn.Linear(1, 2)
    both = torch.optim.Adam(list(D.parameters()) + list(G.parameters()), lr=2e-4, betas=(0.5, 0.999))
    with pytest.raises(AssertionError):
        check_optimizers(both, both, D, G)
    with pytest.raises(AssertionError):
        check_ita(lambda L, b: np.arctan((L - 50) / b))  # radians, not degrees
    with pytest.raises(AssertionError):
        check_ita(lambda L, b: np.degrees(np.arctan(b / (L - 50 + 1e-9))))  # the ratio upside down
    from facegan import audit
    result = audit(np.full((4, 32, 32, 3), 200, np.uint8))
    result["real"]["tv_to_uniform"] = 0.0  # a distance that does not follow from the shares
    with pytest.raises(AssertionError):
        check_tone_audit(result)
    skewed = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    with pytest.raises(AssertionError):
        check_balanced_draw(skewed, skewed[::-1])  # as far from uniform as before, just reversed
    with pytest.raises(AssertionError):
        check_sorted_gap(lambda a, b: (a - b).abs().mean())  # pairs by position, not by quantile
    with pytest.raises(AssertionError):
        check_sorted_gap(lambda a, b: (a.mean() - b.mean()).abs())  # compares means, not distributions
    _check_classic_mistakes()
    from facegan import Generator, split_latent
    deaf = Generator(z_size=16, conv_dim=8, image_size=32, n_classes=6)
    with torch.no_grad():
        deaf.net[0].weight[16:] = 0  # the one-hot input channels carry no weight: the class is ignored
    with pytest.raises(AssertionError):
        check_conditional_generator(deaf, split_latent)
    halves = lambda z, n: (z, (z[:, 0] > 0).long() * (n - 1))  # noqa: E731  only the two extreme classes
    with pytest.raises(AssertionError):
        check_conditional_generator(Generator(z_size=16, conv_dim=8, image_size=32, n_classes=6), halves)
    assert real_loss  # the library's real loss is what test_losses checks


def _edited(base, edit):
    """A subclass of a net class whose instances `edit(net)` changes after construction."""
    class Edited(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            edit(self)
    return Edited


def _good_step(real, D, G, d_opt, g_opt, z, detach=True, zero=True, g_opt_for_g=True, g_label=1.0):
    """The course's training step, with a switch for each classic mistake."""
    fake = G(z)
    if zero:
        d_opt.zero_grad()
    d_loss = _bce(D(real), 1.0) + _bce(D(fake.detach() if detach else fake), 0.0)
    d_loss.backward()
    d_opt.step()
    opt = g_opt if g_opt_for_g else d_opt
    if zero:
        opt.zero_grad()
        g_opt.zero_grad()
    g_loss = _bce(D(G(z)), g_label)
    g_loss.backward()
    opt.step()
    return {"d_loss": d_loss.item(), "g_loss": g_loss.item()}


def _check_classic_mistakes():
    """Each classic mistake fails its check with a hint that names the fix."""
    import pytest

    from facegan import Discriminator, Generator

    class SigmoidD(Discriminator):  # probabilities, not logits
        def forward(self, x):
            return torch.sigmoid(super().forward(x))

    check_train_step(_good_step)  # the switches are off: the plain step passes
    mistakes = [  # (the check on the mistake, a phrase its hint must hold)
        (lambda: check_scale(lambda x, feature_range=(-1, 1): x), r"still in \[0, 1\]"),
        (lambda: check_scale(lambda x, feature_range=(-1, 1): x * 2 - 1), "feature_range"),
        (lambda: check_discriminator(SigmoidD), "applies a sigmoid"),
        (lambda: check_discriminator(_edited(Discriminator, _pool_instead_of_stride)), "stride-2"),
        (lambda: check_discriminator(_edited(Discriminator, lambda D: D.features.insert(1, nn.BatchNorm2d(
            D.features[0].out_channels)))), "first block has BatchNorm"),
        (lambda: check_discriminator(_edited(Discriminator, _batchnorm_after_activation)), "right after each"),
        (lambda: check_generator(_edited(Generator, lambda G: G.net.insert(len(G.net) - 1, nn.BatchNorm2d(3)))),
         "after its last layer"),
        (lambda: check_generator(_edited(Generator, _no_tanh)), "tanh"),
        (lambda: check_losses(lambda x, smooth=False: F.binary_cross_entropy_with_logits(
            torch.sigmoid(x), torch.full_like(x, 0.9 if smooth else 1.0)), lambda x: _bce(x, 0.0)),
         "sigmoid before BCE with logits"),
        (lambda: check_losses(lambda x, smooth=False: F.binary_cross_entropy(x.clamp(0, 1), torch.ones_like(x)),
                              lambda x: _bce(x, 0.0)), "BCEWithLogitsLoss"),
        (lambda: check_losses(lambda x, smooth=False: _bce(x, 0.0), lambda x: _bce(x, 1.0)), "swapped"),
        (lambda: check_losses(lambda x, smooth=False: _bce(x, 1.0), lambda x: _bce(x, 0.0)), "0.9"),
        (lambda: check_optimizers(*_adams(betas=(0.9, 0.999))), r"betas=\(0.5, 0.999\)"),
        (lambda: check_optimizers(*_adams(lr=1e-3)), "0.0002"),
        (lambda: check_train_step(lambda *a: _good_step(*a, detach=False)), "detach"),
        (lambda: check_train_step(lambda *a: _good_step(*a, zero=False)), "zero_grad"),
        (lambda: check_train_step(lambda *a: _good_step(*a, g_opt_for_g=False)), "must step g_optimizer"),
        (lambda: check_train_step(lambda *a: _good_step(*a, g_label=0.0)), "labels its fakes fake"),
    ]
    for check, hint in mistakes:
        with pytest.raises(AssertionError, match=hint):
            check()


def _pool_instead_of_stride(D):
    """The first block's stride-2 convolution as a stride-1 one followed by max pooling."""
    out = D.features[0].out_channels
    D.features[0] = nn.Conv2d(3, out, 3, 1, 1)
    D.features.insert(2, nn.MaxPool2d(2))


def _no_tanh(G):
    del G.net[-1]


def _batchnorm_after_activation(D):
    D.features[3], D.features[4] = D.features[4], D.features[3]  # conv -> LeakyReLU -> BatchNorm


def _adams(**options):
    D, G = nn.Linear(2, 1), nn.Linear(1, 2)
    options = {"lr": 2e-4, "betas": (0.5, 0.999), **options}
    return torch.optim.Adam(D.parameters(), **options), torch.optim.Adam(G.parameters(), **options), D, G
