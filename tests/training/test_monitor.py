"""CollapseMonitor: when it warns about a winning D or collapsing samples, and when it stays quiet."""
import json

import numpy as np
import pytest

from facegan.training.monitor import CollapseMonitor, sample_spread


def rows(accs, first_step=0):
    return [{"step": first_step + 10 * i, "epoch": 1, "images": 640 * i, "d_loss": 0.1,
             "g_loss": 3.0, "d_acc": a} for i, a in enumerate(accs)]


def warnings_for(monitor, accs, first_step=0):
    return [monitor.observe_losses(r) for r in rows(accs, first_step)]


def diverse(seed, n=16, size=8):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def collapsed(seed, n=16, size=8):
    """n copies of one image, each with +-2 levels of noise."""
    rng = np.random.default_rng(seed)
    one = rng.integers(0, 256, (1, size, size, 3))
    return np.clip(one + rng.integers(-2, 3, (n, size, size, 3)), 0, 255).astype(np.uint8)


def test_d_winning_for_a_window_warns_once_naming_the_step_it_started():
    m = CollapseMonitor(window=5)
    out = warnings_for(m, [0.7] * 3 + [0.99] * 12)
    fired = [i for i, w in enumerate(out) if w]
    assert fired == [3 + 4]  # on the 5th high row, then silent while it lasts
    msg = out[fired[0]]
    assert "winning" in msg and "since step 30" in msg and "98%" in msg and "5 log rows" in msg


def test_warns_again_after_accuracy_drops_and_climbs_back():
    m = CollapseMonitor(window=4)
    out = warnings_for(m, [0.99] * 6 + [0.9] + [0.99] * 4)
    fired = [i for i, w in enumerate(out) if w]
    assert fired == [3, 10] and "since step 70" in out[10]


def test_lower_or_interrupted_accuracy_never_warns():
    m = CollapseMonitor(window=5, acc_threshold=0.98)
    assert not any(warnings_for(m, [0.979] * 50))
    assert not any(warnings_for(m, ([0.99] * 4 + [0.5]) * 10, first_step=1000))


def test_rows_without_d_acc_are_skipped_and_do_not_break_a_streak():
    m = CollapseMonitor(window=3)
    assert m.observe_losses({"step": 0, "d_acc": 0.99}) is None
    assert m.observe_losses({"step": 5, "fid": 80.0, "kid": 0.05}) is None  # an evaluation row
    assert m.observe_losses({"step": 10, "d_acc": 0.99}) is None
    assert "since step 0" in m.observe_losses({"step": 20, "d_acc": 1.0})


def test_sample_spread_is_rms_pixel_distance_on_a_unit_scale():
    black_white = np.stack([np.zeros((4, 4, 3)), np.full((4, 4, 3), 255)]).astype(np.uint8)
    assert sample_spread(black_white) == pytest.approx(1.0)
    assert sample_spread(np.repeat(diverse(0, n=1), 5, axis=0)) == pytest.approx(0.0, abs=1e-6)
    # uniform random pixels sit about 1/sqrt(6) = 0.41 apart at any image size
    assert sample_spread(diverse(1, size=4)) == pytest.approx(6 ** -0.5, abs=0.03)
    assert sample_spread(diverse(2, size=32)) == pytest.approx(6 ** -0.5, abs=0.01)


def test_collapsing_samples_warn_once_per_drop():
    m = CollapseMonitor(spread_drop=0.5)
    assert [m.observe_samples(diverse(s)) for s in range(3)] == [None] * 3
    msg = m.observe_samples(collapsed(10))
    assert msg and "collapsing" in msg and "mode collapse" in msg
    assert f"{sample_spread(collapsed(10)):.3f}" in msg
    assert m.observe_samples(collapsed(11)) is None  # still collapsed: already said
    assert m.observe_samples(diverse(12)) is None    # recovered
    assert m.observe_samples(collapsed(13))          # collapsed again: say it again


def test_steady_or_mildly_narrowing_samples_never_warn():
    m = CollapseMonitor(spread_drop=0.5)
    assert not any(m.observe_samples(diverse(s)) for s in range(10))
    base = diverse(0).astype(float)
    mean = base.mean(0, keepdims=True)
    for t in np.linspace(0, 0.4, 5):  # samples pulled 40% toward their mean: 0.6x spread
        assert m.observe_samples((base + t * (mean - base)).astype(np.uint8)) is None


def test_fewer_than_two_samples_are_ignored():
    m = CollapseMonitor()
    m.observe_samples(diverse(0))
    assert m.observe_samples(diverse(1, n=1)) is None
    assert m.observe_samples(collapsed(2))  # the single image did not reset the history


def test_state_round_trip_keeps_streak_and_best_spread():
    m = CollapseMonitor(window=5)
    warnings_for(m, [0.99] * 4, first_step=100)
    m.observe_samples(diverse(0))
    resumed = CollapseMonitor(window=5)
    resumed.load_state_dict(json.loads(json.dumps(m.state_dict())))  # plain, checkpointable
    nxt = rows([0.99], first_step=140)[0]
    warned = resumed.observe_losses(nxt)
    assert warned and "since step 100" in warned and warned == m.observe_losses(nxt)
    warned = resumed.observe_samples(collapsed(1))
    assert warned and warned == m.observe_samples(collapsed(1))
