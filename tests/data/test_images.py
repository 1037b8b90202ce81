import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from facegan.data.images import (
    TRANSPARENT_BACKGROUND,
    DataError,
    FaceBatches,
    FaceFolder,
    cached_image_array,
    find_images,
    get_dataloader,
    load_rgb,
    scale,
    to_rgb,
)


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


@pytest.mark.parametrize("spoil", [
    lambda raw: raw[:len(raw) // 2],  # "mmap length is greater than file size"
    lambda raw: b"\x00garbage" * 50,
    lambda raw: b"",
    lambda raw: np_bytes(np.zeros((2, 32, 32, 3), np.float32)),  # an array, but not this one
], ids=["truncated", "garbage", "empty", "wrong-array"])
def test_an_unreadable_cache_is_said_deleted_and_rebuilt(tmp_path, spoil):
    folder, cache = write_images(tmp_path / "faces", 5), tmp_path / "cache"
    original = np.array(cached_image_array(folder, 32, cache, progress=False))
    [path] = list(cache.glob("*.npy"))
    path.write_bytes(spoil(path.read_bytes()))
    said = []
    again = cached_image_array(folder, 32, cache, progress=False, log=said.append)
    assert np.array_equal(again, original)
    assert said == [f"cache {path} was unreadable; rebuilt it from the images in {folder.resolve()}"]
    assert list(cache.glob("*.npy")) == [path]
    said.clear()
    assert np.array_equal(cached_image_array(folder, 32, cache, progress=False, log=said.append), original)
    assert said == []  # the rebuilt cache is simply reused


def np_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


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


@pytest.mark.parametrize("weighted", [False, True], ids=["shuffled", "balanced-draw"])
def test_labels_travel_with_their_images_through_shuffles_flips_and_resumes(weighted):
    images = np.arange(40, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2).repeat(3, 3)
    labels = np.arange(40) % 6
    weights = np.linspace(1, 5, 40) / np.linspace(1, 5, 40).sum() if weighted else None
    batches = FaceBatches(images, batch_size=8, seed=1, hflip=True, weights=weights, labels=labels)
    for epoch in range(3):
        pairs = list(batches.labelled_epoch(epoch))
        for x, y in pairs:
            ids = ((x[:, 0, 0, 0] + 1) * 127.5).round().long()
            assert y.dtype == torch.long and torch.equal(y, ids % 6)
        # The images are the unlabelled epoch's, and a resume mid-epoch gets the same tail.
        assert all(torch.equal(x, plain) for (x, _), plain in zip(pairs, batches.epoch(epoch)))
        tail = list(batches.labelled_epoch(epoch, start=2))
        assert all(torch.equal(x, x2) and torch.equal(y, y2) for (x, y), (x2, y2) in zip(pairs[2:], tail))
    assert all(y is None for _, y in FaceBatches(images, batch_size=8).labelled_epoch(0))


def test_epoch_images_draws_a_fresh_subset_without_repeats_each_epoch():
    images = np.arange(40, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2).repeat(3, 3)
    batches = FaceBatches(images, batch_size=4, seed=3, hflip=False, epoch_images=12)
    assert len(batches) == 3  # the run's total steps follow the subset, not the whole set

    def ids(epoch, start=0):
        return torch.cat([((b[:, 0, 0, 0] + 1) * 127.5).round() for b in batches.epoch(epoch, start)]).long().tolist()
    first, second = ids(0), ids(1)
    assert len(first) == len(set(first)) == 12 and len(set(second)) == 12
    assert first != second and ids(0) == first  # fresh per epoch, the same for the same (seed, epoch)
    assert ids(0, start=1) == first[4:]  # a resume mid-epoch continues the same subset
    again = FaceBatches(images, batch_size=4, seed=3, hflip=False, epoch_images=12)
    assert [b.tolist() for b in again.epoch(1)] == [b.tolist() for b in batches.epoch(1)]


def test_epoch_images_with_balancing_draws_that_many_by_weight():
    images = np.zeros((10, 4, 4, 3), np.uint8)
    weights = np.r_[np.full(9, 0.01), 0.91]  # image 9 is nearly every draw
    images[9] = 255
    batches = FaceBatches(images, batch_size=10, hflip=False, weights=weights, epoch_images=30)
    drawn = torch.cat(list(batches.epoch(0)))
    assert len(drawn) == 30 and (drawn[:, 0, 0, 0] > 0).sum() > 20  # more draws than images: with replacement


@pytest.mark.parametrize("n,match", [(41, "exceeds the 40 training images"), (3, "fewer than one step")])
def test_impossible_epoch_images_are_refused_in_one_line(n, match):
    with pytest.raises(DataError, match=match):
        FaceBatches(np.zeros((40, 4, 4, 3), np.uint8), batch_size=4, epoch_images=n)


def test_hflip_mirrors_about_half_the_images():
    images = np.zeros((200, 4, 4, 3), np.uint8)
    images[:, :, 0] = 255  # a bright left column
    flipped = torch.cat(list(FaceBatches(images, 20, hflip=True).epoch(0)))[:, 0, 0, 3] > 0
    assert 60 < flipped.sum() < 140


def memmapped(tmp_path, images):
    np.save(tmp_path / "cache.npy", images)
    return np.load(tmp_path / "cache.npy", mmap_mode="r")


@pytest.mark.parametrize("weighted", [False, True], ids=["shuffled", "balanced-draw"])
def test_cpu_batches_from_a_memmap_are_the_in_memory_arrays_bit_for_bit(tmp_path, weighted):
    images = np.random.default_rng(0).integers(0, 256, (48, 8, 8, 3), dtype=np.uint8)
    weights = np.linspace(1, 5, 48) / np.linspace(1, 5, 48).sum() if weighted else None
    kwargs = dict(batch_size=4, seed=5, hflip=True, weights=weights, labels=np.arange(48) % 6, world_size=2)
    mapped = memmapped(tmp_path, images)
    for rank in (0, 1):
        shared = FaceBatches(mapped, rank=rank, **kwargs)
        own = FaceBatches(images.copy(), rank=rank, **kwargs)
        for epoch in range(2):
            for (x, y), (x2, y2) in zip(shared.labelled_epoch(epoch, start=1), own.labelled_epoch(epoch, start=1)):
                assert torch.equal(x, x2) and torch.equal(y, y2)
    assert np.array_equal(np.load(tmp_path / "cache.npy"), images)  # flips never wrote into the map


def test_cpu_batches_read_the_memmap_without_copying_it_whole(tmp_path, monkeypatch):
    import tracemalloc

    images = np.random.default_rng(1).integers(0, 256, (400, 16, 16, 3), dtype=np.uint8)
    mapped = memmapped(tmp_path, images)
    full = mapped.nbytes

    def refuse_whole(convert):
        def guarded(a, *args, **kwargs):
            assert not (hasattr(a, "shape") and a.shape and a.shape[0] == len(images)), "copied the whole set"
            return convert(a, *args, **kwargs)
        return guarded
    for name in ("array", "require", "ascontiguousarray", "copy"):
        monkeypatch.setattr(np, name, refuse_whole(getattr(np, name)))
    monkeypatch.setattr(torch, "from_numpy", refuse_whole(torch.from_numpy))
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        batches = FaceBatches(mapped, batch_size=8, seed=2, hflip=True)
        assert isinstance(batches.images, np.memmap) and np.shares_memory(batches.images, mapped)
        n = sum(len(x) for x in batches.epoch(0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == len(images)
    assert peak < full / 4, (peak, full)  # a few batches' worth, not the 300 KB set


def test_a_cpu_run_trains_from_the_cached_folders_memmap(tmp_path):
    from facegan.config import TrainConfig
    from facegan.data.images import training_batches, training_images
    from facegan.training.distributed import Dist

    write_images(tmp_path / "faces", 12, size=(32, 32))
    cfg = TrainConfig(data="folder", data_dir=str(tmp_path / "faces"), cache_dir=str(tmp_path / "cache"),
                      image_size=32, batch_size=4)
    images = training_images(cfg, progress=False, log=lambda *a: None)
    batches = training_batches(cfg, images, torch.device("cpu"), Dist(), log=lambda *a: None)
    assert isinstance(batches.images, np.memmap) and batches.images.filename == images.filename
    assert len(list(batches.epoch(0))) == 3


def test_batch_larger_than_dataset_is_refused():
    with pytest.raises(DataError, match="batch_size=8"):
        FaceBatches(np.zeros((5, 4, 4, 3), np.uint8), batch_size=8)


def test_celeba_download_failure_is_one_facegan_error(tmp_path, monkeypatch):
    from facegan.config import TrainConfig
    from facegan.data import celeba
    from facegan.data.images import training_images

    def unreachable(**kwargs):
        raise DataError("could not reach https://example.invalid/x.zip; pass zip_path=...")
    monkeypatch.setattr(celeba, "download_extract", unreachable)
    with pytest.raises(DataError, match="zip_path"):
        training_images(TrainConfig(data="celeba", data_dir=str(tmp_path)))


# ---------------------------------------------------------------- odd image modes

GREY = TRANSPARENT_BACKGROUND


def decode_file(tmp_path, image, name="x.png", **save_args):
    """What load_rgb makes of a square `image` once saved as `name`, at its own size."""
    path = tmp_path / name
    image.save(path, **save_args)
    return load_rgb(path, image.width)


def palette_image():
    """2x2 palette image: left column index 0 (red), right column index 1 (green)."""
    image = Image.new("P", (2, 2))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.putpixel((1, 1), 1)
    return image


@pytest.mark.parametrize("image, expected", [
    (Image.new("L", (4, 4), 200), (200, 200, 200)),
    (Image.new("1", (4, 4), 1), (255, 255, 255)),
    (Image.new("LA", (4, 4), (200, 255)), (200, 200, 200)),
    (Image.new("LA", (4, 4), (200, 0)), GREY),
    (Image.new("RGBA", (4, 4), (255, 0, 0, 255)), (255, 0, 0)),
    (Image.new("RGBA", (4, 4), (255, 0, 0, 0)), GREY),  # convert("RGB") would give pure red
], ids=["L", "1", "LA-opaque", "LA-clear", "RGBA-opaque", "RGBA-clear"])
def test_uniform_modes_decode_to_their_rgb(tmp_path, image, expected):
    pixels = decode_file(tmp_path, image)
    assert pixels.shape == (4, 4, 3) and pixels.dtype == np.uint8
    assert (pixels == expected).all()


def test_half_transparent_rgba_is_blended_with_the_background(tmp_path):
    pixels = decode_file(tmp_path, Image.new("RGBA", (4, 4), (255, 0, 0, 128))).astype(int)
    alpha = 128 / 255
    expected = [255 * alpha + GREY[0] * (1 - alpha), GREY[1] * (1 - alpha), GREY[2] * (1 - alpha)]
    assert np.abs(pixels - expected).max() <= 1


@pytest.mark.parametrize("save_args, left", [
    ({}, (255, 0, 0)),
    ({"transparency": 0}, GREY),  # index 0 marked transparent in the PNG's tRNS chunk
], ids=["P", "P-transparency"])
def test_palette_images_use_palette_colours_and_transparency(tmp_path, save_args, left):
    pixels = decode_file(tmp_path, palette_image(), **save_args)
    assert (pixels[:, 0] == left).all()
    assert (pixels[:, 1] == (0, 255, 0)).all()


def test_cmyk_jpeg_decodes_to_its_rgb_colour(tmp_path):
    cmyk_red = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    pixels = decode_file(tmp_path, cmyk_red, "x.jpg", quality=95).astype(int)
    assert np.abs(pixels - (255, 0, 0)).max() <= 8  # JPEG is lossy, but red stays red


def grey16_quadrants() -> np.ndarray:
    return np.array([[0, 32768], [65535, 10 * 257]], np.uint16).repeat(2, 0).repeat(2, 1)


GREY16_AS_8BIT = np.array([[0, 128], [255, 10]]).repeat(2, 0).repeat(2, 1)


def test_16bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    image = Image.fromarray(grey16_quadrants())
    pixels = decode_file(tmp_path, image)
    assert Image.open(tmp_path / "x.png").mode == "I;16"  # really a 16-bit file
    assert (pixels == GREY16_AS_8BIT[..., None]).all()  # 32768 -> 128, not 255


@pytest.mark.parametrize("mode, dtype", [("I;16B", ">u2"), ("I;16L", "<u2"), ("I", "<i4")])
def test_other_wide_greyscale_modes_are_scaled(mode, dtype):
    # Not reachable through PNG on this Pillow (it opens 16-bit PNGs as I;16), but TIFFs
    # and older Pillows give these; PIL's own convert("RGB") saturates them.
    image = Image.frombytes(mode, (4, 4), grey16_quadrants().astype(dtype).tobytes())
    assert (np.asarray(to_rgb(image)) == GREY16_AS_8BIT[..., None]).all()


def png_16bit_rgb(pixel: tuple, side: int = 4) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand: PIL cannot save one."""
    row = b"\0" + struct.pack(">3H", *pixel) * side  # filter byte 0, then the samples
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * side)) + chunk(b"IEND", b""))


def test_16bit_rgb_png_keeps_its_colour(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_16bit_rgb((32768, 0, 65535)))
    assert (load_rgb(path, 4) == (128, 0, 255)).all()


def claiming_huge_size(jpeg: bytes) -> bytes:
    """The JPEG with its frame header saying 60000x60000: two bad bytes make a 'bomb'."""
    frame = jpeg.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height, width
    return jpeg[:frame] + (60000).to_bytes(2, "big") * 2 + jpeg[frame + 4:]


@pytest.mark.parametrize("make_broken", [
    lambda good_jpeg, good_png: ("cut.jpg", good_jpeg[:len(good_jpeg) // 2]),
    lambda good_jpeg, good_png: ("cut.png", good_png[:len(good_png) // 2]),
    lambda good_jpeg, good_png: ("text.png", b"just some notes, named like an image"),
    lambda good_jpeg, good_png: ("huge.jpg", claiming_huge_size(good_jpeg)),
], ids=["truncated-jpeg", "truncated-png", "text-as-png", "huge-size-header"])
def test_cache_counts_broken_files_as_unreadable(tmp_path, make_broken):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES  # nobody switched truncated loading on globally
    folder = write_images(tmp_path / "faces", 3, size=(64, 64))
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(noise).save(jpeg, format="JPEG")
    Image.fromarray(noise).save(png, format="PNG")
    name, data = make_broken(jpeg.getvalue(), png.getvalue())
    (folder / name).write_bytes(data)
    said = []
    arr = cached_image_array(folder, 32, tmp_path / "cache", progress=False, log=said.append)
    assert arr.shape == (3, 32, 32, 3)
    assert said == [f"skipped 1 unreadable image(s) of 4 in {folder.resolve()}"]
