"""Tests for facegan/data/download.py: resumable, verified downloads.

The real download code runs against a local HTTP server (conftest.py's `server`): a stdlib
ThreadingHTTPServer on 127.0.0.1 that serves a zip built here, honours Range requests,
records every request, and can be told to cut a transfer once or to ignore Range, so
resume paths run for real.
"""

import errno
import hashlib
import socket

import pytest

import helper
from facegan.data import celeba, download
from facegan.errors import DataError
from tests.conftest import COURSE_FOLDER


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAY_S", 0)


# --------------------------------------------------------------------------
# Resume and retry
# --------------------------------------------------------------------------


def test_resume_after_cut_sends_range_from_where_it_stopped(tmp_path, server):
    cut = len(server.payload) // 2
    server.cut_after = cut
    dest = tmp_path / "celeba.zip"
    with pytest.raises(DataError, match=f"interrupted at {cut} of {len(server.payload)} bytes"):
        download.download(server.url, dest, retries=0, progress=False)
    assert (tmp_path / "celeba.zip.part").stat().st_size == cut
    assert not dest.exists()

    download.download(server.url, dest, retries=0, progress=False)
    assert server.requests[1]["Range"] == f"bytes={cut}-"
    assert server.statuses == [200, 206]
    assert dest.read_bytes() == server.payload


def test_exhausted_retries_say_part_is_kept_and_rerun_resumes(tmp_path, server):
    # The message must tell the user the .part survives and how to resume it.
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
    dest = download.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert [r.get("Range") for r in server.requests] == [None, "bytes=1000-"]
    assert dest.read_bytes() == server.payload


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.ignore_range = True
    # Junk, not a prefix of the payload: appending to it would corrupt the file.
    (tmp_path / "celeba.zip.part").write_bytes(b"junk" * 100)
    dest = download.download(server.url, tmp_path / "celeba.zip",
                           sha256=hashlib.sha256(server.payload).hexdigest(), progress=False)
    assert server.requests[0]["Range"] == "bytes=400-"
    assert server.statuses == [200]
    assert dest.read_bytes() == server.payload


def test_complete_part_answered_416_is_verified_and_kept(tmp_path, server):
    (tmp_path / "celeba.zip.part").write_bytes(server.payload)
    dest = download.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert server.statuses == [416]
    assert dest.read_bytes() == server.payload


# --------------------------------------------------------------------------
# What is refused, in one line
# --------------------------------------------------------------------------


def test_wrong_sha256_is_refused_and_nothing_kept(tmp_path, server):
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="expected sha256 0{64}"):
        celeba.download_extract(data_dir=data_dir, url=server.url, sha256="0" * 64,
                                progress=False)
    assert not (data_dir / "celeba.zip").exists()
    assert not (data_dir / "celeba.zip.part").exists()
    assert not (data_dir / COURSE_FOLDER).exists()


def test_server_sending_corrupt_zip_is_refused_and_discarded(tmp_path, server):
    server.payload = server.payload[:-100]  # truncated: no end-of-archive record
    with pytest.raises(DataError, match="not .*valid zip"):
        download.download(server.url, tmp_path / "celeba.zip", progress=False)
    assert not list(tmp_path.glob("celeba.zip*"))


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


def test_http_404_gives_one_line_naming_url(tmp_path, server):
    url = server.url.replace("celeba.zip", "missing.zip")
    with pytest.raises(DataError, match="HTTP 404") as caught:
        celeba.download_extract(data_dir=tmp_path, url=url, progress=False)
    assert url in str(caught.value) and "\n" not in str(caught.value)


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
    monkeypatch.setattr(download, "open", FillingDisk(room).open, raising=False)
    dest = tmp_path / "celeba.zip"
    part = tmp_path / "celeba.zip.part"
    with pytest.raises(DataError) as caught:
        download.download(server.url, dest, chunk_size=4096, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert "disk full" in message and "free some space" in message and "data_dir" in message
    assert str(part) in message  # says where the partial file is, to resume or delete it
    assert not dest.exists()
    assert part.read_bytes() == server.payload[:room]  # a clean prefix, safe to resume from
    assert len(server.requests) == 1  # no retries into a full disk

    monkeypatch.delattr(download, "open")  # space freed
    download.download(server.url, dest, progress=False)
    assert server.requests[1]["Range"] == f"bytes={room}-"
    assert dest.read_bytes() == server.payload and not part.exists()
