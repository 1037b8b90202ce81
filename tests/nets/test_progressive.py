"""Progressive growing (facegan/nets/progressive.py): the schedule, the nets at every phase, the
compute a low-resolution phase saves, exact resume mid-fade, and export at full size."""
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from facegan.checkpoint import load_checkpoint
from facegan.commands.cli import build_parser, main
from facegan.config import ConfigError, TrainConfig
from facegan.generate.export import generator_from_checkpoint, load_exported
from facegan.generate.sample import faces_from_seeds, load_train_samples
from facegan.nets.models import build_models
from facegan.nets.progressive import Growth, ProgressiveDiscriminator, ProgressiveGenerator
from facegan.training.distributed import Dist
from facegan.training.loop import RunInterrupted, train
from facegan.training.step import GAN, make_step


def blocky(x: torch.Tensor | np.ndarray, cell: int) -> bool:
    """Whether images (..., H, W) are constant over every cell x cell square."""
    x = torch.as_tensor(x)
    corners = x[..., ::cell, ::cell]
    return torch.equal(corners.repeat_interleave(cell, -2).repeat_interleave(cell, -1), x)


@pytest.fixture
def nets():
    torch.manual_seed(0)
    D, G = build_models(TrainConfig(image_size=32, conv_dim=8, z_size=16, grow_from=8))
    return D, G


def at(growth, *nets):
    for net in nets:
        net.set_growth(*growth)


# ---------------------------------------------------------------- the schedule

@pytest.mark.parametrize("progress, expected", [
    (0.0, (8, 1.0)), (0.1, (8, 1.0)),                        # phase 1: 8 px, then fade 16 in
    (0.125, (16, 0.0)), (0.1875, (16, 0.5)), (0.25, (16, 1.0)), (0.3, (16, 1.0)),
    (0.375, (32, 0.0)), (0.4375, (32, 0.5)), (0.49, (32, 0.92)),  # phase 2: 16 px, then fade 32 in
    (0.5, (32, 1.0)), (0.75, (32, 1.0)), (1.0, (32, 1.0)),   # the rest at full size
])
def test_growth_is_a_function_of_progress(progress, expected):
    resolution, alpha = Growth(8, 32, 0.5).at(progress)
    assert (resolution, alpha) == (expected[0], pytest.approx(expected[1]))


@pytest.mark.parametrize("start, final, share", [(8, 32, 0.5), (8, 128, 0.7), (16, 64, 1.0), (32, 64, 0.3)])
def test_growth_starts_small_fades_each_size_in_and_ends_at_full_size(start, final, share):
    growth = Growth(start, final, share)
    states = [growth.at(i / 1000) for i in range(1001)]
    assert states[0] == (start, 1.0) and states[-1] == (final, 1.0)
    sizes = [r for r, _ in states]
    assert sizes == sorted(sizes)  # never shrinks
    assert sorted(set(sizes)) == [start * 2**i for i in range(growth.doublings + 1)]
    for size in sorted(set(sizes))[1:]:  # each new size: alpha ramps from 0 to 1, then stays 1
        alphas = [a for r, a in states if r == size]
        fade = alphas[:alphas.index(1.0)]
        assert fade[0] < 0.05 and fade == sorted(fade) and fade[-1] > 0.9
        assert all(a == 1.0 for a in alphas[len(fade):])
    assert all(r == final and a == 1.0 for r, a in states[int(share * 1000) + 1:])  # growing takes `share`


# ---------------------------------------------------------------- the nets

def test_the_nets_keep_their_outside_shape_and_g_invents_no_detail_below_full_size(nets):
    D, G = nets
    z, x = torch.randn(4, 16), torch.rand(4, 3, 32, 32) * 2 - 1
    cells = {(8, 1.0): 4, (16, 0.5): 2, (16, 1.0): 2, (32, 0.5): 1, (32, 1.0): 1}
    for growth, cell in cells.items():
        at(growth, D, G)
        image = G(z)
        assert image.shape == (4, 3, 32, 32) and image.abs().max() <= 1
        assert D(x).shape == (4, 1)
        assert blocky(image, cell)  # the current size's pixels, upsampled with nearest
        assert not blocky(image, 2 * cell)  # and no coarser than that


def test_a_fade_starts_where_the_smaller_size_left_off(nets):
    D, G = nets
    z, x = torch.randn(4, 16), torch.rand(4, 3, 32, 32) * 2 - 1
    for small, large in ((8, 16), (16, 32)):
        at((small, 1.0), D, G)
        before = G(z), D(x)
        at((large, 0.0), D, G)
        assert torch.equal(G(z), before[0])
        assert torch.allclose(D(x), before[1], atol=1e-6)  # pooling 2x2 twice == 4x4 once, to rounding
        at((large, 0.999), D, G)
        assert not torch.allclose(G(z), before[0], atol=1e-3)  # the new block takes over


def test_d_judges_the_current_size_only(nets):
    D, _ = nets
    at((8, 1.0), D)
    x = torch.rand(2, 3, 32, 32)
    detail = torch.randn(2, 3, 32, 32) * 0.1
    detail -= torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(detail, 4), scale_factor=4)
    D.eval()
    assert torch.allclose(D(x), D(x + detail), atol=1e-6)  # detail finer than 8 px is invisible at 8 px
    at((32, 1.0), D)
    assert not torch.allclose(D(x), D(x + detail), atol=1e-4)


def test_a_low_resolution_phase_runs_fewer_flops(nets):
    D, G = nets
    z, x = torch.randn(8, 16), torch.rand(8, 3, 32, 32)

    def flops(growth):
        at(growth, D, G)
        with FlopCounterMode(display=False) as counter:
            D(G(z))
            D(x)
        return counter.get_total_flops()
    small, fading, full = flops((8, 1.0)), flops((16, 0.5)), flops((32, 1.0))
    assert small < 0.2 * full and small < fading < full


def test_the_first_phase_leaves_the_larger_blocks_untouched(tiny_cfg):
    cfg = tiny_cfg(grow_from=8, ema_decay=0.9)
    torch.manual_seed(0)
    gan = GAN.build(cfg, torch.device("cpu"))
    assert gan.G.growth == gan.D.growth == gan.sampler.growth == (32, 1.0)  # built: full size
    step = make_step(cfg, gan, Dist())
    idle = [*gan.G.blocks.parameters(), *gan.G.to_rgb["16"].parameters(), *gan.G.to_rgb["32"].parameters(),
            *gan.D.blocks[0].parameters(), *gan.D.from_rgb["16"].parameters(), *gan.D.from_rgb["32"].parameters()]
    used = [*gan.G.input.parameters(), *gan.G.to_rgb["8"].parameters(), *gan.D.from_rgb["8"].parameters(),
            *gan.D.classifier.parameters()]
    before = [p.detach().clone() for p in idle]
    stats = step(torch.rand(16, 3, 32, 32) * 2 - 1, None, torch.randn(16, 16), 0, 0.0)
    assert all(torch.isfinite(v) for v in stats.values())
    assert gan.G.growth == gan.D.growth == gan.sampler.growth == (8, 1.0)  # G_ema too
    assert all(p.grad is None for p in idle)
    assert all(torch.equal(a, p) for a, p in zip(before, idle))
    assert all(p.grad is not None for p in used)
    step(torch.rand(16, 3, 32, 32) * 2 - 1, None, torch.randn(16, 16), 1, 0.4375)
    assert gan.G.growth == gan.D.growth == gan.sampler.growth == (32, 0.5)


def test_the_state_is_not_in_the_weights(nets):
    D, G = nets
    at((16, 0.5), D, G)
    for net in (D, G):
        assert "alpha" not in net.state_dict()
        fresh = type(net)(*([16, 8, 32, 8] if net is G else [8, 32, 8]))
        fresh.load_state_dict(net.state_dict())
        assert fresh.growth == (32, 1.0)


def test_the_nets_refuse_what_they_cannot_grow():
    with pytest.raises(ValueError, match="grow_from=32"):
        ProgressiveGenerator(16, 8, 32, 32)
    D = ProgressiveDiscriminator(8, 64, 16)
    assert D.resolutions == [16, 32, 64]
    with pytest.raises(ValueError, match="resolution=8"):
        D.set_growth(8)
    with pytest.raises(ValueError, match="alpha"):
        D.set_growth(16, 0.5)  # nothing to fade in from below the first size


# ---------------------------------------------------------------- the config

def test_config_declares_growth_and_refuses_what_it_cannot_grow():
    assert TrainConfig().grow_from == 0
    cfg = TrainConfig(grow_from=16, grow_share=0.3, d_norm="spectral", d_dropout=0.3, loss="hinge")
    assert (cfg.grow_from, cfg.grow_share) == (16, 0.3)
    for bad, message in [({"grow_from": 12}, "^grow_from=12: choose one of 0, 8, 16, 32"),
                         ({"grow_from": 8, "grow_share": 0.0}, r"^grow_share=0.0: must lie in \(0, 1\]"),
                         ({"grow_from": 32, "image_size": 32}, "^grow_from=32: .*--grow-from or a larger --image-size"),
                         ({"grow_from": 8, "arch": "resnet", "d_norm": "none"}, "^grow_from=8: .*--arch dcgan"),
                         ({"grow_from": 8, "condition": "tone"}, "^grow_from=8: .*drop --condition or --grow-from"),
                         ({"grow_from": 8, "extra_layers": 1}, "^grow_from=8: .*drop --extra-layers or --grow-from")]:
        with pytest.raises(ConfigError, match=message) as refused:
            TrainConfig(**bad)
        assert "\n" not in str(refused.value)
    args = build_parser().parse_args(["train", "--grow-from", "16", "--grow-share", "0.25"])
    assert (args.grow_from, args.grow_share) == (16, 0.25)


def test_ddp_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="^grow_from=8: .*DDP"):
        Growth.for_run(TrainConfig(grow_from=8), Dist(rank=0, world_size=2))
    assert Growth.for_run(TrainConfig(), Dist(rank=0, world_size=2)) is None


# ---------------------------------------------------------------- runs

def states(run_dir):
    ckpt = load_checkpoint(run_dir / "checkpoints/latest.pt")
    return ckpt, {key: ckpt[key] for key in ("G", "D", "G_ema")}


def test_a_run_resumed_mid_fade_equals_an_uninterrupted_one(tiny_cfg, tmp_path, monkeypatch):
    import facegan.training.step as step_module

    # 2 epochs of 4 steps, growing 8 -> 16 -> 32 over the whole run: step 3 is halfway into 16 px.
    grow = dict(epochs=2, grow_from=8, grow_share=1.0, ema_decay=0.9)
    assert Growth.for_run(tiny_cfg(**grow)).at(3 / 8) == (16, 0.5)
    straight = train(tiny_cfg(out=str(tmp_path / "straight"), **grow), progress=False)

    real_step, calls = step_module.train_step, {"n": 0}

    def step_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)
    cut = tiny_cfg(out=str(tmp_path / "cut"), **grow)
    monkeypatch.setattr(step_module, "train_step", step_then_signal)
    with pytest.raises(RunInterrupted):
        train(cut, progress=False)
    monkeypatch.setattr(step_module, "train_step", real_step)
    assert load_checkpoint(cut.run_dir / "checkpoints/latest.pt")["step"] == 3  # the next step fades
    resumed = train(cut, resume=True, progress=False)

    assert resumed["weights_sha1"] == straight["weights_sha1"]
    (a, nets_a), (b, nets_b) = states(tmp_path / "straight"), states(tmp_path / "cut")
    for key in nets_a:  # BatchNorm statistics and G_ema too
        assert all(torch.equal(nets_a[key][k], nets_b[key][k]) for k in nets_a[key]), key
    assert a["step"] == b["step"] == 8
    # The samples show the run growing: epoch 1 ended fading 16 px in, epoch 2 fading 32 px in.
    samples = load_train_samples(tmp_path / "straight/train_samples.pkl")
    first, last = (torch.as_tensor(s).permute(0, 3, 1, 2) for s in samples)
    assert blocky(first, 2) and not blocky(last, 2)


def test_a_progressive_checkpoint_exports_and_samples_at_full_size(tiny_cfg, tmp_path):
    cfg = tiny_cfg(epochs=2, grow_from=8, ema_decay=0.9)  # growing ends halfway: step 3 fades 32 px in
    train(cfg, progress=False)
    assert Growth.for_run(cfg).at(3 / 8) == (32, 0.0)
    z = torch.randn(3, cfg.z_size)
    for name in ("epoch_001.pt", "latest.pt"):
        G, _ = generator_from_checkpoint(cfg.run_dir / "checkpoints" / name)
        assert G.growth == (32, 1.0)  # outside training: full size, whatever the last step was
        assert G(z).shape == (3, 3, 32, 32) and not blocky(G(z), 2)
    out = tmp_path / "g.safetensors"
    assert main(["export", "--checkpoint", str(cfg.run_dir / "checkpoints/latest.pt"), "--out", str(out)]) == 0
    exported = load_exported(out)
    assert isinstance(exported, ProgressiveGenerator) and torch.equal(exported(z), G(z))
    program = torch.export.load(out.with_suffix(".pt2")).module()
    assert torch.allclose(program(z), G(z), atol=1e-6)
    faces = faces_from_seeds(exported, [1, 2])
    assert faces.shape == (2, 32, 32, 3) and not blocky(np.moveaxis(faces, -1, 1), 2)
    assert main(["sample", "--checkpoint", str(out), "--n", "1", "--out", str(tmp_path / "one"),
                 "--upscale", "1"]) == 0
    (face,) = (tmp_path / "one").iterdir()
    assert Image.open(face).size == (32, 32)


# ---------------------------------------------------------------- extending a growing run

def resolution(samples: np.ndarray, size: int = 32) -> int:
    """The resolution a batch of (N, H, W, 3) samples was drawn at: the coarsest grid it is blocky on."""
    x = torch.as_tensor(samples).permute(0, 3, 1, 2)
    return min(size // cell for cell in (1, 2, 4) if blocky(x, cell))


def test_a_growing_run_resumed_to_more_epochs_keeps_growing_on_its_own_schedule(tmp_path, capsys):
    # 2 epochs of 4 steps growing over the whole run: epoch 1 ends at 16 px, epoch 2 fading 32 px in.
    common = ["--preset", "tiny", "--grow-from", "8", "--grow-share", "1", "--ema-decay", "0.9",
              "--cache-dir", str(tmp_path / "c"), "--quiet"]
    run, planned = tmp_path / "run", tmp_path / "planned"
    assert main(["train", *common, "--epochs", "2", "--out", str(run)]) == 0
    assert main(["train", "--resume", "--epochs", "6", "--out", str(run), "--quiet"]) == 0
    saved = load_checkpoint(run / "checkpoints/latest.pt")["config"]
    assert (saved["epochs"], saved["grow_epochs"]) == (6, 2)  # pinned: the growth spans the first 2 epochs
    sizes = [resolution(s) for s in load_train_samples(run / "train_samples.pkl")]
    assert sizes == [16] + [32] * 5  # never back to 16 px: the extra epochs train at full size
    # Extending equals a run planned that way from the start, bit for bit.
    assert main(["train", *common, "--epochs", "6", "--grow-epochs", "2", "--out", str(planned)]) == 0
    _, nets_run = states(run)
    _, nets_planned = states(planned)
    for key in nets_run:
        assert all(torch.equal(nets_run[key][k], nets_planned[key][k]) for k in nets_run[key]), key
    # A second extension keeps the same span; changing it mid-run is one line.
    assert main(["train", "--resume", "--epochs", "7", "--out", str(run), "--quiet"]) == 0
    assert load_checkpoint(run / "checkpoints/latest.pt")["config"]["grow_epochs"] == 2
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "8", "--grow-epochs", "4", "--out", str(run), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "grows over 2 epochs" in err and "Traceback" not in err


def test_an_unextended_growing_run_is_unchanged_by_grow_epochs(tiny_cfg, tmp_path):
    grow = dict(epochs=2, grow_from=8, grow_share=1.0)
    assert Growth.for_run(tiny_cfg(**grow)) == Growth.for_run(tiny_cfg(grow_epochs=2, **grow)) == Growth(8, 32, 1.0)
    a = train(tiny_cfg(out=str(tmp_path / "a"), **grow), progress=False)
    b = train(tiny_cfg(out=str(tmp_path / "b"), grow_epochs=2, **grow), progress=False)
    assert a["weights_sha1"] == b["weights_sha1"]
    with pytest.raises(ConfigError, match="^grow_from=8: grow_epochs=3 is more than epochs=2"):
        tiny_cfg(grow_epochs=3, **grow)
    with pytest.raises(ConfigError, match="^grow_epochs=2 .*add --grow-from"):
        tiny_cfg(grow_epochs=2)
