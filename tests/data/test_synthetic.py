"""Behaviour of the procedural face dataset: determinism, framing, variety, skin tone."""
import csv

import numpy as np
import pytest
from PIL import Image

from facegan.data.synthetic import (
    FACE_ATTRIBUTES,
    MANIFEST_NAME,
    draw_face,
    make_faces,
    write_face_folder,
)


@pytest.fixture(scope="module")
def batch():
    """500 small faces shared by the statistical tests (drawing them once keeps the suite fast)."""
    return make_faces(500, size=32, seed=11, workers=1)


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values)).astype(np.float64)


def box_pixels(image: np.ndarray, box) -> np.ndarray:
    x0, y0 = np.ceil(box[:2]).astype(int)
    x1, y1 = np.floor(box[2:]).astype(int)
    return image[y0:y1, x0:x1].reshape(-1, 3)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_images_have_requested_shape_and_dtype(size):
    images, attributes = make_faces(3, size=size, seed=0)
    assert images.shape == (3, size, size, 3)
    assert images.dtype == np.uint8
    assert set(attributes) == set(FACE_ATTRIBUTES)
    assert all(len(values) == 3 for values in attributes.values())
    assert attributes["skin_rgb"].shape == (3, 3) and attributes["skin_rgb"].dtype == np.uint8
    assert attributes["glasses"].dtype == bool


def test_draw_face_returns_image_and_attributes():
    image, attributes = draw_face(np.random.default_rng(5), size=48)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    assert 0.0 <= attributes["skin_tone"] <= 1.0
    assert len(attributes["skin_rgb"]) == 3 and all(isinstance(c, int) for c in attributes["skin_rgb"])
    assert isinstance(attributes["hair_color"], str) and isinstance(attributes["hair_style"], str)
    assert isinstance(attributes["glasses"], bool)


def test_make_faces_draws_image_i_from_seed_sequence_of_seed_and_i():
    images, _ = make_faces(4, size=32, seed=9)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([9, 3])))
    assert np.array_equal(images[3], draw_face(rng, size=32)[0])


def assert_identical_faces(first, second):
    (images_a, attributes_a), (images_b, attributes_b) = first, second
    assert images_a.tobytes() == images_b.tobytes()
    for name in FACE_ATTRIBUTES:
        assert np.array_equal(attributes_a[name], attributes_b[name])


def test_same_seed_gives_identical_bytes():
    assert_identical_faces(make_faces(8, size=64, seed=42), make_faces(8, size=64, seed=42))


def test_different_seeds_give_different_images():
    first, _ = make_faces(8, size=32, seed=1)
    second, _ = make_faces(8, size=32, seed=2)
    assert all(not np.array_equal(a, b) for a, b in zip(first, second))


def test_image_i_does_not_depend_on_n():
    short, short_attributes = make_faces(10, size=32, seed=3)
    long, long_attributes = make_faces(20, size=32, seed=3)
    assert np.array_equal(short[5], long[5])
    assert np.array_equal(short, long[:10])
    assert np.array_equal(short_attributes["skin_tone"], long_attributes["skin_tone"][:10])


def test_parallel_workers_match_single_process_bitwise():
    assert_identical_faces(make_faces(600, size=32, seed=5, workers=1),
                           make_faces(600, size=32, seed=5, workers=2))


def test_same_face_at_every_size():
    # Geometry is sampled in image units, so sizes differ only in resolution.
    small, small_attributes = make_faces(4, size=32, seed=7)
    large, large_attributes = make_faces(4, size=128, seed=7)
    reduced = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BOX)) for im in large])
    assert np.abs(reduced.astype(int) - small.astype(int)).mean() < 6
    assert np.array_equal(small_attributes["skin_rgb"], large_attributes["skin_rgb"])


def test_zero_faces_gives_empty_arrays():
    images, attributes = make_faces(0, size=32)
    assert images.shape == (0, 32, 32, 3)
    assert attributes["skin_rgb"].shape == (0, 3)


def test_unsupported_size_is_rejected():
    with pytest.raises(ValueError, match="size"):
        make_faces(0, size=4)


def test_batch_has_substantial_pixel_variety(batch):
    images, _ = batch
    assert images.astype(np.float32).std(axis=0).mean() > 30


def test_skin_tone_spans_the_whole_range(batch):
    tone = batch[1]["skin_tone"]
    assert tone.min() >= 0.0 and tone.max() <= 1.0
    assert tone.max() - tone.min() >= 0.9
    # Every fifth of the ramp is represented, not just its ends.
    assert np.all(np.histogram(tone, bins=5, range=(0, 1))[0] >= 50)


def test_skin_luminance_falls_as_skin_tone_rises(batch):
    _, attributes = batch
    luminance = relative_luminance(attributes["skin_rgb"])
    tone = attributes["skin_tone"]
    spearman = np.corrcoef(ranks(tone), ranks(luminance))[0, 1]
    assert spearman < -0.99
    # Beyond rounding of the RGB ints, luminance never rises along the tone order.
    assert np.diff(luminance[np.argsort(tone)]).max() < 0.005
    assert luminance.max() > 4 * luminance.min()        # very light to very dark


@pytest.mark.parametrize("size", [64, 128])
def test_cheeks_show_the_recorded_skin_colour(size):
    images, attributes = make_faces(120, size=size, seed=13)
    for image, box, skin in zip(images, attributes["cheek_box"], attributes["skin_rgb"]):
        cheek = box_pixels(image, box)
        assert len(cheek) >= 10
        assert np.abs(cheek.mean(axis=0) - skin).max() < 8


def test_face_fills_most_of_the_frame_like_tight_crops(batch):
    x0, y0, x1, y1 = batch[1]["face_box"].T / 32
    assert np.all((x1 - x0 > 0.5) & (x1 - x0 < 0.85))
    assert np.all((y1 > 0.8) & (y1 < 1.0) & (y0 > 0.05) & (y0 < 0.35))


def test_corners_show_background_not_skin(batch):
    images, attributes = batch
    corners = np.concatenate([images[:, :4, :4], images[:, :4, -4:], images[:, -4:, :4], images[:, -4:, -4:]],
                             axis=1).reshape(len(images), -1, 3).astype(np.float64)
    distance = np.abs(corners.mean(axis=1) - attributes["skin_rgb"]).max(axis=1)
    assert distance.mean() > 40
    assert np.mean(distance > 10) > 0.9


def test_glasses_are_an_occasional_accessory(batch):
    assert 0.05 <= batch[1]["glasses"].mean() <= 0.30


def test_hair_and_expression_vary(batch):
    _, attributes = batch
    assert len(set(attributes["hair_color"])) >= 6
    assert len(set(attributes["hair_style"])) >= 5
    assert len(set(attributes["mouth"])) >= 3
    assert 0.05 < np.mean(attributes["beard"] != "none") < 0.6


def test_write_face_folder_writes_readable_pngs_and_attributes(tmp_path):
    out = write_face_folder(tmp_path / "faces", n=6, size=32, seed=4)
    images, attributes = make_faces(6, size=32, seed=4)
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(6)]
    for path, expected in zip(pngs, images):
        with Image.open(path) as im:
            assert im.size == (32, 32) and im.mode == "RGB"
            assert np.array_equal(np.asarray(im), expected)
    with open(out / "attributes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["file"] for row in rows] == [p.name for p in pngs]
    assert np.allclose([float(row["skin_tone"]) for row in rows], attributes["skin_tone"])
    assert not list(out.glob("*.tmp")) and [p.name for p in out.glob(".*")] == [MANIFEST_NAME]


def test_write_face_folder_rewrite_drops_stale_images(tmp_path):
    write_face_folder(tmp_path, n=5, size=16)
    write_face_folder(tmp_path, n=3, size=16)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["000000.png", "000001.png", "000002.png"]


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _users_faces(folder, n=5):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / f"{i:06d}.png")
    return _snapshot(folder)


def test_synth_into_a_folder_of_the_users_images_is_refused_and_keeps_them(tmp_path, capsys):
    from facegan.commands.cli import main
    folder = tmp_path / "mine"
    before = _users_faces(folder)
    assert main(["synth", str(folder), "--n", "2", "--size", "16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err and "Traceback" not in err, err
    assert "did not write" in err and "new or empty folder" in err and str(folder) in err
    assert _snapshot(folder) == before  # all 5 byte for byte, nothing added


@pytest.mark.parametrize("intruder", ["holiday.jpg", "000009.png", "attributes.csv"])
def test_a_synth_folder_with_an_image_added_by_the_user_is_refused(tmp_path, intruder):
    from facegan.errors import DataError
    write_face_folder(tmp_path, n=3, size=16)
    if intruder == "attributes.csv":  # no manifest, and an attributes.csv not naming every image
        (tmp_path / MANIFEST_NAME).unlink()
        (tmp_path / "000005.png").write_bytes(b"mine")
    else:
        (tmp_path / intruder).write_bytes(b"mine")
    before = _snapshot(tmp_path)
    with pytest.raises(DataError, match="did not write"):
        write_face_folder(tmp_path, n=2, size=16)
    assert _snapshot(tmp_path) == before


def test_a_folder_from_a_synth_without_the_manifest_is_still_rewritten(tmp_path):
    write_face_folder(tmp_path, n=4, size=16)
    (tmp_path / MANIFEST_NAME).unlink()  # as an older synth left it
    write_face_folder(tmp_path, n=2, size=16, seed=3)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["000000.png", "000001.png"]


def test_a_synth_killed_mid_write_is_rewritten(tmp_path, monkeypatch):
    from facegan.data import synthetic
    write_face_folder(tmp_path, n=2, size=16)
    real, calls = synthetic.atomic_open, []

    def killed_on_the_third(path, mode="wb"):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, mode)
    monkeypatch.setattr(synthetic, "atomic_open", killed_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        write_face_folder(tmp_path, n=5, size=16)
    monkeypatch.setattr(synthetic, "atomic_open", real)
    write_face_folder(tmp_path, n=3, size=16)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
