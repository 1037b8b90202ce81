"""Tests for facegan/data/celeba.py and helper.py, the course's thin entry point over it:
the course zip fetched and extracted in one call, and the crops built from full CelebA."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import facegan.data.images
import facegan.errors
import helper
from facegan.data import celeba, download, unzip
from facegan.errors import DataError
from tests.conftest import COURSE_FOLDER, N_COURSE_IMAGES, ROOT, build_zip, course_zip_with, image_count, noise_jpeg

# --------------------------------------------------------------------------
# The course zip in one call
# --------------------------------------------------------------------------


def test_full_download_and_extract(tmp_path, server, course_zip):
    digest = download.file_sha256(course_zip)
    folder = celeba.download_extract(data_dir=tmp_path / "data", url=server.url,
                                     sha256=digest, progress=False)
    assert folder == tmp_path / "data" / COURSE_FOLDER
    assert image_count(folder) == N_COURSE_IMAGES
    assert download.file_sha256(tmp_path / "data" / "celeba.zip") == digest
    assert not (tmp_path / "data" / "celeba.zip.part").exists()
    assert "Range" not in server.requests[0]


def test_second_call_makes_no_request_and_does_not_reextract(tmp_path, server, monkeypatch):
    data_dir = tmp_path / "data"
    folder = celeba.download_extract(data_dir=data_dir, url=server.url, progress=False)
    first_image = next(folder.iterdir())
    mtime = first_image.stat().st_mtime_ns
    requests_before = len(server.requests)

    def must_not_run(*args, **kwargs):
        raise AssertionError("extraction re-ran")

    monkeypatch.setattr(unzip, "_extract_members", must_not_run)
    assert celeba.download_extract(data_dir=data_dir, url=server.url, progress=False) == folder
    assert len(server.requests) == requests_before
    assert first_image.stat().st_mtime_ns == mtime


def test_existing_unmarked_folder_is_used_without_download(tmp_path, server, capsys):
    folder = tmp_path / "data" / COURSE_FOLDER
    folder.mkdir(parents=True)
    (folder / "1.jpg").write_bytes(noise_jpeg(0))
    assert celeba.download_extract(data_dir=tmp_path / "data", url=server.url) == folder
    assert server.requests == []
    assert "not extracted by this helper" in capsys.readouterr().err


def test_local_zip_path_needs_no_server(tmp_path, course_zip):
    folder = celeba.download_extract(data_dir=tmp_path / "data", zip_path=course_zip,
                                     url="http://127.0.0.1:9/never-used.zip")
    assert image_count(folder) == N_COURSE_IMAGES
    assert not (tmp_path / "data" / "never-used.zip").exists()


def test_zip_without_expected_folder_is_reported(tmp_path):
    other = build_zip(tmp_path / "other.zip", {"other/readme.txt": b"hi"})
    with pytest.raises(DataError, match="holds no images"):
        celeba.download_extract(data_dir=tmp_path / "data", zip_path=other)


# --------------------------------------------------------------------------
# prepare_celeba
# --------------------------------------------------------------------------


def _celeba_frame(path: Path) -> None:
    """A 178x218 'aligned CelebA' frame: blue, with a red 108x108 face box centred."""
    image = Image.new("RGB", (178, 218), (0, 0, 255))
    left, top = (178 - 108) // 2, (218 - 108) // 2
    ImageDraw.Draw(image).rectangle((left, top, left + 107, top + 107), fill=(255, 0, 0))
    image.save(path, quality=100, subsampling=0)


@pytest.fixture
def celeba_src(tmp_path) -> Path:
    src = tmp_path / "img_align_celeba"
    (src / "nested").mkdir(parents=True)
    for name in ("000001.jpg", "000002.jpg", "nested/000003.jpg"):
        _celeba_frame(src / name)
    good = (src / "000001.jpg").read_bytes()
    (src / "000004.jpg").write_bytes(good[:300])  # truncated JPEG
    (src / "notes.txt").write_text("not an image")
    Image.new("RGB", (80, 90)).save(src / "000005.jpg")  # too small for a 108 crop
    return src


def test_prepare_celeba_crops_centre_and_counts(tmp_path, celeba_src):
    dst = tmp_path / "crops"
    counts = celeba.prepare_celeba(celeba_src, dst, size=32, progress=False)
    assert counts == {"written": 3, "skipped_existing": 0, "unreadable": 2, "too_small": 1}
    outputs = sorted(dst.glob("*.jpg"))
    assert [p.name for p in outputs] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    for path in outputs:
        pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert pixels.shape == (32, 32, 3)
        # An off-centre crop would pull in a blue strip along one edge.
        assert (pixels[..., 0] > 200).all() and (pixels[..., 2] < 60).all()
    assert not list(dst.glob(".*.tmp"))


def test_prepare_celeba_rerun_skips_existing(tmp_path, celeba_src):
    dst = tmp_path / "crops"
    celeba.prepare_celeba(celeba_src, dst, progress=False)
    mtime = (dst / "000001.jpg").stat().st_mtime_ns
    counts = celeba.prepare_celeba(celeba_src, dst, progress=False)
    assert counts["written"] == 0 and counts["skipped_existing"] == 3
    assert (dst / "000001.jpg").stat().st_mtime_ns == mtime
    assert Image.open(dst / "000001.jpg").size == (64, 64)


def test_prepare_celeba_missing_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        celeba.prepare_celeba(tmp_path / "nope", tmp_path / "out", progress=False)


# --------------------------------------------------------------------------
# helper.py: the course's entry point, functions and command line
# --------------------------------------------------------------------------


def test_helper_reexports_the_package_code():
    homes = {"download": download, "file_sha256": download, "verify_zip": unzip, "safe_extract": unzip,
             "download_extract": celeba, "prepare_celeba": celeba, "COURSE_URL": celeba,
             "DEFAULT_FOLDER": celeba}
    for name, home in homes.items():
        assert getattr(helper, name) is getattr(home, name)
    # One error class for the whole project: catching helper.DataError catches the package's.
    assert helper.DataError is facegan.errors.DataError is facegan.data.images.DataError
    assert issubclass(helper.DataError, ValueError)
    assert celeba.DEFAULT_FOLDER == facegan.data.images.CELEBA_SUBDIR == COURSE_FOLDER


def test_helper_download_extract_from_local_zip(tmp_path, course_zip):
    folder = helper.download_extract(data_dir=tmp_path / "data", zip_path=course_zip,
                                     progress=False)
    assert folder == tmp_path / "data" / COURSE_FOLDER
    assert image_count(folder) == N_COURSE_IMAGES
    with pytest.raises(helper.DataError, match="not a valid zip"):
        helper.verify_zip(tmp_path / "data" / COURSE_FOLDER / "0.jpg")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "helper.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_help_works(tmp_path):
    result = _cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "download" in result.stdout and "prepare" in result.stdout


def test_cli_reports_data_error_as_one_line_and_exit_1(tmp_path):
    result = _cli("download", "--data-dir", "d", "--zip", "missing.zip", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_cli_download_from_local_zip_prints_the_folder(tmp_path, course_zip):
    result = _cli("download", "--data-dir", "d", "--zip", str(course_zip), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "d" / COURSE_FOLDER
    assert result.stdout.strip() == str(Path("d") / COURSE_FOLDER)
    assert image_count(folder) == N_COURSE_IMAGES


def test_cli_refuses_to_replace_folders_it_did_not_create(tmp_path, capsys):
    archive = course_zip_with(tmp_path / "course.zip", {"keep/readme.txt": b"zip's"})
    data_dir = tmp_path / "data"
    (data_dir / "keep").mkdir(parents=True)
    (data_dir / "keep" / "important.txt").write_text("precious")
    assert helper.main(["download", "--zip", str(archive), "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to extract") and err.count("\n") == 1
    assert (data_dir / "keep" / "important.txt").read_text() == "precious"

    result = _cli("download", "--zip", str(archive), "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert (data_dir / "keep" / "important.txt").read_text() == "precious"
    assert not (data_dir / COURSE_FOLDER).exists()


def test_package_module_stands_alone(tmp_path):
    # facegan.data.celeba is what an installed facegan uses: no helper.py, no plotting stack.
    code = ("import sys, facegan.data.celeba; "
            "print(sorted(m for m in ('helper', 'matplotlib') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
