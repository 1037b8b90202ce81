"""bCR: D's change of verdict between two augmentations of the same images, penalised."""
import pytest
import torch

from facegan.config import ConfigError, TrainConfig
from facegan.training.consistency import Consistency
from facegan.training.distributed import Dist
from facegan.training.step import GAN, make_step


def mean_pixel(x):
    return x.flatten(1).mean(1, keepdim=True)


def test_the_penalty_is_the_papers_on_a_known_d_and_augmentation():
    real, fake = torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2)
    # the step's own view: D saw the images unshifted; the second draw adds 1 to reals, 3 to fakes
    second = iter([lambda x: x + 1, lambda x: x + 3])
    penalty = Consistency(10.0)(mean_pixel, real, fake, mean_pixel(real), mean_pixel(fake),
                                lambda x: next(second)(x))
    assert penalty.item() == pytest.approx(10.0 * (1 ** 2 + 3 ** 2))
    same = Consistency(10.0)(mean_pixel, real, fake, mean_pixel(real), mean_pixel(fake), lambda x: x)
    assert same.item() == 0.0
    with pytest.raises(ValueError, match="must be > 0"):
        Consistency(0.0)


def test_a_step_with_bcr_passes_d_twice_more(tiny_cfg):
    cfg = tiny_cfg(bcr=10.0, augment="translation", loss="hinge")
    torch.manual_seed(0)
    gan = GAN.build(cfg, torch.device("cpu"))
    calls = []
    gan.D.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    step = make_step(cfg, gan, Dist.from_env())
    real, z = torch.rand(4, 3, 32, 32) * 2 - 1, torch.randn(4, cfg.z_size)
    step(real, None, z, step=0, progress=0.0)
    with_bcr = len(calls)
    calls.clear()
    plain = GAN.build(tiny_cfg(augment="translation", loss="hinge"), torch.device("cpu"))
    plain.D.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    make_step(tiny_cfg(augment="translation", loss="hinge"), plain, Dist.from_env())(real, None, z, step=0,
                                                                                       progress=0.0)
    assert with_bcr == len(calls) + 2  # a second view of the reals and of the fakes


def test_bcr_needs_a_policy_to_draw_twice_from():
    with pytest.raises(ConfigError, match="add --augment translation"):
        TrainConfig(bcr=10.0)
