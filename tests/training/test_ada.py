"""ADA: the augmentations' probability follows D's overfitting, and nothing else changes."""
import json

import pytest
import torch

from facegan.config import ConfigError, TrainConfig
from facegan.training.ada import AdaptiveStrength
from facegan.training.augment import Augmenter, diff_augment
from facegan.training.loop import train


def test_p_moves_by_the_images_seen_toward_less_overfitting_every_interval():
    ada = AdaptiveStrength(0.6, interval=4, span_images=1000)
    for _ in range(3):
        ada.observe(torch.tensor(0.9), images=50)
    assert ada.p.item() == 0.0  # no move before the interval is full
    ada.observe(torch.tensor(0.9), images=50)
    assert ada.p.item() == pytest.approx(0.2)  # r_t 0.9 > 0.6: up by 200 / 1000
    assert ada.r_t.item() == pytest.approx(0.9)
    for _ in range(4):
        ada.observe(torch.tensor(0.1), images=50)
    assert ada.p.item() == pytest.approx(0.0, abs=1e-7)  # below the target: back down
    for _ in range(8):
        ada.observe(torch.tensor(0.0), images=50)
    assert ada.p.item() == 0.0  # clamped at 0
    for _ in range(40):
        ada.observe(torch.tensor(1.0), images=50)
    assert ada.p.item() == 1.0  # and at 1


def test_the_strength_round_trips_through_a_state_dict_mid_interval():
    ada = AdaptiveStrength(0.6, interval=4, span_images=1000)
    for _ in range(6):
        ada.observe(torch.tensor(0.8), images=50)
    again = AdaptiveStrength(0.6, interval=4, span_images=1000)
    again.load_state_dict(ada.state_dict())
    for a in (ada, again):
        a.observe(torch.tensor(0.8), images=50)
        a.observe(torch.tensor(0.8), images=50)
    assert again.p.item() == ada.p.item() == pytest.approx(0.4)


def test_a_strength_outside_0_1_in_a_checkpoint_is_refused():
    state = AdaptiveStrength(0.6).state_dict()
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        AdaptiveStrength(0.6).load_state_dict({**state, "p": torch.tensor(1.5)})


@pytest.mark.parametrize("target", [0.0, 1.0, -0.5])
def test_a_target_outside_0_1_is_refused(target):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        AdaptiveStrength(target)


def test_p_0_leaves_every_image_alone_and_p_1_is_the_fixed_policy():
    x = torch.rand(16, 3, 16, 16) * 2 - 1
    untouched = Augmenter("translation,cutout", seed=3, ada_target=0.6)
    assert torch.equal(untouched(x, progress=0.0), x)
    always = Augmenter("translation", seed=3, ada_target=0.6)
    always.strength.p = torch.tensor(1.0)
    fixed = torch.Generator().manual_seed(3)
    assert torch.equal(always(x, progress=0.0), diff_augment(x, "translation", fixed))


def test_with_p_one_half_about_half_the_images_are_augmented():
    x = torch.rand(400, 3, 8, 8) + 0.5  # no zero pixels: every cutout shows
    out = diff_augment(x, "cutout", torch.Generator().manual_seed(0), p=0.5)
    changed = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.4 < changed < 0.6


def test_an_ada_run_logs_its_strength_and_refuses_configs_it_cannot_read(tiny_cfg):
    cfg = tiny_cfg(augment="translation", ada_target=0.6, loss="hinge", epochs=1)
    train(cfg, progress=False)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    stepped = [r for r in rows if "d_loss" in r]
    assert all(0.0 <= r["ada_p"] <= 1.0 and -1.0 <= r["d_real_sign"] <= 1.0 for r in stepped)
    with pytest.raises(ConfigError, match="add --augment translation"):
        TrainConfig(ada_target=0.6)
    with pytest.raises(ConfigError, match="--loss wgan leaves without meaning"):
        TrainConfig(ada_target=0.6, augment="translation", loss="wgan", d_norm="spectral")
