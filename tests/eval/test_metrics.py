"""FID, KID and SWD measure something: small for one distribution, large across different ones.

Feature extraction on CPU is ~20 images/s, so the sets are small and shared per module.
"""
import warnings

import numpy as np
import pytest

from facegan.data.synthetic import make_faces
from facegan.eval import metrics
from facegan.utils.accel import cpu_has_native_bf16

N = 64


@pytest.fixture(scope="module")
def sets():
    faces, _ = make_faces(2 * N, size=32, seed=11)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)
    return {"a": faces[:N], "b": faces[N:], "noise": noise}


@pytest.fixture(scope="module")
def feats(sets):
    return {k: metrics.inception_features(v, device="cpu") for k, v in sets.items()}


@pytest.fixture(scope="module")
def first_eight(sets):
    """Features of the first 8 faces of "a", computed in a batch of their own."""
    return metrics.inception_features(sets["a"][:8], device="cpu")


def test_features_are_2048d_and_deterministic(sets, feats, first_eight):
    assert feats["a"].shape == (N, 2048) and np.isfinite(feats["a"]).all()
    assert np.array_equal(metrics.inception_features(sets["a"][:8], device="cpu"), first_eight)
    # A face's features don't depend on its batch, up to rounding: oneDNN picks its kernels by
    # batch size on some CPUs (AVX2 ones, for one), and they sum in another order.
    np.testing.assert_allclose(first_eight, feats["a"][:8], rtol=1e-4, atol=1e-5)


def test_read_only_images_give_the_same_features_without_a_warning(sets, first_eight):
    frozen = sets["a"][:8].copy()
    frozen.flags.writeable = False  # as a cached set loaded with mmap_mode="r" is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frozen_features = metrics.inception_features(frozen, device="cpu")
    assert np.array_equal(frozen_features, first_eight)


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16, so features stay fp32")
def test_cpu_bf16_features_track_fp32_and_keep_fid_ordering(sets, feats):
    quick = feats  # the default on such a CPU
    m = N // 2  # fp32 features are the slow ones: half the sets are enough to compare
    exact = {k: metrics.inception_features(sets[k][:m], device="cpu", bf16=False) for k in ("a", "noise")}
    assert not np.array_equal(quick["a"][:m], exact["a"])  # bf16 really ran
    assert np.corrcoef(quick["a"][:m].ravel(), exact["a"].ravel())[0, 1] > 0.99
    same, noise = (metrics.fid_from_features(quick["a"], quick[k]) for k in ("b", "noise"))
    assert same < 0.25 * noise
    assert metrics.fid_from_features(quick["a"][:m], quick["noise"][:m]) == \
        pytest.approx(metrics.fid_from_features(exact["a"], exact["noise"]), rel=0.05)


def test_fid_is_small_within_a_distribution_and_large_across(feats):
    same = metrics.fid_from_features(feats["a"], feats["b"])
    noise = metrics.fid_from_features(feats["a"], feats["noise"])
    assert same < 0.25 * noise
    assert metrics.fid_from_features(feats["a"], feats["a"]) < 1e-3


def test_fid_is_symmetric(feats):
    ab = metrics.fid_from_features(feats["a"], feats["noise"])
    ba = metrics.fid_from_features(feats["noise"], feats["a"])
    assert ab == pytest.approx(ba, rel=1e-6)


def test_weighted_fid_is_the_fid_to_the_resampled_set(feats):
    """Weights that drop the noise rows give the FID to the faces alone; equal weights change nothing."""
    mixed = np.concatenate([feats["a"], feats["noise"]])
    keep_faces = np.r_[np.ones(N), np.zeros(N)]
    assert metrics.fid_from_features(mixed, feats["b"], keep_faces) == \
        pytest.approx(metrics.fid_from_features(feats["a"], feats["b"]), rel=1e-6)
    assert metrics.fid_from_features(mixed, feats["b"], np.full(2 * N, 0.3)) == \
        pytest.approx(metrics.fid_from_features(mixed, feats["b"]), rel=1e-6)


def test_compare_reports_the_reweighted_fid_only_when_asked(sets, feats):
    fake = sets["b"][:N // 2]  # each compare() extracts its features: few keep the test quick
    plain = metrics.compare(sets["a"], fake, feats["a"], device="cpu")
    assert "fid_reweighted" not in plain
    both = np.concatenate([sets["a"], sets["noise"]])
    weighted = metrics.compare(both, fake, np.concatenate([feats["a"], feats["noise"]]),
                               real_weights=np.r_[np.ones(N), np.zeros(N)], device="cpu")
    assert weighted["fid_reweighted"] == pytest.approx(plain["fid"], rel=1e-6)
    assert weighted["fid"] > 2 * weighted["fid_reweighted"]  # the unweighted set still holds the noise


def test_frechet_distance_matches_closed_form_for_gaussians():
    # 1-d-per-axis diagonal case: (mu1-mu2)^2 + (s1 - s2)^2 summed over axes
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    expected = 5.0 + (1 - 2) ** 2 + (2 - 2) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)


@pytest.mark.parametrize("n_a, n_b", [(40, 25), (25, 40), (63, 63)])
@pytest.mark.parametrize("weighted", [False, True])
def test_fid_of_fewer_images_than_dimensions_equals_the_covariance_formula(n_a, n_b, weighted):
    rng = np.random.default_rng(n_a + n_b)
    a, b = rng.gamma(2.0, size=(n_a, 64)), rng.gamma(2.5, size=(n_b, 64)) + 0.1
    w = rng.random(n_a) * (rng.random(n_a) > 0.2) if weighted else None  # some rows weigh nothing
    expected = metrics.frechet_distance(*metrics.feature_stats(a, w), *metrics.feature_stats(b))
    # The covariance route adds the square roots of its round-off eigenvalues (about 1e-8 here)
    assert metrics.fid_from_features(a, b, w) == pytest.approx(expected, rel=1e-7)


def test_kid_is_about_zero_within_a_distribution(feats):
    same, _ = metrics.kid_from_features(feats["a"], feats["b"], subset_size=N)
    noise, _ = metrics.kid_from_features(feats["a"], feats["noise"], subset_size=N)
    assert abs(same) < 0.1 * noise


def test_metrics_repeat_exactly(feats, sets):
    assert metrics.kid_from_features(feats["a"], feats["b"], subsets=5, subset_size=32) == \
        metrics.kid_from_features(feats["a"], feats["b"], subsets=5, subset_size=32)
    assert metrics.swd(sets["a"], sets["b"]) == metrics.swd(sets["a"], sets["b"])


def test_swd_ranks_like_fid(sets):
    same = metrics.swd(sets["a"], sets["b"])
    noise = metrics.swd(sets["a"], sets["noise"])
    assert 0 <= same < 0.5 * noise


def test_missing_weights_give_one_line_error(tmp_path, sets):
    with pytest.raises(metrics.MetricsError) as e:
        metrics.inception_features(sets["a"][:2], weights=tmp_path / "nope.pt")
    assert "\n" not in str(e.value) and "reinstall" in str(e.value)


def test_corrupt_weights_give_one_line_error(tmp_path, sets):
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(metrics.MetricsError) as e:
        metrics.inception_features(sets["a"][:2], weights=bad)
    assert "\n" not in str(e.value) and "unreadable" in str(e.value)


def test_real_features_are_cached_by_content(tmp_path, sets, feats, monkeypatch):
    few = sets["a"][:16]
    first = metrics.cached_features(few, tmp_path, device="cpu")
    assert np.array_equal(first, feats["a"][:16])
    monkeypatch.setattr(metrics, "inception_features", lambda *a, **k: pytest.fail("recomputed"))
    assert np.array_equal(metrics.cached_features(few, tmp_path, device="cpu"), first)
    with pytest.raises(pytest.fail.Exception, match="recomputed"):
        metrics.cached_features(sets["b"], tmp_path, device="cpu")  # other content is not served from the cache


def _corrupt_cache(kind: str, path, n: int) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        full = path.read_bytes()
        path.write_bytes(full[:len(full) // 2])
    elif kind == "garbage":
        path.write_bytes(b"\x93NUMPY not really" * 10)
    elif kind == "wrong-shape":
        np.save(path, np.zeros((n, 7)))
    elif kind == "wrong-dtype":
        np.save(path, np.zeros((n, 2048), np.float32))
    elif kind == "huge-header":  # claims a shape of terabytes, holds a few bytes
        header = {"descr": "<f8", "fortran_order": False, "shape": (n, 2048 * 10**8)}
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 64)
    elif kind == "nan":
        np.save(path, np.full((n, 2048), np.nan))


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "wrong-shape", "wrong-dtype", "huge-header", "nan"])
def test_a_bad_feature_cache_is_rebuilt_with_a_note(tmp_path, sets, kind, monkeypatch):
    few = sets["a"][:4]
    fake = np.arange(4 * 2048, dtype=np.float64).reshape(4, 2048)
    monkeypatch.setattr(metrics, "inception_features", lambda *a, **k: fake.copy())
    metrics.cached_features(few, tmp_path, device="cpu")
    (path,) = tmp_path.glob("inception-*.npy")
    _corrupt_cache(kind, path, len(few))
    notes = []
    rebuilt = metrics.cached_features(few, tmp_path, device="cpu", log=notes.append)
    assert np.array_equal(rebuilt, fake)
    assert len(notes) == 1 and "\n" not in notes[0] and str(path) in notes[0] and "rebuilding" in notes[0]
    assert np.array_equal(np.load(path), fake)  # the rebuilt cache serves the next call
    monkeypatch.setattr(metrics, "inception_features", lambda *a, **k: pytest.fail("recomputed"))
    assert np.array_equal(metrics.cached_features(few, tmp_path, device="cpu", log=notes.append), fake)
    assert len(notes) == 1


def test_a_folder_in_place_of_the_feature_cache_is_one_line(tmp_path, sets, monkeypatch):
    few = sets["a"][:4]
    monkeypatch.setattr(metrics, "inception_features", lambda *a, **k: np.zeros((4, 2048)))
    metrics.cached_features(few, tmp_path, device="cpu")
    (path,) = tmp_path.glob("inception-*.npy")
    path.unlink()
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    with pytest.raises(metrics.MetricsError) as e:
        metrics.cached_features(few, tmp_path, device="cpu", log=lambda m: None)
    assert "\n" not in str(e.value) and "is a folder" in str(e.value)
    assert (path / "keep.txt").read_text() == "mine"


def test_evaluate_command_prints_and_writes_json(tiny_cfg, tmp_path, capsys):
    import json

    from facegan.commands.cli import main
    from facegan.data.synthetic import write_face_folder
    from facegan.training.loop import train

    cfg = tiny_cfg()
    train(cfg, progress=False)
    real = write_face_folder(tmp_path / "real", 40, size=32)
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--checkpoint", str(cfg.run_dir / "checkpoints/latest.pt"), "--data-dir", str(real),
            "--n", "16", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    scores = json.loads(out.read_text())
    assert {"fid", "kid", "swd", "n"} <= set(scores) and scores["n"] == 16
    assert scores["fid"] > 0 and f"{scores['fid']:.3f}" in printed
    assert main(argv) == 0 and json.loads(out.read_text())["fid"] == scores["fid"]  # reproducible


def test_evaluate_command_errors_are_one_line(tmp_path, capsys):
    from facegan.commands.cli import main

    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err


def test_training_logs_evaluations(tiny_cfg):
    import json

    from facegan.training.loop import train

    cfg = tiny_cfg(epochs=2, eval_every=1, eval_n=8)
    train(cfg, progress=False, log=lambda *a: None)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "fid" in r]
    assert [r["epoch"] for r in evals] == [1, 2] and all(r["eval_n"] == 8 for r in evals)
    assert all(r["fid"] > 0 and "d_loss" not in r for r in evals)
    assert (cfg.run_dir / "losses.png").exists()
