"""Tests for facegan/data/celeba.py and helper.py, the course's thin entry point over it.

The real download/extract code runs against a local HTTP server.

The server is a stdlib ThreadingHTTPServer on 127.0.0.1 that serves a zip built
here, honours Range requests, records every request, and can be told to cut a
transfer once or to ignore Range, so resume paths run for real.
"""

import errno
import hashlib
import io
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import facegan.data.celeba as celeba
import facegan.data.images
from facegan.data.images import DataError

# helper.py lives at the repo root; put it on sys.path whatever the conftest does.
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import helper  # noqa: E402

FOLDER = "processed_celeba_small/celeba"
N_IMAGES = 5


# --------------------------------------------------------------------------
# Fixtures: a course-like zip and a server for it
# --------------------------------------------------------------------------


def _noise_jpeg(seed: int, side: int = 48) -> bytes:
    # Noise keeps the JPEGs (and so the zip) big enough that a cut lands mid-file.
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _build_zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def course_zip(tmp_path) -> Path:
    (tmp_path / "served").mkdir()
    members = {f"{FOLDER}/{i}.jpg": _noise_jpeg(i) for i in range(N_IMAGES)}
    return _build_zip(tmp_path / "served" / "celeba.zip", members)


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(celeba, "RETRY_DELAY_S", 0)


class ZipServer:
    """State shared with the handler: what to serve and how to misbehave."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.cut_after = None  # send this many bytes of the next body, then hang up
        self.ignore_range = False
        self.requests = []  # headers of every request, in order
        self.statuses = []
        self.url = None


def _requested_start(range_header):
    if not range_header or not range_header.startswith("bytes="):
        return None
    return int(range_header[len("bytes="):].split("-")[0])


def _make_handler(state: ZipServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append(dict(self.headers))
            if self.path != "/celeba.zip":
                return self._status_only(404)
            start = None if state.ignore_range else _requested_start(self.headers.get("Range"))
            if start is not None and start >= len(state.payload):
                return self._status_only(416, {"Content-Range": f"bytes */{len(state.payload)}"})
            self._send_body(start)

        def _status_only(self, code, headers=None):
            state.statuses.append(code)
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_body(self, start):
            body = state.payload[start or 0:]
            state.statuses.append(200 if start is None else 206)
            self.send_response(200 if start is None else 206)
            if start is not None:
                self.send_header("Content-Range",
                                 f"bytes {start}-{len(state.payload) - 1}/{len(state.payload)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None:
                # Promise the full length, deliver part of it, hang up: a dropped link.
                body, state.cut_after = body[:state.cut_after], None
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def server(course_zip):
    state = ZipServer(course_zip.read_bytes())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    # A short poll interval keeps shutdown() from costing half a second per test.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/celeba.zip"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _image_count(folder: Path) -> int:
    return sum(1 for path in folder.iterdir() if path.suffix == ".jpg")


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


def test_full_download_and_extract(tmp_path, server, course_zip):
    digest = celeba.file_sha256(course_zip)
    folder = celeba.download_extract(data_dir=tmp_path / "data", url=server.url,
                                     sha256=digest, progress=False)
    assert folder == tmp_path / "data" / FOLDER
    assert _image_count(folder) == N_IMAGES
    assert celeba.file_sha256(tmp_path / "data" / "celeba.zip") == digest
    assert not (tmp_path / "data" / "celeba.zip.part").exists()
    assert "Range" not in server.requests[0]


def test_resume_after_cut_sends_range_from_where_it_stopped(tmp_path, server):
    cut = len(server.payload) // 2
    server.cut_after = cut
    dest = tmp_path / "celeba.zip"
    with pytest.raises(DataError, match=f"interrupted at {cut} of {len(server.payload)} bytes"):
        celeba.download(server.url, dest, retries=0, progress=False)
    assert (tmp_path / "celeba.zip.part").stat().st_size == cut
    assert not dest.exists()

    celeba.download(server.url, dest, retries=0, progress=False)
    assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert server.statuses == [200, 206]
    assert dest.read_bytes() == server.payload


def test_exhausted_retries_say_part_is_kept_and_rerun_resumes(tmp_path, server):
    # Issue 18: the message must tell the user the .part survives and how to resume it.
    cut = len(server.payload) // 3
    server.cut_after = cut
    dest = tmp_path / "celeba.zip"
    part = tmp_path / "celeba.zip.part"
    with pytest.raises(DataError) as caught:
        helper.download(server.url, dest, retries=0, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"download interrupted at {cut} of {len(server.payload)} bytes" in message
    assert f"{part} is kept" in message
    assert "run the same command again to resume" in message
    assert part.stat().st_size == cut

    helper.download(server.url, dest, retries=0, progress=False)  # the same call again
    assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert dest.read_bytes() == server.payload and not part.exists()


def test_single_call_retries_through_one_cut(tmp_path, server):
    server.cut_after = 1000
    dest = celeba.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert [r.get("Range") for r in server.requests] == [None, "bytes=1000-"]
    assert dest.read_bytes() == server.payload


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.ignore_range = True
    # Junk, not a prefix of the payload: appending to it would corrupt the file.
    (tmp_path / "celeba.zip.part").write_bytes(b"junk" * 100)
    dest = celeba.download(server.url, tmp_path / "celeba.zip",
                           sha256=hashlib.sha256(server.payload).hexdigest(), progress=False)
    assert server.requests[0]["Range"] == "bytes=400-"
    assert server.statuses == [200]
    assert dest.read_bytes() == server.payload


def test_complete_part_answered_416_is_verified_and_kept(tmp_path, server):
    (tmp_path / "celeba.zip.part").write_bytes(server.payload)
    dest = celeba.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert server.statuses == [416]
    assert dest.read_bytes() == server.payload


def test_second_call_makes_no_request_and_does_not_reextract(tmp_path, server, monkeypatch):
    data_dir = tmp_path / "data"
    folder = celeba.download_extract(data_dir=data_dir, url=server.url, progress=False)
    first_image = next(folder.iterdir())
    mtime = first_image.stat().st_mtime_ns
    requests_before = len(server.requests)

    def must_not_run(*args, **kwargs):
        raise AssertionError("extraction re-ran")

    monkeypatch.setattr(celeba, "_extract_members", must_not_run)
    assert celeba.download_extract(data_dir=data_dir, url=server.url, progress=False) == folder
    assert len(server.requests) == requests_before
    assert first_image.stat().st_mtime_ns == mtime


def test_wrong_sha256_is_refused_and_nothing_kept(tmp_path, server):
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="expected sha256 0{64}"):
        celeba.download_extract(data_dir=data_dir, url=server.url, sha256="0" * 64,
                                progress=False)
    assert not (data_dir / "celeba.zip").exists()
    assert not (data_dir / "celeba.zip.part").exists()
    assert not (data_dir / FOLDER).exists()


def test_server_sending_corrupt_zip_is_refused_and_discarded(tmp_path, server):
    server.payload = server.payload[:-100]  # truncated: no end-of-archive record
    with pytest.raises(DataError, match="not .*valid zip"):
        celeba.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert not list(tmp_path.glob("celeba.zip*"))


def test_existing_unmarked_folder_is_used_without_download(tmp_path, server, capsys):
    folder = tmp_path / "data" / FOLDER
    folder.mkdir(parents=True)
    (folder / "1.jpg").write_bytes(_noise_jpeg(0))
    assert celeba.download_extract(data_dir=tmp_path / "data", url=server.url) == folder
    assert server.requests == []
    assert "not extracted by this helper" in capsys.readouterr().err


def test_unreachable_url_gives_one_line_with_alternatives(tmp_path):
    with socket.socket() as probe:  # grab a free port, then leave it closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.zip"
    with pytest.raises(DataError) as caught:
        celeba.download_extract(data_dir=tmp_path, url=url, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert url in message and "zip_path" in message


class FillingDisk:
    """Opens .part files on a disk with room for `room` more bytes; other files as usual.

    Like a real full disk, the write that crosses the limit stores what fits, then fails.
    """

    def __init__(self, room: int):
        self.room = room

    def open(self, path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)
        return _SpaceLimitedFile(handle, self) if str(path).endswith(".part") else handle


class _SpaceLimitedFile:
    def __init__(self, handle, disk: FillingDisk):
        self._handle, self._disk = handle, disk

    def write(self, data):
        fits = bytes(data[:self._disk.room])
        self._handle.write(fits)
        self._disk.room -= len(fits)
        if len(fits) < len(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(fits)

    def __getattr__(self, name):  # flush, fileno, close: the real file's
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()


def test_disk_full_mid_download_keeps_part_and_next_call_resumes(tmp_path, server, monkeypatch):
    room = len(server.payload) // 3
    monkeypatch.setattr(celeba, "open", FillingDisk(room).open, raising=False)
    dest = tmp_path / "celeba.zip"
    part = tmp_path / "celeba.zip.part"
    with pytest.raises(DataError) as caught:
        celeba.download(server.url, dest, chunk_size=4096, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "disk full" in message and "free some space" in message and "data_dir" in message
    assert str(part) in message  # says where the partial file is, to resume or delete it
    assert not dest.exists()
    assert part.read_bytes() == server.payload[:room]  # a clean prefix, safe to resume from
    assert len(server.requests) == 1  # no retries into a full disk

    monkeypatch.delattr(celeba, "open")  # space freed
    celeba.download(server.url, dest, progress=False)
    assert server.requests[1]["Range"] == f"bytes={room}-"
    assert dest.read_bytes() == server.payload and not part.exists()


def test_http_404_gives_one_line_naming_url(tmp_path, server):
    url = server.url.replace("celeba.zip", "missing.zip")
    with pytest.raises(DataError, match="HTTP 404") as caught:
        celeba.download_extract(data_dir=tmp_path, url=url, progress=False)
    assert url in str(caught.value) and "\n" not in str(caught.value)


# --------------------------------------------------------------------------
# Local zips, corrupt zips, hostile zips
# --------------------------------------------------------------------------


def test_local_zip_path_needs_no_server(tmp_path, course_zip):
    folder = celeba.download_extract(data_dir=tmp_path / "data", zip_path=course_zip,
                                     url="http://127.0.0.1:9/never-used.zip")
    assert _image_count(folder) == N_IMAGES
    assert not (tmp_path / "data" / "never-used.zip").exists()


def test_zip_without_expected_folder_is_reported(tmp_path):
    other = _build_zip(tmp_path / "other.zip", {"other/readme.txt": b"hi"})
    with pytest.raises(DataError, match="holds no images"):
        celeba.download_extract(data_dir=tmp_path / "data", zip_path=other)


def test_truncated_zip_is_refused(tmp_path, course_zip):
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(course_zip.read_bytes()[: course_zip.stat().st_size // 2])
    with pytest.raises(DataError, match="not a valid zip"):
        celeba.verify_zip(truncated)
    with pytest.raises(DataError, match="not a valid zip"):
        celeba.download_extract(data_dir=tmp_path / "data", zip_path=truncated)


def test_flipped_bytes_are_refused(tmp_path, course_zip):
    data = bytearray(course_zip.read_bytes())
    for offset in range(200, 260):  # inside the first member's compressed data
        data[offset] ^= 0xFF
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a valid zip"):
        celeba.verify_zip(corrupt)
    with pytest.raises(DataError, match="not a valid zip"):
        celeba.safe_extract(corrupt, tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*.jpg"))


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
    archive = _build_zip(tmp_path / "hostile.zip", {"fine.txt": b"fine", bad_name: b"evil"})
    target = tmp_path / "nest" / "out"
    with pytest.raises(DataError, match=reason):
        celeba.safe_extract(archive, target)
    assert not target.exists()
    assert not [p for p in tmp_path.rglob("*") if p.name in ("evil.txt", "fine.txt")]


def test_symlink_member_is_refused(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(DataError, match="symbolic link"):
        celeba.safe_extract(_symlink_zip(tmp_path / "link.zip"), target)
    assert not target.exists()


def test_zip_bomb_is_refused_by_ratio(tmp_path):
    bomb = _build_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(4 << 20)})
    with pytest.raises(DataError, match="zip bomb"):
        celeba.safe_extract(bomb, tmp_path / "out", max_ratio=50)
    assert not (tmp_path / "out").exists()


def test_many_members_just_under_ratio_threshold_are_refused_as_a_whole(tmp_path):
    # Issue 18: each member is exactly RATIO_CHECK_MIN_BYTES of zeros, so the
    # per-member test never looks at it; 100 MiB from ~100 KB must still be refused.
    size = celeba.RATIO_CHECK_MIN_BYTES
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
        celeba.safe_extract(bomb, target)
    message = str(caught.value)
    assert "\n" not in message and str(bomb) in message and "trusted source" in message
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_incompressible_archive_over_ratio_threshold_is_extracted(tmp_path):
    # The course zip's shape: many small JPEG-like members that barely compress.
    rng = np.random.default_rng(0)
    members = {f"{FOLDER}/{i}.jpg": rng.bytes(20_000) for i in range(80)}
    archive = _build_zip(tmp_path / "course-like.zip", members)
    assert sum(len(data) for data in members.values()) > celeba.RATIO_CHECK_MIN_BYTES
    celeba.safe_extract(archive, tmp_path / "out")
    assert _image_count(tmp_path / "out" / FOLDER) == 80


def test_concurrent_extractions_into_one_target_all_succeed(tmp_path, course_zip, monkeypatch):
    # Runs started together on one data folder each prepare the data. The later ones
    # must wait for the first and then find the work done, not sweep away the first's
    # staging folder or trip over its renames.
    target = tmp_path / "data"
    extracting, calls, errors = threading.Event(), [], []
    extract_members = celeba._extract_members

    def slow_extract_members(*args):
        calls.append(threading.current_thread().name)
        extracting.set()
        time.sleep(0.5)
        extract_members(*args)

    def extract():
        try:
            celeba.safe_extract(course_zip, target)
        except Exception as exc:  # noqa: BLE001 (reported by the assert below)
            errors.append(exc)

    monkeypatch.setattr(celeba, "_extract_members", slow_extract_members)
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
    assert _image_count(target / FOLDER) == N_IMAGES
    assert not list(target.glob(".extracting-*"))


def test_archive_over_size_cap_is_refused(tmp_path, course_zip):
    with pytest.raises(DataError, match="cap"):
        celeba.safe_extract(course_zip, tmp_path / "out", max_total_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_safe_extract_is_idempotent_and_keeps_neighbours(tmp_path, course_zip, monkeypatch):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    celeba.safe_extract(course_zip, target)
    assert _image_count(target / FOLDER) == N_IMAGES
    assert (target / "notes.txt").read_text() == "mine"
    assert not list(target.glob(".extracting-*"))

    monkeypatch.setattr(celeba, "_extract_members",
                        lambda *a, **k: pytest.fail("extraction re-ran"))
    celeba.safe_extract(course_zip, target)


def _course_zip_with(path: Path, extra: dict) -> Path:
    members = {f"{FOLDER}/{i}.jpg": _noise_jpeg(i) for i in range(N_IMAGES)}
    return _build_zip(path, {**members, **extra})


def test_extraction_refuses_to_replace_folders_it_did_not_create(tmp_path):
    # Issue 18: a zip with keep/readme.txt used to delete data/keep wholesale.
    archive = _course_zip_with(tmp_path / "course.zip", {"keep/readme.txt": b"zip's"})
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


def test_cli_refuses_to_replace_folders_it_did_not_create(tmp_path, capsys):
    archive = _course_zip_with(tmp_path / "course.zip", {"keep/readme.txt": b"zip's"})
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
    assert not (data_dir / FOLDER).exists()


def test_reextracting_a_changed_zip_replaces_only_its_own_entries(tmp_path):
    target = tmp_path / "data"
    first = _course_zip_with(tmp_path / "v1.zip", {"cache/a.txt": b"v1"})
    celeba.safe_extract(first, target)
    (target / "mine").mkdir()
    (target / "mine" / "notes.txt").write_text("mine")
    # A changed course zip may replace what the first extraction made...
    second = _course_zip_with(tmp_path / "v2.zip", {"cache/b.txt": b"v2"})
    celeba.safe_extract(second, target)
    assert sorted(p.name for p in (target / "cache").iterdir()) == ["b.txt"]
    assert _image_count(target / FOLDER) == N_IMAGES
    # ...but never what the user put there.
    third = _course_zip_with(tmp_path / "v3.zip", {"mine/readme.txt": b"v3"})
    with pytest.raises(DataError, match="mine"):
        celeba.safe_extract(third, target)
    assert sorted(p.name for p in (target / "mine").iterdir()) == ["notes.txt"]


def test_rerun_after_crash_mid_swap_may_replace_its_own_entries(tmp_path, course_zip,
                                                                 monkeypatch):
    target = tmp_path / "data"
    archive = _course_zip_with(tmp_path / "two.zip", {"zz/readme.txt": b"second entry"})
    real_replace = celeba.os.replace

    def crash_before_second_entry(src, dst):
        if Path(dst) == target / "zz":
            raise KeyboardInterrupt  # the process dies between the two entries' renames
        real_replace(src, dst)

    monkeypatch.setattr(celeba.os, "replace", crash_before_second_entry)
    with pytest.raises(KeyboardInterrupt):
        celeba.safe_extract(archive, target)
    monkeypatch.setattr(celeba.os, "replace", real_replace)
    assert (target / "processed_celeba_small").exists() and not (target / "zz").exists()
    celeba.safe_extract(archive, target)  # its own half-finished output is not a clash
    assert (target / "zz" / "readme.txt").read_bytes() == b"second entry"
    assert _image_count(target / FOLDER) == N_IMAGES


@pytest.mark.parametrize("name", [".extracted-ok", ".extracting-abc/x.txt", ".replaced-1/x"])
def test_members_with_reserved_names_are_refused(tmp_path, name):
    archive = _build_zip(tmp_path / "forged.zip", {name: b'{"entries": ["keep"]}'})
    with pytest.raises(DataError, match="reserves"):
        celeba.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_disk_full_during_extraction_is_one_line_and_leaves_no_staging(
        tmp_path, course_zip, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(celeba.shutil, "copyfileobj", disk_full)
    target = tmp_path / "data"
    with pytest.raises(DataError, match="disk full") as caught:
        celeba.safe_extract(course_zip, target)
    assert "\n" not in str(caught.value)
    assert list(target.iterdir()) == []


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
    for name in ("download", "download_extract", "verify_zip", "safe_extract",
                 "prepare_celeba", "file_sha256", "COURSE_URL", "DEFAULT_FOLDER"):
        assert getattr(helper, name) is getattr(celeba, name)
    # One error class for the whole project: catching helper.DataError catches the package's.
    assert helper.DataError is celeba.DataError is facegan.data.images.DataError
    assert issubclass(helper.DataError, ValueError)
    assert celeba.DEFAULT_FOLDER == facegan.data.images.CELEBA_SUBDIR == FOLDER


def test_helper_download_extract_from_local_zip(tmp_path, course_zip):
    folder = helper.download_extract(data_dir=tmp_path / "data", zip_path=course_zip,
                                     progress=False)
    assert folder == tmp_path / "data" / FOLDER
    assert _image_count(folder) == N_IMAGES
    with pytest.raises(helper.DataError, match="not a valid zip"):
        helper.verify_zip(tmp_path / "data" / FOLDER / "0.jpg")



def _cli(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "helper.py"), *args],
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
    folder = tmp_path / "d" / FOLDER
    assert result.stdout.strip() == str(Path("d") / FOLDER)
    assert _image_count(folder) == N_IMAGES


def test_package_module_stands_alone(tmp_path):
    # facegan.data.celeba is what an installed facegan uses: no helper.py, no plotting stack.
    code = ("import sys, facegan.data.celeba; "
            "print(sorted(m for m in ('helper', 'matplotlib') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
