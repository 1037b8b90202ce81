"""Download a file over HTTP resumably, atomically and verified.

Bytes go to `<dest>.part` under a progress bar; a cut transfer resumes with an
HTTP Range request (automatically a few times, then on the next call), and the
finished file is checked (sha256 if given, else zip validity for a .zip) before
it takes its final name.  Every failure a user can fix (no network, HTTP
errors, a checksum mismatch, a full disk) raises `facegan.errors.DataError`
with a one-line message.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..utils.bars import progress_bar
from ._files import _data_error, _disk_errors, _normalise_sha256, _one_line, file_sha256
from .unzip import verify_zip

__all__ = ["download", "file_sha256"]

# Pause between automatic resume attempts, so a flapping server gets a breather.
RETRY_DELAY_S = 1.0

_ALTERNATIVES = (
    "pass zip_path=... (CLI: --zip) to use a local copy of the zip, "
    "or data_dir=... (CLI: --data-dir) pointing at an already-extracted folder"
)


class _Interrupted(Exception):
    """A transfer that stopped early; the .part file holds what did arrive."""

    def __init__(self, received, total, reason):
        super().__init__(reason)
        self.received, self.total, self.reason = received, total, reason


def _open_url(url: str, offset: int, timeout: float):
    """Open url from byte `offset`; None means the server has nothing past it (416)."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            return None
        raise _data_error(
            f"could not download {url} (HTTP {exc.code} {exc.reason}); {_ALTERNATIVES}"
        ) from None
    except (http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _data_error(f"could not reach {url} ({reason}); {_ALTERNATIVES}") from None
    except ValueError as exc:
        raise _data_error(f"{url!r} is not a usable URL ({exc}); {_ALTERNATIVES}") from None


def _header_int(response, name):
    value = response.headers.get(name)
    return int(value) if value and value.strip().isdigit() else None


def _parse_content_range(value):
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (value or "").strip())
    if not match:
        return None, None
    total = None if match[2] == "*" else int(match[2])
    return int(match[1]), total


def _body_span(response, offset: int, part: Path):
    """(first byte the body holds, file's total size or None)."""
    length = _header_int(response, "Content-Length")
    if not (offset and response.status == 206):
        # A 200 is the whole file, even when we asked for a range: start over.
        return 0, length
    start, total = _parse_content_range(response.headers.get("Content-Range"))
    if start != offset:
        part.unlink()  # a range we did not ask for cannot be spliced on
        raise _Interrupted(0, total, f"server sent bytes from {start}, not {offset}")
    if total is None and length is not None:
        total = offset + length
    return offset, total


def _copy_body(response, out, bar, chunk_size):
    """Copy the body to out; return why it stopped early, or None at a clean end."""
    while True:
        try:
            chunk = response.read(chunk_size)
        except (http.client.HTTPException, OSError) as exc:
            return _one_line(exc) or type(exc).__name__
        if not chunk:
            return None
        out.write(chunk)
        bar.update(len(chunk))


def _stream_to_part(response, part: Path, start, total, chunk_size, progress) -> None:
    mode = "ab" if start else "wb"
    bar = progress_bar(total=total, initial=start, unit="B", unit_scale=True,
               unit_divisor=1024, desc=part.name.removesuffix(".part"), disable=not progress)
    with open(part, mode) as out, bar:
        reason = _copy_body(response, out, bar, chunk_size)
        out.flush()
        os.fsync(out.fileno())  # what we keep for a resume must really be on disk
    received = part.stat().st_size
    # http.client returns short reads silently when the peer hangs up early,
    # so the byte count is the only reliable sign of a cut transfer.
    if reason is None and total is not None and received < total:
        reason = "connection closed early"
    if reason is not None:
        raise _Interrupted(received, total, reason)


def _fetch_once(url, part: Path, chunk_size, timeout, progress) -> None:
    offset = part.stat().st_size if part.exists() else 0
    response = _open_url(url, offset, timeout)
    if response is None:
        return  # 416: part is complete or wrong; verification decides which
    with response:
        start, total = _body_span(response, offset, part)
        _stream_to_part(response, part, start, total, chunk_size, progress)


def _fetch_with_retries(url, part: Path, chunk_size, timeout, progress, retries) -> None:
    for attempt in range(retries + 1):
        try:
            return _fetch_once(url, part, chunk_size, timeout, progress)
        except _Interrupted as cut:
            if attempt == retries:
                total = cut.total if cut.total is not None else "an unknown number of"
                raise _data_error(
                    f"download interrupted at {cut.received} of {total} bytes of {url} "
                    f"({cut.reason}, {retries} automatic resume(s) tried); the partial "
                    f"file {part} is kept: run the same command again to resume from it"
                ) from None
            time.sleep(RETRY_DELAY_S)


def _is_valid_zip(path: Path) -> bool:
    try:
        verify_zip(path)
    except DataError:
        return False
    return True


def _is_intact(path: Path, expected_sha256) -> bool:
    """Whether an existing file can stand in for a download: sha256 if known, else zip validity."""
    if expected_sha256:
        return file_sha256(path) == expected_sha256
    return path.suffix.lower() != ".zip" or _is_valid_zip(path)


def _verify_part(part: Path, dest: Path, expected_sha256, url) -> None:
    if expected_sha256:
        got = file_sha256(part)
        if got != expected_sha256:
            part.unlink(missing_ok=True)
            dest.unlink(missing_ok=True)
            raise _data_error(
                f"checksum mismatch for {dest}: expected sha256 {expected_sha256}, "
                f"got {got}; the file was deleted, check the sha256 and the URL"
            )
    elif dest.suffix.lower() == ".zip" and not _is_valid_zip(part):
        part.unlink(missing_ok=True)
        raise _data_error(
            f"{url} did not deliver a valid zip (corrupt or truncated); the file "
            "was deleted, run again or pass zip_path=... to use a local copy"
        )


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; other systems lack the call.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def download(url, dest, sha256=None, chunk_size=1 << 20, timeout=30, progress=True,
             retries=3) -> Path:
    """Download `url` to `dest` resumably and atomically; return dest.

    Bytes go to `dest.part`, resumed with an HTTP Range request when it
    exists (a server that ignores Range makes it start over from zero).  A cut
    transfer is resumed up to `retries` times, then reported with the .part
    kept for the next call; a full disk is reported at once, also keeping it.
    The finished file is checked (sha256 if given, else zip validity for a
    .zip) and only then renamed to dest.  An existing dest that passes the
    same check is returned without any request.
    """
    dest = Path(dest)
    expected = _normalise_sha256(sha256)
    if dest.is_file() and _is_intact(dest, expected):
        return dest
    part = dest.with_name(dest.name + ".part")
    # The .part survives a full disk: what it holds is a clean prefix of the file
    # (bytes land in order), so once space is freed the next call resumes from it.
    disk_full_fix = (f"free some space and run again to resume from {part}, or delete it "
                     "and pass another data_dir (CLI: --data-dir)")
    with _disk_errors(dest, disk_full_fix):
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch_with_retries(url, part, chunk_size, timeout, progress, retries)
        _verify_part(part, dest, expected, url)
        os.replace(part, dest)
        _fsync_dir(dest.parent)
    return dest

