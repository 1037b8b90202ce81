import copy
import json
import math
import pickle

import numpy as np
import pytest
import torch

from facegan.checkpoint import CheckpointError, load_checkpoint
from facegan.config import PRESETS, ConfigError, TrainConfig, preset
from facegan.generate.sample import load_train_samples
from facegan.nets.models import build_models
from facegan.training import losses
from facegan.training.loop import TrainingError, check_resumable, make_optimizers, train, train_step
from facegan.training.resume import CHECKPOINT_KEYS
from facegan.utils.accel import cpu_has_native_bf16


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def changed(before, model):
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.fixture
def nets():
    torch.manual_seed(0)
    cfg = TrainConfig(image_size=32, conv_dim=8, z_size=16)
    D, G = build_models(cfg)
    d_opt, g_opt = make_optimizers(cfg, D, G)
    return D, G, d_opt, g_opt, torch.rand(8, 3, 32, 32) * 2 - 1, torch.randn(8, 16)


@pytest.mark.parametrize("train_d,train_g", [(True, True), (True, False), (False, True)])
def test_step_updates_only_what_it_should(nets, train_d, train_g):
    D, G, d_opt, g_opt, real, z = nets
    d_before, g_before = params(D), params(G)
    stats = train_step(real, D, G, d_opt, g_opt, z, train_d=train_d, train_g=train_g)
    assert changed(d_before, D) == train_d
    assert changed(g_before, G) == train_g
    assert ("g_loss" in stats) == train_g
    assert all(torch.isfinite(v) for v in stats.values())


def test_g_step_leaves_no_gradients_on_d(nets):
    D, G, d_opt, g_opt, real, z = nets
    train_step(real, D, G, d_opt, g_opt, z, train_d=False, train_g=True)
    assert all(p.grad is None for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())  # D is unfrozen again for its own step


def test_a_g_penalty_steers_g_alone_and_is_logged_apart(nets):
    D, G, d_opt, g_opt, real, z = nets
    start = copy.deepcopy([m.state_dict() for m in (D, G, d_opt, g_opt)])
    plain = train_step(real, D, G, d_opt, g_opt, z)
    after_plain = params(D), params(G)
    for m, state in zip((D, G, d_opt, g_opt), start):
        m.load_state_dict(state)
    with torch.no_grad():
        expected = -G(z).mean()  # train-mode BatchNorm: the same batch statistics the step sees
    seen = []
    def brighten(fake, real_batch):  # a penalty that only G's images can lower
        seen.append((fake.requires_grad, real_batch is real))
        return -fake.mean()
    stats = train_step(real, D, G, d_opt, g_opt, z, g_penalty=brighten)
    assert seen == [(True, True)]  # G's graph and the unaugmented real batch
    assert all(torch.equal(a, b) for a, b in zip(after_plain[0], D.parameters()))  # D: no change
    assert changed(after_plain[1], G)  # G: the penalty's gradient moved it
    assert torch.equal(stats["g_loss"], plain["g_loss"])  # g_loss stays the adversarial part
    assert torch.allclose(stats["g_penalty"], expected)
    assert "g_penalty" not in plain


def test_a_conditional_step_shows_both_nets_the_real_batch_labels():
    from facegan.training.step import make_d_penalty
    torch.manual_seed(0)
    cfg = TrainConfig(image_size=32, conv_dim=8, z_size=16, condition="tone", r1_gamma=1.0, r1_every=1)
    D, G = build_models(cfg)
    d_opt, g_opt = make_optimizers(cfg, D, G)
    seen = []
    for net in (D, G):
        # defaults bind this net's forward and name now, not the loop variable's last value
        def spy(x, labels=None, forward=net.forward, name=type(net).__name__[0]):  # noqa: B008
            seen.append((name, labels))
            return forward(x, labels)
        net.forward = spy
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 5, 0])
    embed_before = D.embed.weight.detach().clone()
    stats = train_step(torch.rand(8, 3, 32, 32) * 2 - 1, D, G, d_opt, g_opt, torch.randn(8, 16),
                       loss="hinge", d_penalty=make_d_penalty(cfg), labels=labels, step=0)
    # G's fakes, D on real and fake, R1 on real, D on G's fakes for G's step: every call labelled.
    assert [name for name, _ in seen] == ["G", "D", "D", "D", "D"]
    assert all(torch.equal(y, labels) for _, y in seen)
    assert not torch.equal(D.embed.weight, embed_before)  # D learns what each class looks like
    assert all(torch.isfinite(v) for v in stats.values())


def test_d_step_lowers_d_loss_on_the_same_batch(nets):
    D, G, d_opt, g_opt, real, z = nets
    first = train_step(real, D, G, d_opt, g_opt, z, train_g=False)["d_loss"]
    for _ in range(5):
        last = train_step(real, D, G, d_opt, g_opt, z, train_g=False)["d_loss"]
    assert last < first


def test_run_folder_describes_itself(tiny_cfg):
    cfg = tiny_cfg(epochs=2, keep_checkpoints=1)
    summary = train(cfg, progress=False)
    run = cfg.run_dir
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())) == cfg
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == summary["steps"] == 2 * (64 // 16)
    assert [r["images"] for r in rows] == [16 * (i + 1) for i in range(len(rows))]
    samples = load_train_samples(run / "train_samples.pkl")
    assert len(samples) == 2
    assert samples[0].dtype == np.uint8 and samples[0].shape == (4, 32, 32, 3)
    assert not np.array_equal(samples[0], samples[1])  # G moved between epochs
    for name in ("samples/reals.png", "samples/epoch_001.png", "samples/epoch_002.png", "losses.png"):
        assert (run / name).stat().st_size > 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_002.pt", "latest.pt"]
    ckpt = load_checkpoint(run / "checkpoints/latest.pt")
    assert ckpt["epoch"] == 2 and ckpt["images_seen"] == summary["images_seen"]
    assert set(ckpt) >= {"G", "D", "G_ema", "opt_d", "opt_g", "rng", "config", "fixed_z"}
    assert sorted(ckpt) == sorted(CHECKPOINT_KEYS)  # every key is documented in resume.py, and only those


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_as_named(name, tmp_path):
    """A preset is a promise on --help: it must pass validation and train with its own nets."""
    common = dict(epochs=1, out=str(tmp_path), cache_dir=str(tmp_path / "cache"), n_fixed=2)
    cfg = preset(name, **common, synthetic_n=preset(name).batch_size)  # one step
    summary = train(cfg, progress=False, log=lambda *a: None)
    assert summary["steps"] == 1
    ckpt = load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    assert TrainConfig.from_dict(ckpt["config"]) == cfg
    g_first = next(iter(ckpt["G"].values()))
    assert g_first.shape[0] == cfg.z_size  # the first layer of G really has the preset's widths
    assert g_first.shape[1] == cfg.conv_dim * (8 if cfg.image_size == 64 else 4)


def test_loss_plot_and_report_are_redrawn_sparingly_but_end_current(tiny_cfg, monkeypatch):
    # On a GPU with a small set an epoch is as short as drawing the views; they are redrawn
    # at most every VIEWS_EVERY_S, and once more at the end so the folder ends up current.
    from facegan.eval import report
    from facegan.training import views
    drawn = []
    real_write = report.write_report
    monkeypatch.setattr(report, "write_report", lambda run_dir: drawn.append(run_dir) or real_write(run_dir))
    monkeypatch.setattr(views, "VIEWS_EVERY_S", 3600.0)
    cfg = tiny_cfg(epochs=3, log_every=1)
    summary = train(cfg, progress=False)
    assert len(drawn) == 2  # after the first epoch, and at the end (not after epochs 2 and 3)
    html = (cfg.run_dir / "report.html").read_text()
    assert f"{summary['steps']} steps" in html  # the last draw saw the whole run


@pytest.mark.parametrize("share, draws", [(1e9, 3), (1e-9, 2)])  # no cap; a cap no write fits
def test_the_views_are_spaced_out_once_writing_them_takes_more_than_their_share(tiny_cfg, monkeypatch, share, draws):
    # They hold every epoch so far, so they cost more as a run grows; VIEWS_SHARE caps that cost.
    from facegan.training import views
    written = []
    real_save = views.save_train_samples
    monkeypatch.setattr(views, "save_train_samples", lambda path, s: written.append(len(s)) or real_save(path, s))
    monkeypatch.setattr(views, "VIEWS_EVERY_S", 0.0)
    monkeypatch.setattr(views, "VIEWS_SHARE", share)
    cfg = tiny_cfg(epochs=3, log_every=1)
    train(cfg, progress=False)
    assert written == ([1, 2, 3] if draws == 3 else [1, 3])  # never: the first epoch, and the end
    assert len(load_train_samples(cfg.run_dir / "train_samples.pkl")) == 3


def test_a_run_killed_between_two_writes_of_train_samples_pkl_resumes_with_every_epoch(tiny_cfg, tmp_path,
                                                                                      monkeypatch):
    # The checkpoint carries the samples of the epochs since the pickle was last written.
    from facegan.training import views
    monkeypatch.setattr(views, "VIEWS_EVERY_S", 3600.0)
    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=3)
    train(straight, progress=False)
    killed = tiny_cfg(out=str(tmp_path / "killed"), epochs=3)
    pkl = killed.run_dir / "train_samples.pkl"
    first_write = []

    def stop_after_two(epochs_done):
        if epochs_done == 1:
            first_write.append(pkl.read_bytes())
        return epochs_done == 2
    train(killed, progress=False, should_stop=stop_after_two)
    pkl.write_bytes(first_write[0])  # as a kill before the end-of-run write would leave it: epoch 1 only
    assert len(load_train_samples(pkl)) == 1
    record = load_checkpoint(killed.run_dir / "checkpoints/latest.pt")["samples"]
    assert record["saved"] == 1 and len(record["unsaved"]) == 1
    train(killed, resume=True, progress=False)
    (a, sa), (b, sb) = final_state(straight), final_state(killed)
    assert_same_state(a, b)
    assert len(sb) == 3 and all(np.array_equal(x, y) for x, y in zip(sa, sb))


def final_state(cfg):
    ckpt = load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    return ckpt, load_train_samples(cfg.run_dir / "train_samples.pkl")


def assert_same_state(a, b):
    for key in ("G", "D", "G_ema"):
        for k in a[key] or {}:
            assert torch.equal(a[key][k], b[key][k]), f"{key}.{k} differs"
    for key in ("opt_d", "opt_g"):
        for pid, st in a[key]["state"].items():
            for name, t in st.items():
                assert torch.equal(t, b[key]["state"][pid][name]), f"{key} {pid} {name} differs"


def test_cpu_run_is_deterministic_for_a_seed(tiny_cfg, tmp_path):
    a = tiny_cfg(out=str(tmp_path / "a"))
    b = tiny_cfg(out=str(tmp_path / "b"))
    c = tiny_cfg(out=str(tmp_path / "c"), seed=1)
    for cfg in (a, b, c):
        train(cfg, progress=False)
    assert_same_state(final_state(a)[0], final_state(b)[0])
    with pytest.raises(AssertionError):
        assert_same_state(final_state(a)[0], final_state(c)[0])


R3GAN_PIECES = {"arch": "resnet", "d_norm": "none", "mbstd": True, "loss": "rpgan", "r1_gamma": 1.0,
                "r2_gamma": 1.0, "r1_every": 2, "ema_decay": 0.9, "augment": "translation"}
G_HEAVY = {"g_steps": 3, "ema_decay": 0.9, "r1_gamma": 1.0, "r1_every": 2, "loss": "rpgan", "d_norm": "none"}
QUALITY_PIECES = {"ema_decay": 0.9, "augment": "color,translation,cutout", "instance_noise": 0.1,
                  "r1_gamma": 1.0, "r1_every": 2, "lr_decay": "cosine", "d_norm": "spectral", "loss": "hinge",
                  "tone_match": 0.5, "condition": "tone", "g_conv_dim": 12, "lecam": 0.3,
                  "ada_target": 0.6, "bcr": 10.0, "sle": True}


@pytest.mark.parametrize("extra", [{}, {"d_dropout": 0.3, "schedule": "decay", "d_steps": 3}, QUALITY_PIECES,
                                   {"loss": "wgan", "d_norm": "none", "lr_d": 1e-4},
                                   {"schedule": "gated", "d_acc_gate": 0.6}, R3GAN_PIECES, G_HEAVY,
                                   {"schedule": "decay", "g_steps": 3, "epoch_images": 32, "balance": "tone"}],
                         ids=["plain", "dropout-decay", "quality-pieces", "wgan-gp", "gated", "r3gan-pieces",
                              "g-heavy", "g-decay-subset-balanced"])
def test_resume_continues_exactly(tiny_cfg, tmp_path, extra):
    # amp is on by default: on a CPU with native bf16 (this project's machines) these runs are bf16.
    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=3, **extra)
    train(straight, progress=False)
    resumed = tiny_cfg(out=str(tmp_path / "split"), epochs=3, **extra)
    train(resumed, progress=False, should_stop=lambda epochs_done: epochs_done == 1)
    assert load_checkpoint(resumed.run_dir / "checkpoints/latest.pt")["epoch"] == 1
    train(resumed, resume=True, progress=False)
    (a, sa), (b, sb) = final_state(straight), final_state(resumed)
    assert_same_state(a, b)
    assert a["step"] == b["step"] and len(sa) == len(sb) == 3
    assert all(np.array_equal(x, y) for x, y in zip(sa, sb))
    def rows(run):
        return [{k: v for k, v in json.loads(l).items() if k != "time"}
                for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
    assert rows("split") == rows("straight")  # same losses, no duplicated steps


def test_extending_a_finished_run_equals_training_longer(tiny_cfg, tmp_path):
    # With a progress-free schedule, "2 epochs, then --epochs 3 --resume" == "3 epochs".
    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=3)
    train(straight, progress=False)
    train(tiny_cfg(out=str(tmp_path / "ext"), epochs=2), progress=False)
    extended = tiny_cfg(out=str(tmp_path / "ext"), epochs=3)
    train(extended, resume=True, progress=False)
    assert_same_state(final_state(straight)[0], final_state(extended)[0])


def adam_steps(opt):
    return {int(state["step"]) for state in opt.state.values()}


def test_extra_latents_give_more_g_updates_each_on_its_own_z(nets):
    D, G, d_opt, g_opt, real, z = nets
    more = [torch.randn(8, 16), torch.randn(8, 16)]
    train_step(real, D, G, d_opt, g_opt, z, extra_z=more)
    assert adam_steps(d_opt) == {1} and adam_steps(g_opt) == {3}
    D2, G2, d2, g2 = copy.deepcopy((D, G, d_opt, g_opt))
    again = [train_step(real, D_, G_, d_, g_, z, extra_z=extra)["g_loss"]
             for D_, G_, d_, g_, extra in ((D, G, d_opt, g_opt, more), (D2, G2, d2, g2, [z, z]))]
    assert not torch.equal(*again)  # the extra updates really see the fresh z, not the first one


def test_g_steps_trains_g_k_times_per_d_update_in_a_run(tiny_cfg):
    cfg = tiny_cfg(g_steps=3, ema_decay=0.9)
    summary = train(cfg, progress=False)
    ckpt = load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    d_steps = {int(s["step"]) for s in ckpt["opt_d"]["state"].values()}
    g_steps = {int(s["step"]) for s in ckpt["opt_g"]["state"].values()}
    assert d_steps == {summary["steps"]} and g_steps == {3 * summary["steps"]}


def test_resume_refuses_a_different_config(tiny_cfg):
    train(tiny_cfg(), progress=False)
    with pytest.raises(CheckpointError, match="conv_dim"):
        train(tiny_cfg(conv_dim=16, epochs=2), resume=True, progress=False)


def test_a_checkpoint_older_than_a_config_field_resumes_with_that_feature_off(tiny_cfg):
    # Checkpoints written before tone_match existed lack the key: it was off then.
    saved = {k: v for k, v in tiny_cfg().to_dict().items() if k != "tone_match"}
    check_resumable(saved, tiny_cfg(epochs=2))
    with pytest.raises(CheckpointError, match="tone_match: None -> 0.5|tone_match: 0.0 -> 0.5"):
        check_resumable(saved, tiny_cfg(tone_match=0.5))


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tiny_cfg, monkeypatch):
    cfg = tiny_cfg(epochs=1)
    train(cfg, progress=False)
    good = (cfg.run_dir / "checkpoints/latest.pt").read_bytes()
    real_d_loss = losses.d_loss
    monkeypatch.setattr(losses, "d_loss", lambda *a, **k: real_d_loss(*a, **k) * float("nan"))
    with pytest.raises(TrainingError, match=r"d_loss.* became nan at step 5"):
        train(tiny_cfg(epochs=2), resume=True, progress=False)
    assert (cfg.run_dir / "checkpoints/latest.pt").read_bytes() == good


def test_corrupt_checkpoint_gives_one_line_error(tmp_path):
    bad = tmp_path / "latest.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(bad)
    assert "\n" not in str(e.value) and str(bad) in str(e.value)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_train_samples_reader_refuses_code(tmp_path):
    path = tmp_path / "train_samples.pkl"
    path.write_bytes(pickle.dumps([np.zeros((1, 2, 2, 3), np.uint8), _Evil()]))
    with pytest.raises(ValueError, match="refusing"):
        load_train_samples(path)


def test_fast_path_gives_the_same_fp32_results(tiny_cfg, tmp_path):
    # channels_last and foreach Adam reorder arithmetic, so equality is to rounding, not bitwise
    fast = tiny_cfg(out=str(tmp_path / "fast"), fast=True, amp=False)
    plain = tiny_cfg(out=str(tmp_path / "plain"), fast=False, amp=False)
    train(fast, progress=False)
    train(plain, progress=False)
    a, b = final_state(fast)[0], final_state(plain)[0]
    for key in ("G", "D"):
        for k, t in a[key].items():
            assert torch.allclose(t.float(), b[key][k].float(), rtol=1e-4, atol=1e-5), f"{key}.{k}"


NATIVE_BF16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 "
                                 "(AVX512-BF16 or AMX), so training on it stays fp32")


@NATIVE_BF16
def test_bf16_on_a_cpu_with_native_support_is_close_to_fp32(tiny_cfg, tmp_path):
    said = []
    bf16, fp32 = (tiny_cfg(out=str(tmp_path / name), amp=amp, epochs=2) for name, amp in (("bf16", True), ("fp32", False)))
    train(bf16, progress=False, log=said.append)
    train(fp32, progress=False)
    assert "precision: bf16 autocast on CPU (--no-amp trains in fp32)" in said
    rows = {cfg.out: [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
            for cfg in (bf16, fp32)}
    a, b = rows[bf16.out], rows[fp32.out]
    assert all(math.isfinite(r[k]) for r in a for k in ("d_loss", "g_loss"))
    assert a != b  # autocast really ran: bf16 rounds differently
    for ra, rb in zip(a, b):
        assert ra["d_loss"] == pytest.approx(rb["d_loss"], abs=0.05)
        assert ra["g_loss"] == pytest.approx(rb["g_loss"], abs=0.1)
    (sa, sb) = (final_state(cfg)[1][-1].astype(float) for cfg in (bf16, fp32))
    assert np.abs(sa - sb).mean() < 4  # the same faces, to a few levels of 255


def test_without_native_bf16_amp_changes_nothing(tiny_cfg, tmp_path, monkeypatch):
    # A CPU without native bf16 must keep the fp32 path, bit for bit, whatever --amp says.
    import facegan.utils.accel as accel

    monkeypatch.setattr(accel, "cpu_has_native_bf16", lambda: False)
    said = []
    runs = [tiny_cfg(out=str(tmp_path / name), amp=amp) for name, amp in (("amp", True), ("fp32", False))]
    train(runs[0], progress=False, log=said.append)
    train(runs[1], progress=False)
    assert_same_state(final_state(runs[0])[0], final_state(runs[1])[0])
    assert any(line.startswith("precision: fp32 (this CPU has no native bf16") for line in said)


def test_a_time_budget_stops_with_a_checkpoint_that_resumes_exactly(tiny_cfg, tmp_path, capsys):
    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=2)
    train(straight, progress=False)
    said = []
    budget = tiny_cfg(out=str(tmp_path / "budget"), epochs=2, minutes=1e-9)  # spent after the first step
    summary = train(budget, progress=False, log=said.append)
    assert summary["ended_by"] == "budget" and summary["steps"] == 1
    assert any(line.startswith("time budget of 1e-09 min spent: stopped at epoch 1, batch 1") for line in said)
    ckpt = load_checkpoint(budget.run_dir / "checkpoints/latest.pt")
    assert (ckpt["epoch"], ckpt["batch"], ckpt["step"]) == (0, 1, 1)
    train(tiny_cfg(out=str(tmp_path / "budget"), epochs=2), resume=True, progress=False)  # the budget may change
    assert_same_state(final_state(straight)[0], final_state(budget)[0])


def test_sigterm_mid_epoch_checkpoints_and_resume_is_exact(tiny_cfg, tmp_path, monkeypatch):
    import os
    import signal

    import facegan.training.step as step_module
    from facegan.training.loop import RunInterrupted

    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=2)
    train(straight, progress=False)

    calls = {"n": 0}
    real_step = step_module.train_step

    def step_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # mid-epoch: 4 batches an epoch
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)

    cut = tiny_cfg(out=str(tmp_path / "cut"), epochs=2)
    monkeypatch.setattr(step_module, "train_step", step_then_signal)
    with pytest.raises(RunInterrupted, match="SIGTERM.*batch 3.*--resume"):
        train(cut, progress=False)
    monkeypatch.setattr(step_module, "train_step", real_step)
    ckpt = load_checkpoint(cut.run_dir / "checkpoints/latest.pt")
    assert (ckpt["epoch"], ckpt["batch"], ckpt["step"]) == (0, 3, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    train(cut, resume=True, progress=False)
    assert_same_state(final_state(straight)[0], final_state(cut)[0])


def test_ctrl_c_on_the_command_line_saves_and_exits_cleanly(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan", "train", "--preset", "tiny", "--epochs", "500", "--synthetic-n", "256",
         "--out", str(run), "--cache-dir", str(tmp_path / "cache"), "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "checkpoint saved" in lines[0] and "Traceback" not in err
    ckpt = load_checkpoint(run / "checkpoints/latest.pt")
    assert ckpt["step"] > 0


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tiny_cfg, monkeypatch):
    import facegan.checkpoint as checkpoint_module

    cfg = tiny_cfg()
    train(cfg, progress=False)
    latest = cfg.run_dir / "checkpoints/latest.pt"
    good = latest.read_bytes()

    def half_write_then_die(obj, f):
        f.write(good[: len(good) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint_module.torch, "save", half_write_then_die)
    with pytest.raises(CheckpointError, match="No space left.*previous checkpoint there is intact"):
        train(tiny_cfg(epochs=2), resume=True, progress=False)
    assert latest.read_bytes() == good
    assert load_checkpoint(latest)["epoch"] == 1
    assert [p.name for p in latest.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_ema_weights_are_saved_and_drive_the_samples(tiny_cfg):
    from facegan.generate.export import generator_from_checkpoint
    from facegan.generate.sample import generate
    from facegan.nets.models import Generator

    cfg = tiny_cfg(ema_decay=0.5)
    train(cfg, progress=False)
    ckpt, samples = final_state(cfg)
    assert ckpt["G_ema"] is not None
    assert any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"] if "weight" in k)
    G_ema = Generator(cfg.z_size, cfg.conv_dim, cfg.image_size)
    G_ema.load_state_dict(ckpt["G_ema"])
    assert np.array_equal(generate(G_ema, ckpt["fixed_z"]), samples[-1])  # samples come from G_ema
    loaded, _ = generator_from_checkpoint(cfg.run_dir / "checkpoints/latest.pt")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), G_ema.state_dict().values()))


def test_g_emas_norms_are_measured_on_itself_and_training_never_reads_them(tiny_cfg, tmp_path):
    from facegan.nets.models import Generator
    from facegan.training.ema import EMA
    from facegan.utils.seeds import stream_seed

    measured = tiny_cfg(out=str(tmp_path / "measured"), ema_decay=0.5, epochs=2)
    copied = tiny_cfg(out=str(tmp_path / "copied"), ema_decay=0.5, epochs=2, ema_norm_samples=0)
    for cfg in (measured, copied):
        train(cfg, progress=False)
    (a, samples_a), (b, samples_b) = final_state(measured), final_state(copied)
    statistics = [k for k in a["G_ema"] if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert statistics and all(torch.equal(b["G_ema"][k], b["G"][k]) for k in statistics)
    # The trajectories are the same: only G_ema's statistics, and so the samples, differ.
    assert_same_state({**a, "G_ema": None}, b)
    assert all(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in a["G_ema"] if k not in statistics)
    assert not any(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in statistics if "mean" in k)
    assert not np.array_equal(samples_a[-1], samples_b[-1])
    # The checkpoint holds G_ema's weights' own statistics, measured with the run's seed (equal
    # to rounding: the run's nets are channels_last, this one is not).
    G = Generator(measured.z_size, measured.conv_dim, measured.image_size)
    G.load_state_dict(b["G_ema"])
    ema = EMA(G, measured.ema_decay)
    ema.measure_norms(measured.z_size, measured.ema_norm_samples, stream_seed(measured.seed, "ema_norms"))
    assert all(torch.allclose(ema.model.state_dict()[k].float(), a["G_ema"][k].float(), atol=1e-6) for k in statistics)


def test_linear_lr_decay_reaches_the_expected_rate(tiny_cfg):
    cfg = tiny_cfg(epochs=2, lr_decay="linear")
    train(cfg, progress=False)
    ckpt, _ = final_state(cfg)
    steps = ckpt["step"]
    expected = cfg.lr_d * (1 - (steps - 1) / steps)  # the rate of the last step taken
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == pytest.approx(expected)


def test_collapse_warnings_are_said_and_logged(tiny_cfg, monkeypatch):
    import facegan.training.steplog as steplog_module
    from facegan.training.monitor import CollapseMonitor

    monkeypatch.setattr(steplog_module, "CollapseMonitor", lambda: CollapseMonitor(window=1, acc_threshold=0.0))
    said = []
    cfg = tiny_cfg()
    train(cfg, progress=False, log=said.append)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    warnings = [r["warning"] for r in rows if "warning" in r]
    assert warnings and "winning" in warnings[0]
    assert any(line.startswith("warning: D is winning") for line in said)


def test_a_resume_without_metrics_jsonl_says_so_and_starts_the_log_again(tiny_cfg, tmp_path):
    straight = tiny_cfg(out=str(tmp_path / "straight"), epochs=2)
    train(straight, progress=False)
    cfg = tiny_cfg(epochs=1)
    train(cfg, progress=False)
    (cfg.run_dir / "metrics.jsonl").unlink()
    said = []
    summary = train(tiny_cfg(epochs=2), resume=True, progress=False, log=said.append)
    assert summary["epochs"] == 2
    notes = [line for line in said if "metrics.jsonl is missing" in line]
    assert len(notes) == 1 and "\n" not in notes[0] and "before step 4" in notes[0]
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    whole = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [row["step"] for row in whole if row["step"] > 4]
    assert (cfg.run_dir / "report.html").is_file() and (cfg.run_dir / "losses.png").is_file()


@pytest.mark.parametrize("line, why", [
    ("not json", "is not a metrics row"),
    ("[" * 100_000 + "]" * 100_000, "is not a metrics row"),  # deeper than the JSON parser goes
    ("[1, 2]", "is not a metrics row"),
    ('{"step": "4", "epoch": 1, "d_loss": 1.0}', "has step '4', not a count"),
    ('{"epoch": 1, "d_loss": 1.0}', "has step missing, not a count"),
    ('{"step": 4, "epoch": 1, "fid": "low"}', "has fid 'low', not a number"),
    ('{"step": 4, "epoch": [1], "fid": 3.0}', "has epoch [1], not a count"),
])
def test_a_malformed_metrics_row_stops_a_resume_in_one_line_and_keeps_the_file(tiny_cfg, capsys, line, why):
    from facegan.commands.cli import main

    cfg = tiny_cfg()
    train(cfg, progress=False)
    metrics = cfg.run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = line
    metrics.write_text("\n".join(lines) + "\n")
    before = metrics.read_bytes()
    capsys.readouterr()
    assert main(["train", "--out", str(cfg.run_dir), "--resume", "--epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err and "Traceback" not in err, err[:400]
    assert f"{metrics}, line 2, {why}" in err and "delete that line" in err
    assert metrics.read_bytes() == before
    assert load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")["epoch"] == 1  # the run is as it was


@pytest.mark.parametrize("damage", ["not utf-8", "a folder"])
def test_an_unreadable_metrics_jsonl_stops_a_resume_in_one_line(tiny_cfg, capsys, damage):
    from facegan.commands.cli import main

    cfg = tiny_cfg()
    train(cfg, progress=False)
    metrics = cfg.run_dir / "metrics.jsonl"
    if damage == "a folder":
        metrics.unlink()
        metrics.mkdir()
    else:
        metrics.write_bytes(b'{"step": 1, "epoch": 1}\n\xff\xfe\n')
    capsys.readouterr()
    assert main(["train", "--out", str(cfg.run_dir), "--resume", "--epochs", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err and "Traceback" not in err, err[:400]
    assert f"{metrics} cannot be read" in err
    assert load_checkpoint(cfg.run_dir / "checkpoints/latest.pt")["epoch"] == 1


class _Cast(torch.nn.Module):
    """A net's output cast to another dtype: a learner's net that forgot its precision."""

    def __init__(self, net, dtype):
        super().__init__()
        self.net, self.dtype = net, dtype

    def forward(self, x):
        return self.net(x).to(self.dtype)


@pytest.mark.parametrize("damage", ["D float64", "G float64", "D int", "G frozen", "D frozen"])
def test_own_nets_of_the_wrong_dtype_or_without_trainable_parameters_are_refused_before_writing(
        tiny_cfg, damage):
    cfg = tiny_cfg()
    D, G = build_models(cfg)
    name, fault = damage.split()
    net = {"D": D, "G": G}[name]
    if fault == "frozen":
        net.requires_grad_(False)
    else:
        net = _Cast(net, torch.float64 if fault == "float64" else torch.int64)
    nets = {"D": D, "G": G, name: net}
    with pytest.raises(ConfigError) as refused:
        train(cfg, progress=False, **nets)
    message = str(refused.value)
    assert message.startswith(f"train(cfg, {name}=...)") and "\n" not in message
    assert ("requires a gradient" if fault == "frozen" else "float32") in message
    assert not cfg.run_dir.exists()  # no config.json, no samples/
