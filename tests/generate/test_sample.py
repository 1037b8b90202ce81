"""Using a trained generator: sample, interpolate, report, TensorBoard (issue 9)."""
import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.commands.cli import main
from facegan.generate.export import generator_from_checkpoint
from facegan.generate.sample import (
    faces_from_seeds,
    latent_walk,
    latents_for_seeds,
    load_train_samples,
    slerp,
    walk_faces,
)
from facegan.training.loop import train
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from facegan.config import preset
    tmp = tmp_path_factory.mktemp("sample")
    cfg = preset("tiny", out=str(tmp / "run"), cache_dir=str(tmp / "cache"), epochs=2, ema_decay=0.9)
    train(cfg, progress=False)
    return cfg


@pytest.fixture(scope="module")
def checkpoint(run):
    return run.run_dir / "checkpoints/latest.pt"


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_a_seed_is_always_the_same_face_whatever_else_is_drawn():
    alone = latents_for_seeds([5], 16)
    among = latents_for_seeds([3, 4, 5, 6], 16)
    assert torch.equal(alone[0], among[2])
    assert not torch.equal(among[0], among[1])


def test_truncation_bounds_every_coordinate_and_keeps_the_distribution_symmetric():
    z = latents_for_seeds(list(range(200)), 32, truncation=0.8)
    assert z.abs().max() <= 0.8
    assert abs(float(z.mean())) < 0.05 and float(z.std()) > 0.4  # redrawn, not clamped to the edge
    assert (z.abs() > 0.79).float().mean() < 0.05  # clamping would pile values up at +-0.8
    with pytest.raises(ValueError, match="at least 0.05"):
        latents_for_seeds([1], 8, truncation=0.0)


def test_slerp_follows_the_arc_between_its_ends():
    a, b = latents_for_seeds([1, 2], 64)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    # On the arc the norm stays between the ends'; the straight line's midpoint falls well inside.
    assert min(a.norm(), b.norm()) - 1e-4 <= mid.norm() <= max(a.norm(), b.norm()) + 1e-4
    assert ((a + b) / 2).norm() < 0.8 * mid.norm()
    u, v = a / a.norm(), b / b.norm()
    unit_mid = slerp(u, v, 0.25)  # on the unit sphere: a quarter of the angle, and norm 1
    assert float(unit_mid.norm()) == pytest.approx(1, abs=1e-5)
    angle = lambda x, y: float(torch.acos((x @ y).clamp(-1, 1)))  # noqa: E731
    assert angle(u, unit_mid) == pytest.approx(angle(u, v) / 4, abs=1e-4)
    assert torch.allclose(slerp(a, a, 0.3), a, atol=1e-6)  # same point: no division by sin(0)


def test_latent_walk_shapes_and_loop():
    keys = latents_for_seeds([1, 2, 3], 8)
    walk = latent_walk(keys, 5)
    assert walk.shape == (2, 5, 8)
    assert torch.allclose(walk[0, -1], walk[1, 0]) and torch.allclose(walk[1, -1], keys[2], atol=1e-5)
    loop = latent_walk(keys, 5, loop=True)
    assert loop.shape == (3, 5, 8) and torch.allclose(loop[-1, -1], keys[0], atol=1e-5)


def test_sample_grid_is_reproducible_and_uses_the_ema_weights(checkpoint, tmp_path, run):
    args = ["sample", "--checkpoint", str(checkpoint), "--n", "6", "--seed", "7", "--nrow", "3",
            "--upscale", "1"]
    assert main([*args, "--out", str(tmp_path / "a.png")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.png")]) == 0
    grid = read_png(tmp_path / "a.png")
    assert np.array_equal(grid, read_png(tmp_path / "b.png"))
    size, pad = run.image_size, 2
    assert grid.shape == (2 * (size + pad) + pad, 3 * (size + pad) + pad, 3)
    G_ema, _ = generator_from_checkpoint(checkpoint)  # G_ema when the run has one
    first = faces_from_seeds(G_ema, [7])[0]
    assert np.array_equal(grid[pad:pad + size, pad:pad + size], first)
    ckpt = torch.load(checkpoint, weights_only=True)
    assert ckpt["G_ema"] is not None
    assert any(not torch.equal(ckpt["G_ema"][k], ckpt["G"][k]) for k in ckpt["G"] if "weight" in k)


def test_sample_to_a_folder_names_each_face_by_its_seed(checkpoint, tmp_path):
    out = tmp_path / "faces"
    assert main(["sample", "--checkpoint", str(checkpoint), "--n", "3", "--seed", "40", "--out", str(out),
                 "--upscale", "1"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["seed000040.png", "seed000041.png", "seed000042.png"]
    G, _ = generator_from_checkpoint(checkpoint)
    assert np.array_equal(read_png(out / "seed000041.png"), faces_from_seeds(G, [41])[0])
    # and a seed's face in the folder equals that seed's face in a grid starting elsewhere
    main(["sample", "--checkpoint", str(checkpoint), "--n", "2", "--seed", "41", "--out",
          str(tmp_path / "g.png"), "--upscale", "1"])
    assert np.array_equal(read_png(tmp_path / "g.png")[2:2 + G.image_size, 2:2 + G.image_size],
                          read_png(out / "seed000041.png"))


def test_sample_accepts_an_exported_generator(checkpoint, tmp_path):
    export = tmp_path / "g.safetensors"
    main(["export", "--checkpoint", str(checkpoint), "--out", str(export)])
    for source, name in ((checkpoint, "a.png"), (export, "b.png")):
        main(["sample", "--checkpoint", str(source), "--n", "4", "--out", str(tmp_path / name)])
    assert np.array_equal(read_png(tmp_path / "a.png"), read_png(tmp_path / "b.png"))


def test_sample_tone_asks_every_seed_of_a_conditional_generator_for_that_tone(tiny_cfg, tmp_path, checkpoint,
                                                                             capsys):
    cfg = tiny_cfg(condition="tone", out=str(tmp_path / "conditional"))
    train(cfg, progress=False)
    conditional = cfg.run_dir / "checkpoints/latest.pt"
    G, _ = generator_from_checkpoint(conditional)
    assert main(["sample", "--checkpoint", str(conditional), "--n", "3", "--seed", "7", "--tone", "very-light",
                 "--out", str(tmp_path / "faces"), "--upscale", "1"]) == 0
    with torch.no_grad():
        wanted = G(latents_for_seeds([7, 8, 9], G.z_size), torch.zeros(3, dtype=torch.long))
    for i, seed in enumerate((7, 8, 9)):
        assert np.abs(read_png(tmp_path / f"faces/seed{seed:06d}.png").astype(int)
                      - faces_from_seeds(G, [seed], label=0)[0]).max() == 0
        assert np.abs(read_png(tmp_path / f"faces/seed{seed:06d}.png").astype(int)
                      - ((wanted[i].permute(1, 2, 0) + 1) * 127.5).round().numpy()).max() <= 1
    capsys.readouterr()
    # A generator that never learnt tones is refused in one line that says so.
    assert main(["sample", "--checkpoint", str(checkpoint), "--tone", "dark", "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--condition tone" in err and not (tmp_path / "x.png").exists()


def test_interpolate_writes_a_grid_and_a_looping_gif(checkpoint, tmp_path, capsys):
    assert main(["interpolate", "--checkpoint", str(checkpoint), "--seeds", "1,2,3", "--steps", "6",
                 "--out", str(tmp_path / "walk"), "--upscale", "1"]) == 0
    G, _ = generator_from_checkpoint(checkpoint)
    size, pad = G.image_size, 2
    grid = read_png(tmp_path / "walk.png")
    assert grid.shape == (2 * (size + pad) + pad, 6 * (size + pad) + pad, 3)  # a row per pair
    ends = faces_from_seeds(G, [1, 2, 3])
    tile = lambda r, c: grid[pad + r * (size + pad):pad + r * (size + pad) + size,  # noqa: E731
                             pad + c * (size + pad):pad + c * (size + pad) + size]
    assert np.array_equal(tile(0, 0), ends[0]) and np.array_equal(tile(1, 5), ends[2])
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 3 * 5  # 3 segments (back to seed 1), the shared endpoint shown once
    assert gif.info.get("loop") == 0
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB"), dtype=np.int16))
    # consecutive frames change gradually: a walk, not a slideshow
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert max(steps) < 0.5 * np.abs(frames[0] - frames[5]).mean() + 1
    assert "walk.gif" in capsys.readouterr().out


def test_walk_rejects_one_seed_and_bad_seed_lists(checkpoint, tmp_path, capsys):
    G, _ = generator_from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="at least two seeds"):
        walk_faces(G, [1], 5)
    with pytest.raises(SystemExit) as refused:  # refused while parsing, before the checkpoint loads
        main(["interpolate", "--checkpoint", str(checkpoint), "--seeds", "1,x", "--out", str(tmp_path / "w")])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--seeds" in err and "1,2,3" in err


def test_the_run_report_is_one_self_contained_page(run):
    html = (run.run_dir / "report.html").read_text()
    assert "<h2>Losses</h2>" in html and "Samples by epoch" in html and "<h2>Config</h2>" in html
    # latest grid + loss plot + one grid per epoch, all inline
    assert html.count("src='data:image/png;base64,") == 1 + 1 + run.epochs
    assert not re.search(r"(src|href)=['\"](?!data:)", html)  # nothing fetched from elsewhere
    assert f"{run.lr_d!r}" in html or str(run.lr_d) in html


def test_the_report_shows_fid_over_time_when_measured(tiny_cfg, tmp_path, monkeypatch):
    import facegan.training.loop as train_module

    def fake_scores(G, images, n, z_size, cache_dir, seed=0, device="auto", progress=False):
        return {"fid": 100.0 - seed, "kid": 0.1, "kid_std": 0.01, "swd": 5.0, "n": n}
    monkeypatch.setattr("facegan.eval.metrics.evaluate_generator", fake_scores)
    cfg = tiny_cfg(epochs=2, eval_every=1, eval_n=8)
    train_module.train(cfg, progress=False)
    html = (cfg.run_dir / "report.html").read_text()
    assert "FID over time" in html and "last FID 100.0" in html


def test_report_command_rebuilds_the_page_and_refuses_non_runs(run, tmp_path, capsys):
    (run.run_dir / "report.html").unlink()
    assert main(["report", str(run.run_dir)]) == 0
    assert (run.run_dir / "report.html").stat().st_size > 1000
    assert main(["report", str(tmp_path)]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_tensorboard_logs_losses_samples_and_scores(tiny_cfg, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setattr("facegan.eval.metrics.evaluate_generator",
                        lambda *a, **k: {"fid": 42.0, "kid": 0.1, "kid_std": 0.0, "swd": 1.0, "n": 8})
    cfg = tiny_cfg(epochs=2, tensorboard=True, eval_every=1, eval_n=8)
    train(cfg, progress=False)
    events = EventAccumulator(str(cfg.run_dir / "tensorboard"), size_guidance={"images": 0}).Reload()
    tags = events.Tags()
    assert {"train/d_loss", "train/g_loss", "eval/fid"} <= set(tags["scalars"])
    assert tags["images"] == ["samples"] and len(events.Images("samples")) == 2
    assert [e.value for e in events.Scalars("eval/fid")] == [42.0, 42.0]
    losses = [r for r in map(__import__("json").loads, (cfg.run_dir / "metrics.jsonl").read_text().splitlines())
              if "d_loss" in r]
    assert [e.step for e in events.Scalars("train/d_loss")] == [r["step"] for r in losses]


def test_the_shipped_celeba_samples_view_straight_after_a_clone(tmp_path):
    shipped = ROOT / "assets/celeba_run"
    samples = load_train_samples(shipped / "train_samples.pkl")  # through the restricted unpickler
    assert len(samples) >= 2 and all(s.dtype == np.uint8 and s.shape[1:] == (64, 64, 3) for s in samples)
    assert (shipped / "train_samples.pkl").stat().st_size < 1_000_000  # small enough to ship
    out = tmp_path / "view.png"
    assert main(["view", str(shipped), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- hostile train_samples.pkl, built opcode by opcode

def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _int(n: int) -> bytes:
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _shape(*dims: int) -> bytes:
    return b"(" + b"".join(_int(d) for d in dims) + b"t"  # MARK ... TUPLE


def _bytes(data: bytes) -> bytes:
    return b"B" + len(data).to_bytes(4, "little") + data  # BINBYTES


def _in_a_list(item: bytes) -> bytes:
    return b"\x80\x03]" + item + b"a."  # PROTO 3, EMPTY_LIST, item, APPEND, STOP


_EMPTY_ARRAY = _global("numpy.core.multiarray", "_reconstruct") + b"(" + _global("numpy", "ndarray") \
    + _shape(0) + _bytes(b"b") + b"tR"  # numpy's own first step: _reconstruct(ndarray, (0,), b'b')
_UINT8 = _global("numpy", "dtype") + b"(X\x02\x00\x00\x00u1\x89\x88tR"  # dtype('u1', False, True)
HUGE = 400 * 2**30  # 400 GiB

HOSTILE_PICKLES = {
    "reconstruct-huge-shape": _in_a_list(_global("numpy.core.multiarray", "_reconstruct") + b"("
                                         + _global("numpy", "ndarray") + _shape(HUGE) + _bytes(b"b") + b"tR"),
    "setstate-huge-shape": _in_a_list(_EMPTY_ARRAY + b"(" + _int(1) + _shape(HUGE // 3, 1, 1, 3) + _UINT8
                                      + b"\x89" + _bytes(b"abc") + b"tb"),  # BUILD with (1, shape, dtype, False, data)
    "bytes-huge-length": b"\x80\x04]\x8e" + HUGE.to_bytes(8, "little") + b"abc",  # BINBYTES8 of 400 GiB
    "frame-huge-length": b"\x80\x04\x95" + HUGE.to_bytes(8, "little") + b"]." ,  # FRAME of 400 GiB
    "ndarray-called": _in_a_list(_global("numpy", "ndarray") + b"(" + _shape(HUGE) + b"tR"),
    "huge-void-dtype": _in_a_list(_global("numpy.core.multiarray", "_reconstruct") + b"(" + _global("numpy", "ndarray")
                                  + _shape(2**20) + b"X\x0b\x00\x00\x00V2000000000tR"),
    "object-array": pickle.dumps([np.array([1, None], dtype=object)], protocol=3),
    "empty-array": pickle.dumps([np.zeros((0, 8, 8, 3), np.uint8)], protocol=4),
    "0-d-array": pickle.dumps([np.array(7, np.uint8)], protocol=4),
    "2-d-array": pickle.dumps([np.zeros((8, 8), np.uint8)], protocol=4),
    "float-array": pickle.dumps([np.zeros((2, 8, 8, 3), np.float32)], protocol=4),
    "truncated": pickle.dumps([np.zeros((2, 8, 8, 3), np.uint8)], protocol=4)[:-40],
    "empty-file": b"",
    "not-a-list": pickle.dumps({"a": np.zeros((2, 8, 8, 3), np.uint8)}, protocol=4),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PICKLES))
def test_a_hostile_train_samples_pkl_is_refused_in_one_line_before_allocating(tmp_path, kind):
    from facegan.errors import RunFolderError

    path = tmp_path / "train_samples.pkl"
    path.write_bytes(HOSTILE_PICKLES[kind])
    with pytest.raises(RunFolderError) as e:
        load_train_samples(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert path.read_bytes() == HOSTILE_PICKLES[kind]


def test_the_hand_built_opcodes_make_what_numpy_makes(tmp_path):
    """The crafted pickles above are refused for their sizes, not for being malformed: the
    same opcodes with a sane shape and its bytes load."""
    data = bytes(range(12))
    good = _in_a_list(_EMPTY_ARRAY + b"(" + _int(1) + _shape(1, 2, 2, 3) + _UINT8 + b"\x89" + _bytes(data) + b"tb")
    path = tmp_path / "train_samples.pkl"
    path.write_bytes(good)
    (loaded,) = load_train_samples(path)
    assert type(loaded) is np.ndarray and np.array_equal(loaded, np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3))


def test_the_samples_of_a_growing_run_load_whatever_their_sizes(tmp_path):
    from facegan.generate.sample import save_train_samples

    path = tmp_path / "train_samples.pkl"
    epochs = [np.full((4, 8, 8, 3), 1, np.uint8), np.full((4, 16, 16, 3), 2, np.uint8)]
    save_train_samples(path, epochs)
    assert all(np.array_equal(a, b) for a, b in zip(load_train_samples(path), epochs))


def _fake_run(tmp_path, pkl: bytes | None):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"name": "run"}\n')
    if pkl is None:
        (run / "train_samples.pkl").mkdir()
        (run / "train_samples.pkl/mine.txt").write_text("mine")
    else:
        (run / "train_samples.pkl").write_bytes(pkl)
    return run


@pytest.mark.parametrize("command", ["view", "report"])
@pytest.mark.parametrize("kind", ["folder", "reconstruct-huge-shape", "bytes-huge-length", "object-array",
                                  "empty-array", "0-d-array", "2-d-array"])
def test_view_and_report_refuse_a_hostile_train_samples_pkl_in_one_line(tmp_path, capsys, command, kind):
    run = _fake_run(tmp_path, None if kind == "folder" else HOSTILE_PICKLES[kind])
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main([command, str(run)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facegan: error: ") and "train_samples.pkl" in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing written, nothing lost
