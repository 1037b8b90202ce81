import pytest
import torch

from facegan.config import TrainConfig
from facegan.training.schedules import AccuracyGate, DecayingRatio, FixedRatio, build_schedule


def run(schedule, steps):
    return [schedule.plan(s, s / steps) for s in range(steps)]


def test_fixed_ratio_updates_g_once_per_k():
    plans = run(FixedRatio(3), 9)
    assert all(d for d, _ in plans)
    assert [g for _, g in plans] == [False, False, True] * 3


def test_decaying_ratio_moves_from_k_to_one():
    sched = DecayingRatio(5)
    assert sched.current_k(0.0) == 5 and sched.current_k(1.0) == 1
    plans = run(sched, 1000)
    early = sum(g for _, g in plans[:200])
    late = sum(g for _, g in plans[-200:])
    assert early < 70 and late > 150


def test_decaying_ratio_state_round_trips():
    a, b = DecayingRatio(4), DecayingRatio(4)
    run(a, 3)
    b.load_state_dict(a.state_dict())
    assert run(a, 10) == run(b, 10)


def observe(schedule, d_acc, times):
    for _ in range(times):
        schedule.observe({"d_acc": torch.tensor(d_acc)})


def test_accuracy_gate_pauses_a_winning_discriminator():
    gate = AccuracyGate(0.8)
    assert gate.plan(0, 0.0) == (True, True)  # no evidence yet: a coin toss
    observe(gate, 0.95, 30)
    assert gate.plan(0, 0.0) == (False, True)
    observe(gate, 0.6, 30)
    assert gate.plan(0, 0.0) == (True, True)


def test_accuracy_gate_follows_a_running_average_and_resumes_it():
    gate = AccuracyGate(0.8)
    observe(gate, 1.0, 1)
    assert gate.d_acc == pytest.approx(0.55)  # one winning batch does not close the gate
    restored = AccuracyGate(0.8)
    restored.load_state_dict(gate.state_dict())
    observe(gate, 0.99, 5)
    observe(restored, 0.99, 5)
    assert gate.d_acc == restored.d_acc and gate.plan(9, 0.5) == restored.plan(9, 0.5)


def test_ratio_schedules_ignore_the_statistics():
    for schedule in (FixedRatio(2), DecayingRatio(3)):
        schedule.observe({})  # no d_acc, no device sync: nothing to read
    assert run(FixedRatio(2), 4) == [(True, False), (True, True)] * 2


def test_build_schedule_from_config():
    assert isinstance(build_schedule(TrainConfig(schedule="decay", d_steps=3)), DecayingRatio)
    assert isinstance(build_schedule(TrainConfig(schedule="gated")), AccuracyGate)


def test_g_heavy_fixed_ratio_gives_k_g_updates_every_batch():
    assert run(FixedRatio(1, 3), 4) == [(True, 3)] * 4
    assert build_schedule(TrainConfig(g_steps=5)).plan(0, 0.0) == (True, 5)


def test_g_heavy_decaying_ratio_decays_to_one_to_one():
    updates = [g for d, g in run(DecayingRatio(1, 4), 100)]
    assert updates[0] == 4 and updates[-1] == 1 and updates == sorted(updates, reverse=True)
    assert isinstance(build_schedule(TrainConfig(schedule="decay", g_steps=4)), DecayingRatio)


def test_both_sides_heavier_or_g_steps_with_the_gate_is_refused():
    from facegan.config import ConfigError
    with pytest.raises(ConfigError, match="set one of them to 1"):
        TrainConfig(d_steps=2, g_steps=2)
    with pytest.raises(ConfigError, match="gated"):
        TrainConfig(schedule="gated", g_steps=2)
