"""Tests for facegan/data/unzip.py: corrupt and hostile zips are refused, and extraction is
atomic, idempotent and never replaces what it did not put there."""

import errno
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import helper
from facegan.data import celeba, unzip
from facegan.errors import DataError
from tests.conftest import COURSE_FOLDER, N_COURSE_IMAGES, build_zip, course_zip_with, image_count

# --------------------------------------------------------------------------
# Corrupt zips
# --------------------------------------------------------------------------


def test_truncated_zip_is_refused(tmp_path, course_zip):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(course_zip.read_bytes()[: course_zip.stat().st_size // 2])
    with pytest.raises(DataError, match="not a valid zip"):
        unzip.verify_zip(truncated)
    with pytest.raises(DataError, match="not a valid zip"):
        celeba.download_extract(data_dir=tmp_path / "data", zip_path=truncated)


def test_flipped_bytes_are_refused(tmp_path, course_zip):
    data = bytearray(course_zip.read_bytes())
    for offset in range(200, 260):  # inside the first member's compressed data
        data[offset] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a valid zip"):
        unzip.verify_zip(corrupt)
    with pytest.raises(DataError, match="not a valid zip"):
        unzip.safe_extract(corrupt, tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*.jpg"))


# --------------------------------------------------------------------------
# Hostile zips
# --------------------------------------------------------------------------


def _symlink_zip(path: Path) -> Path:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, "/etc/passwd")
        archive.writestr("fine.txt", b"fine")
    return path


@pytest.mark.parametrize("bad_name, reason", [
    ("../evil.txt", "'..'"),
    ("/tmp/evil.txt", "absolute path"),
    ("C:/evil.txt", "drive letter"),
])
def test_hostile_member_names_are_refused(tmp_path, bad_name, reason):
    archive = build_zip(tmp_path / "hostile.zip", {"fine.txt": b"fine", bad_name: b"evil"})
    target = tmp_path / "nest" / "out"
    with pytest.raises(DataError, match=reason):
        unzip.safe_extract(archive, target)
    assert not target.exists()
    assert not [p for p in tmp_path.rglob("*") if p.name in ("evil.txt", "fine.txt")]


def test_symlink_member_is_refused(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(DataError, match="symbolic link"):
        unzip.safe_extract(_symlink_zip(tmp_path / "link.zip"), target)
    assert not target.exists()


def test_zip_bomb_is_refused_by_ratio(tmp_path):
    bomb = build_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(4 << 20)})
    with pytest.raises(DataError, match="zip bomb"):
        unzip.safe_extract(bomb, tmp_path / "out", max_ratio=50)
    assert not (tmp_path / "out").exists()


def test_many_members_just_under_ratio_threshold_are_refused_as_a_whole(tmp_path):
    # Each member is exactly RATIO_CHECK_MIN_BYTES of zeros, so the
    # per-member test never looks at it; 100 MiB from ~100 KB must still be refused.
    size = unzip.RATIO_CHECK_MIN_BYTES
    zeros = bytes(size)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(100):
            archive.writestr(f"part{i:03d}.bin", zeros)
    assert bomb.stat().st_size < 300_000
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="zip bomb") as caught:
        unzip.safe_extract(bomb, target)
    message = str(caught.value)
    assert "\n" not in message and str(bomb) in message and "trusted source" in message
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_incompressible_archive_over_ratio_threshold_is_extracted(tmp_path):
    # The course zip's shape: many small JPEG-like members that barely compress.
    rng = np.random.default_rng(0)
    members = {f"{COURSE_FOLDER}/{i}.jpg": rng.bytes(20_000) for i in range(80)}
    archive = build_zip(tmp_path / "course-like.zip", members)
    assert sum(len(data) for data in members.values()) > unzip.RATIO_CHECK_MIN_BYTES
    unzip.safe_extract(archive, tmp_path / "out")
    assert image_count(tmp_path / "out" / COURSE_FOLDER) == 80


def test_archive_over_size_cap_is_refused(tmp_path, course_zip):
    with pytest.raises(DataError, match="cap"):
        unzip.safe_extract(course_zip, tmp_path / "out", max_total_bytes=1000)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", [".extracted-ok", ".extracting-abc/x.txt", ".replaced-1/x"])
def test_members_with_reserved_names_are_refused(tmp_path, name):
    archive = build_zip(tmp_path / "forged.zip", {name: b'{"entries": ["keep"]}'})
    with pytest.raises(DataError, match="reserves"):
        unzip.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------
# Extracting into place: atomic, idempotent, never over what it did not make
# --------------------------------------------------------------------------


def test_concurrent_extractions_into_one_target_all_succeed(tmp_path, course_zip, monkeypatch):
    # Runs started together on one data folder each prepare the data. The later ones
    # must wait for the first and then find the work done, not sweep away the first's
    # staging folder or trip over its renames.
    target = tmp_path / "data"
    extracting, calls, errors = threading.Event(), [], []
    extract_members = unzip._extract_members

    def slow_extract_members(*args):
        calls.append(threading.current_thread().name)
        extracting.set()
        time.sleep(0.5)
        extract_members(*args)

    def extract():
        try:
            unzip.safe_extract(course_zip, target)
        except Exception as exc:  # noqa: BLE001 (reported by the assert below)
            errors.append(exc)

    monkeypatch.setattr(unzip, "_extract_members", slow_extract_members)
    first = threading.Thread(target=extract, name="first")
    first.start()
    assert extracting.wait(10)
    # Two waiters: both wake holding the lock file the first removed on its way out.
    waiters = [threading.Thread(target=extract, name=f"waiter {i}") for i in range(2)]
    for thread in waiters:
        thread.start()
    for thread in (first, *waiters):
        thread.join()
    assert errors == []
    assert calls == ["first"]
    assert image_count(target / COURSE_FOLDER) == N_COURSE_IMAGES
    assert not list(target.glob(".extracting-*"))


def test_safe_extract_is_idempotent_and_keeps_neighbours(tmp_path, course_zip, monkeypatch):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    unzip.safe_extract(course_zip, target)
    assert image_count(target / COURSE_FOLDER) == N_COURSE_IMAGES
    assert (target / "notes.txt").read_text() == "mine"
    assert not list(target.glob(".extracting-*"))

    monkeypatch.setattr(unzip, "_extract_members",
                        lambda *a, **k: pytest.fail("extraction re-ran"))
    unzip.safe_extract(course_zip, target)


def test_extraction_refuses_to_replace_folders_it_did_not_create(tmp_path):
    # A zip holding keep/readme.txt must leave the user's own data/keep alone.
    archive = course_zip_with(tmp_path / "course.zip", {"keep/readme.txt": b"zip's"})
    data_dir = tmp_path / "data"
    (data_dir / "keep").mkdir(parents=True)
    (data_dir / "keep" / "important.txt").write_text("precious")
    with pytest.raises(helper.DataError) as caught:
        helper.download_extract(data_dir=data_dir, zip_path=archive, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert str(data_dir / "keep") in message and "--data-dir" in message
    assert (data_dir / "keep" / "important.txt").read_text() == "precious"
    assert sorted(p.name for p in data_dir.iterdir()) == ["keep"]  # nothing written
    assert sorted(p.name for p in (data_dir / "keep").iterdir()) == ["important.txt"]


def test_reextracting_a_changed_zip_replaces_only_its_own_entries(tmp_path):
    target = tmp_path / "data"
    first = course_zip_with(tmp_path / "v1.zip", {"cache/a.txt": b"v1"})
    unzip.safe_extract(first, target)
    (target / "mine").mkdir()
    (target / "mine" / "notes.txt").write_text("mine")
    # A changed course zip may replace what the first extraction made...
    second = course_zip_with(tmp_path / "v2.zip", {"cache/b.txt": b"v2"})
    unzip.safe_extract(second, target)
    assert sorted(p.name for p in (target / "cache").iterdir()) == ["b.txt"]
    assert image_count(target / COURSE_FOLDER) == N_COURSE_IMAGES
    # ...but never what the user put there.
    third = course_zip_with(tmp_path / "v3.zip", {"mine/readme.txt": b"v3"})
    with pytest.raises(DataError, match="mine"):
        unzip.safe_extract(third, target)
    assert sorted(p.name for p in (target / "mine").iterdir()) == ["notes.txt"]


def test_rerun_after_crash_mid_swap_may_replace_its_own_entries(tmp_path, course_zip,
                                                                 monkeypatch):
    target = tmp_path / "data"
    archive = course_zip_with(tmp_path / "two.zip", {"zz/readme.txt": b"second entry"})
    real_replace = unzip.os.replace

    def crash_before_second_entry(src, dst):
        if Path(dst) == target / "zz":
            raise KeyboardInterrupt  # the process dies between the two entries' renames
        real_replace(src, dst)

    monkeypatch.setattr(unzip.os, "replace", crash_before_second_entry)
    with pytest.raises(KeyboardInterrupt):
        unzip.safe_extract(archive, target)
    monkeypatch.setattr(unzip.os, "replace", real_replace)
    assert (target / "processed_celeba_small").exists() and not (target / "zz").exists()
    unzip.safe_extract(archive, target)  # its own half-finished output is not a clash
    assert (target / "zz" / "readme.txt").read_bytes() == b"second entry"
    assert image_count(target / COURSE_FOLDER) == N_COURSE_IMAGES


def test_disk_full_during_extraction_is_one_line_and_leaves_no_staging(
        tmp_path, course_zip, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(unzip.shutil, "copyfileobj", disk_full)
    target = tmp_path / "data"
    with pytest.raises(DataError, match="disk full") as caught:
        unzip.safe_extract(course_zip, target)
    assert "\n" not in str(caught.value)
    assert list(target.iterdir()) == []
