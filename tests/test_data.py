import numpy as np
import pytest
import torch
from PIL import Image

from facegan.data import (DataError, FaceBatches, FaceFolder, cached_image_array, find_images,
                          get_dataloader, scale)


def write_images(folder, n, size=(40, 40), start=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def test_scale_maps_unit_interval_to_feature_range():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(scale(x), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(scale(x, (0, 255)), torch.tensor([0.0, 127.5, 255.0]))


def test_find_images_is_recursive_and_ignores_other_files(tmp_path):
    write_images(tmp_path / "a", 2)
    write_images(tmp_path / "a" / "nested", 1, start=10)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "x.JPG").write_bytes((tmp_path / "a" / "0000.png").read_bytes())
    assert len(find_images(tmp_path / "a")) == 4


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir()], ids=["missing", "empty"])
def test_missing_or_empty_folder_gives_one_line_error(tmp_path, make):
    folder = tmp_path / "faces"
    make(folder)
    with pytest.raises(DataError) as e:
        find_images(folder)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)


def test_face_folder_gives_square_tensors_in_range(tmp_path):
    write_images(tmp_path, 1, size=(60, 40))  # non-square: centre-cropped, not squashed
    Image.new("L", (32, 32), 200).save(tmp_path / "grey.png")
    Image.new("RGBA", (32, 32), (255, 0, 0, 128)).save(tmp_path / "rgba.png")
    ds = FaceFolder(tmp_path, image_size=32)
    for x in ds:
        assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(FaceFolder(tmp_path, 32, value_range=(0, 1))[1], torch.full((3, 32, 32), 200 / 255))


def test_course_dataloader_batches_in_unit_range(tmp_path):
    write_images(tmp_path, 10)
    images = next(iter(get_dataloader(4, 32, str(tmp_path))))
    assert images.shape == (4, 3, 32, 32)
    assert images.min() >= 0 and images.max() <= 1


def test_cache_is_reused_then_rebuilt_when_the_folder_changes(tmp_path):
    folder, cache = write_images(tmp_path / "faces", 5), tmp_path / "cache"
    first = cached_image_array(folder, 32, cache, progress=False)
    assert first.shape == (5, 32, 32, 3) and isinstance(first, np.memmap)
    [path] = list(cache.glob("*.npy"))
    mtime = path.stat().st_mtime_ns
    again = cached_image_array(folder, 32, cache, progress=False)
    assert np.array_equal(first, again) and path.stat().st_mtime_ns == mtime  # not rewritten
    write_images(folder, 1, start=99)
    assert cached_image_array(folder, 32, cache, progress=False).shape[0] == 6
    assert len(list(cache.glob("*.npy"))) == 1  # the stale cache is gone
    assert cached_image_array(folder, 64, cache, progress=False).shape == (6, 64, 64, 3)


def test_cache_skips_unreadable_images_and_says_so(tmp_path):
    folder = write_images(tmp_path / "faces", 3)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    said = []
    arr = cached_image_array(folder, 32, tmp_path / "cache", progress=False, log=said.append)
    assert arr.shape[0] == 3
    assert said and "1 unreadable" in said[0]


def test_cache_matches_direct_decoding(tmp_path):
    folder = write_images(tmp_path / "faces", 2, size=(64, 64))
    arr = cached_image_array(folder, 64, tmp_path / "cache", progress=False)
    assert np.array_equal(arr[0], np.asarray(Image.open(folder / "0000.png")))


def test_batches_are_deterministic_per_epoch_and_cover_the_data():
    images = np.arange(20, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2).repeat(3, 3)
    batches = FaceBatches(images, batch_size=4, seed=3, hflip=False)
    assert len(batches) == 5
    epoch0 = list(batches.epoch(0))
    assert all(b.shape == (4, 3, 8, 8) and b.min() >= -1 and b.max() <= 1 for b in epoch0)
    ids = torch.cat([((b[:, 0, 0, 0] + 1) * 127.5).round() for b in epoch0]).long()
    assert sorted(ids.tolist()) == list(range(20))  # each image once per epoch
    assert all(torch.equal(a, b) for a, b in zip(epoch0, batches.epoch(0)))
    assert not all(torch.equal(a, b) for a, b in zip(epoch0, batches.epoch(1)))


def test_hflip_mirrors_about_half_the_images():
    images = np.zeros((200, 4, 4, 3), np.uint8)
    images[:, :, 0] = 255  # a bright left column
    flipped = torch.cat(list(FaceBatches(images, 20, hflip=True).epoch(0)))[:, 0, 0, 3] > 0
    assert 60 < flipped.sum() < 140


def test_batch_larger_than_dataset_is_refused():
    with pytest.raises(DataError, match="batch_size=8"):
        FaceBatches(np.zeros((5, 4, 4, 3), np.uint8), batch_size=8)


def test_celeba_download_failure_is_one_facegan_error(tmp_path, monkeypatch):
    import helper
    from facegan.config import TrainConfig
    from facegan.data import training_images

    def unreachable(**kwargs):
        raise helper.DataError("could not reach https://example.invalid/x.zip; pass zip_path=...")
    monkeypatch.setattr(helper, "download_extract", unreachable)
    with pytest.raises(DataError, match="zip_path"):
        training_images(TrainConfig(data="celeba", data_dir=str(tmp_path)))
