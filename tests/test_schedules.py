from facegan.config import TrainConfig
from facegan.schedules import AccuracyGate, DecayingRatio, FixedRatio, build_schedule


def run(schedule, steps, d_acc=0.5):
    return [schedule.plan(s, s / steps, d_acc) for s in range(steps)]


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


def test_accuracy_gate_pauses_a_winning_discriminator():
    gate = AccuracyGate(0.8)
    assert gate.plan(0, 0.0, 0.95) == (False, True)
    assert gate.plan(0, 0.0, 0.6) == (True, True)


def test_build_schedule_from_config():
    assert isinstance(build_schedule(TrainConfig(schedule="decay", d_steps=3)), DecayingRatio)
    assert isinstance(build_schedule(TrainConfig(schedule="gated")), AccuracyGate)
