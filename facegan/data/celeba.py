"""Get the CelebA face crops for the face-generation project onto disk, safely.

The course ships its training data as one zip on S3.  This module downloads it
resumably and atomically (progress bar, HTTP Range resume, retries, sha256
check), verifies it, and extracts it without trusting the archive (path
traversal, links and zip bombs are refused).  For anyone holding the full
aligned CelebA instead, `prepare_celeba` rebuilds the same tight face crops
locally.  `facegan.data.images.celeba_folder` calls `download_extract` when a run asks
for data="celeba"; the course's helper.py at the repo root is a thin command
line over this module.

Every failure a user can cause or fix (no network, HTTP errors, a corrupt or
hostile zip, a checksum mismatch, a full disk, a missing folder) raises
`facegan.errors.DataError`, whose message is one line naming the problem and
the fix.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so extractions there don't wait for each other
    fcntl = None

from PIL import Image

from ..utils.atomic import atomic_open, atomic_write_text
from ..utils.bars import progress_bar
from ..config import IMAGE_EXTENSIONS
from ..errors import DataError

__all__ = ["COURSE_URL", "DEFAULT_FOLDER", "DataError", "download", "download_extract",
           "file_sha256", "prepare_celeba", "safe_extract", "verify_zip"]

COURSE_URL = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/November/"
    "5be7eb6f_processed-celeba-small/processed-celeba-small.zip"
)
CELEBA_SUBDIR = "processed_celeba_small/celeba"  # where the course zip puts the faces
DEFAULT_FOLDER = CELEBA_SUBDIR
MARKER_NAME = ".extracted-ok"
LOCK_NAME = ".extracting.lock"
# The course's crops are a 108 px square around the centre of the aligned
# 178x218 CelebA frame, which is where the alignment puts the face.
CROP_SIDE = 108
# Pause between automatic resume attempts, so a flapping server gets a breather.
RETRY_DELAY_S = 1.0
# Small members (empty files, short text) compress absurdly well without being
# bombs, so the ratio tests (per member, and for the whole archive) only bite
# once a member, or the archive's total, is big enough to hurt.
RATIO_CHECK_MIN_BYTES = 1 << 20
# Top-level names facegan uses inside a target for its own bookkeeping; an
# archive may not bring its own (it could forge the marker, or have its folders
# swept away as leftovers by the next extraction).
_RESERVED_NAME = re.compile(r"\.extracted-ok|\.extracting\.lock|\.extracting-.*|\.replaced-.*", re.DOTALL)

_ALTERNATIVES = (
    "pass zip_path=... (CLI: --zip) to use a local copy of the zip, "
    "or data_dir=... (CLI: --data-dir) pointing at an already-extracted folder"
)
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
_CORRUPT_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)
_UNREADABLE_IMAGE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _data_error(message) -> DataError:
    """A DataError whose str() is one line: the problem, then the fix."""
    return DataError(_one_line(message))


class _Interrupted(Exception):
    """A transfer that stopped early; the .part file holds what did arrive."""

    def __init__(self, received, total, reason):
        super().__init__(reason)
        self.received, self.total, self.reason = received, total, reason


def _one_line(text) -> str:
    # Messages embed OS and server text, which may carry newlines; callers
    # (and the CLI) promise a single line.
    return " ".join(str(text).split())


@contextlib.contextmanager
def _disk_errors(where, full_fix="free some space or choose another location, then run again"):
    """Turn write failures the user can fix into DataError; others stay bugs."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise _data_error(f"disk full while writing {where}; {full_fix}") from None
        if exc.errno in _NOT_WRITABLE:
            raise _data_error(
                f"cannot write {where} ({exc.strerror}); choose a writable location"
            ) from None
        if exc.errno in (errno.ENOTDIR, errno.EEXIST):
            raise _data_error(f"cannot write {where}: a part of that path is a file, not a folder; "
                              "choose another location") from None
        raise


def file_sha256(path, chunk_size=1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so big zips need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_sha256(value):
    if value is None:
        return None
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise _data_error(
            f"sha256 {value!r} is not 64 hex digits; pass the hex digest "
            "(as printed by sha256sum)"
        )
    return digest


def _require_file(path: Path, fix: str) -> None:
    if not path.is_file():
        raise _data_error(f"{path} does not exist or is not a file; {fix}")


# --------------------------------------------------------------------------
# Zip verification and safe extraction
# --------------------------------------------------------------------------


def _corrupt_zip_error(path, detail=None) -> DataError:
    detail = f": {detail}" if detail else ""
    return _data_error(
        f"{path} is not a valid zip (corrupt or truncated{detail}): "
        "delete it and download again"
    )


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (*_CORRUPT_ZIP, ValueError) as exc:
        raise _corrupt_zip_error(path, exc) from None


def verify_zip(path) -> Path:
    """Check that `path` is a readable zip whose members all pass their CRC."""
    path = Path(path)
    _require_file(path, "check the path to the zip")
    if not zipfile.is_zipfile(path):
        raise _corrupt_zip_error(path)
    with _open_zip(path) as archive:
        try:
            bad_member = archive.testzip()
        except _CORRUPT_ZIP as exc:
            raise _corrupt_zip_error(path, exc) from None
    if bad_member is not None:
        raise _corrupt_zip_error(path, f"bad CRC in {bad_member}")
    return path


def _name_parts(name: str) -> list:
    # Zips made on Windows may use backslashes; treat both as separators so
    # "..\\evil" cannot slip past the checks.
    return [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]


def _unsafe_member_reason(info: zipfile.ZipInfo):
    name = info.filename
    if name.startswith(("/", "\\")):
        return "has an absolute path"
    if re.match(r"[A-Za-z]:", name):
        return "starts with a drive letter"
    if ".." in _name_parts(name):
        return "climbs out of the target with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    parts = _name_parts(name)
    if parts and _RESERVED_NAME.fullmatch(parts[0]):
        return "uses a name facegan reserves for its own bookkeeping"
    return None


def _check_member_paths(members, zip_path) -> None:
    for info in members:
        reason = _unsafe_member_reason(info)
        if reason:
            raise _data_error(
                f"refusing to extract {zip_path}: member {info.filename!r} {reason}; "
                "the archive is unsafe, get the zip from a trusted source"
            )


def _check_member_sizes(members, zip_path, max_total_bytes, max_ratio) -> None:
    # Header sizes can be trusted as an upper bound: zipfile never yields more
    # than a member's declared file_size, so checking them bounds what we write.
    # The whole-archive ratio comes first: many members each just under the
    # per-member threshold (or members sharing one compressed stream) pass the
    # per-member test, but not this one, which weighs the total against the
    # bytes really on disk.  Real data (JPEGs) expands about 1x.
    total = sum(info.file_size for info in members)
    archive_bytes = Path(zip_path).stat().st_size
    overall = total / max(archive_bytes, 1)
    if total > RATIO_CHECK_MIN_BYTES and overall > max_ratio:
        raise _data_error(
            f"refusing to extract {zip_path}: its {len(members)} members expand to {total} "
            f"bytes from a {archive_bytes}-byte archive, {overall:.0f}x (limit {max_ratio}x, "
            "zip bomb?); get the zip from a trusted source, or raise max_ratio only if you "
            "trust this archive"
        )
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_MIN_BYTES and ratio > max_ratio:
            raise _data_error(
                f"refusing to extract {zip_path}: member {info.filename!r} expands "
                f"{ratio:.0f}x (limit {max_ratio}x, zip bomb?); raise max_ratio "
                "only if you trust this archive"
            )
    if total > max_total_bytes:
        raise _data_error(
            f"refusing to extract {zip_path}: it expands to {total} bytes, over the "
            f"{max_total_bytes}-byte cap; raise max_total_bytes only if you trust it"
        )


def _extract_file(archive, info, destination: Path, zip_path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(info) as source, open(destination, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except _CORRUPT_ZIP as exc:
        raise _corrupt_zip_error(zip_path, f"{info.filename}: {exc}") from None


def _extract_members(archive, members, zip_path, staging: Path) -> None:
    # Our own loop rather than extractall(): extractall silently rewrites
    # hostile names, and we want them refused (already done) and modes ignored.
    for info in members:
        parts = _name_parts(info.filename)
        if not parts:
            continue
        destination = staging.joinpath(*parts)
        if info.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            _extract_file(archive, info, destination, zip_path)


def _top_level_names(members) -> list:
    """The entries an archive creates directly in the target, sorted."""
    return sorted({parts[0] for info in members if (parts := _name_parts(info.filename))})


def _clashing_entries(names, target: Path, owned) -> list:
    return [name for name in names
            if ((target / name).exists() or (target / name).is_symlink()) and name not in owned]


def _clash_error(zip_path, target: Path, clashes) -> DataError:
    shown = ", ".join(str(target / name) for name in clashes[:5])
    more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
    return _data_error(
        f"refusing to extract {zip_path}: it would replace {shown}{more}, which this helper "
        "did not create; move them out of the way, or choose another data_dir "
        "(CLI: --data-dir)"
    )


def _swap_into_place(staging: Path, target: Path, entries) -> None:
    """Move each top-level entry of staging over its namesake in target.

    Replacing target wholesale would wipe unrelated files that live there
    (the downloaded zip, for one), so entries move one at a time; each move is
    an atomic rename, so no entry is ever seen half-extracted.  The caller has
    made sure every namesake replaced here is one facegan made.
    """
    trash = Path(tempfile.mkdtemp(prefix=".replaced-", dir=target))
    try:
        for name in entries:
            final = target / name
            if final.exists() or final.is_symlink():
                os.replace(final, trash / name)
            os.replace(staging / name, final)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _remove_leftovers(target: Path) -> None:
    # Staging folders survive only a crash mid-extraction; they can be huge.
    for pattern in (".extracting-*", ".replaced-*"):
        for leftover in target.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _zip_fingerprint(zip_path: Path) -> dict:
    return {"zip_size": zip_path.stat().st_size, "zip_sha256": file_sha256(zip_path)}


def _read_marker(target: Path):
    try:
        return json.loads((target / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None


def _marker_entries(marker) -> set:
    """The top-level entries a marker says facegan put in the target."""
    entries = marker.get("entries") if isinstance(marker, dict) else None
    if not isinstance(entries, list):
        return set()
    return {name for name in entries if isinstance(name, str) and name and "/" not in name
            and "\\" not in name and name not in (".", "..")}


def _already_extracted(target: Path, fingerprint: dict) -> bool:
    marker = _read_marker(target)
    if not isinstance(marker, dict):
        return False
    same_zip = all(marker.get(key) == value for key, value in fingerprint.items())
    entries = marker.get("entries") or []
    return same_zip and all((target / name).exists() for name in entries)


@contextlib.contextmanager
def _extraction_lock(target: Path):
    """Hold target's lock: one extraction into a folder at a time.

    Two runs started together on one data folder would otherwise both extract,
    and each one's clean-up would sweep away the other's staging folder.  The
    holder removes the lock file on its way out, so a waiter that wakes holding
    a removed file locks the current one instead.
    """
    if fcntl is None:
        yield
        return
    path = target / LOCK_NAME
    while True:
        lock = open(path, "a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                break
        lock.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking, so no waiter locks a removed file
        lock.close()


def _extract_atomically(archive, members, zip_path, target: Path, fingerprint, owned) -> None:
    _remove_leftovers(target)
    # Staging lives inside target so the final renames stay on one filesystem.
    staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=target))
    try:
        _extract_members(archive, members, zip_path, staging)
        entries = sorted(entry.name for entry in staging.iterdir())
        # Checked before extracting too; again now, as the target may have changed since.
        if clashes := _clashing_entries(entries, target, owned):
            raise _clash_error(zip_path, target, clashes)
        # Before the swap the marker loses its fingerprint, so it never vouches
        # for a half-swapped tree, but keeps listing every entry facegan owns
        # (old and new), so a rerun after a crash here may still replace them.
        atomic_write_text(target / MARKER_NAME, json.dumps(
            {"entries": sorted(owned.union(entries)), "complete": False}))
        _swap_into_place(staging, target, entries)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    atomic_write_text(target / MARKER_NAME, json.dumps({**fingerprint, "entries": entries}))


def safe_extract(zip_path, target_dir, max_total_bytes=4 * 2**30, max_ratio=200) -> Path:
    """Extract `zip_path` into `target_dir`, refusing hostile archives.

    Every member is checked before anything is written: absolute paths, drive
    letters, '..' components, symlinks, names facegan reserves, a total over
    `max_total_bytes`, and an archive or any member expanding more than
    `max_ratio` times (once over RATIO_CHECK_MIN_BYTES) are refused.  Nothing
    already in `target_dir` is removed or overwritten unless an earlier
    extraction put it there: a top-level entry of the archive that already
    exists and is not listed in the marker is refused.  Files land in a
    staging folder first and are renamed into place, and a marker recording the
    zip's size and sha256 and the top-level entries it created is written
    last, so a repeat call with the same zip does nothing and an interrupted
    one never looks complete.  CRCs are checked while extracting, so a corrupt
    zip is refused too.
    """
    zip_path, target = Path(zip_path), Path(target_dir)
    _require_file(zip_path, "check the path to the zip")
    fingerprint = _zip_fingerprint(zip_path)
    if _already_extracted(target, fingerprint):
        return target
    with _open_zip(zip_path) as archive:
        members = archive.infolist()
        _check_member_paths(members, zip_path)
        _check_member_sizes(members, zip_path, max_total_bytes, max_ratio)
        owned = _marker_entries(_read_marker(target))
        if clashes := _clashing_entries(_top_level_names(members), target, owned):
            raise _clash_error(zip_path, target, clashes)
        with _disk_errors(target):
            target.mkdir(parents=True, exist_ok=True)
            with _extraction_lock(target):
                if _already_extracted(target, fingerprint):  # another process did it while we waited
                    return target
                owned = _marker_entries(_read_marker(target))
                _extract_atomically(archive, members, zip_path, target, fingerprint, owned)
    return target


# --------------------------------------------------------------------------
# Resumable download
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The course data in one call
# --------------------------------------------------------------------------


def _has_images(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    return any(entry.suffix.lower() in IMAGE_EXTENSIONS for entry in folder.iterdir())


def _url_filename(url: str) -> str:
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    return name if name not in ("", ".", "..") else "download.zip"


def _local_zip(zip_path, sha256, url) -> Path:
    path = Path(zip_path)
    _require_file(path, f"check zip_path, or leave it out to download from {url}")
    expected = _normalise_sha256(sha256)
    if expected and (got := file_sha256(path)) != expected:
        raise _data_error(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {got}; "
            "check that this is the right zip"
        )
    return path


def download_extract(data_dir="data", url=COURSE_URL, zip_path=None, sha256=None,
                     folder=DEFAULT_FOLDER, progress=True) -> Path:
    """Make sure `data_dir/folder` holds the course images and return that folder.

    Uses the local `zip_path` if given, else downloads `url` into data_dir.  A
    folder we extracted (marker present) is returned at once.  A folder with
    images but no marker was put there by someone else (a course workspace, a
    manual unzip); it is trusted rather than overwritten, with a note saying so.
    """
    data_dir = Path(data_dir)
    blocker = next((p for p in (data_dir, *data_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise _data_error(f"{blocker} is a file, not a folder; pass a folder as data_dir (CLI: --data-dir)")
    image_dir = data_dir / folder
    if _has_images(image_dir):
        if _read_marker(data_dir) is None:
            print(f"note: using existing {image_dir} as is (not extracted by this "
                  "helper, so not checked); delete it to fetch a fresh copy",
                  file=sys.stderr)
        return image_dir
    if zip_path is not None:
        archive = _local_zip(zip_path, sha256, url)
    else:
        archive = download(url, data_dir / _url_filename(url), sha256=sha256,
                           progress=progress)
    safe_extract(archive, data_dir)
    if not _has_images(image_dir):
        raise _data_error(
            f"extracted {archive} but {image_dir} holds no images; expected "
            f".jpg/.png files under '{folder}/' in the zip, check folder="
        )
    return image_dir


# --------------------------------------------------------------------------
# Building the crops from full aligned CelebA
# --------------------------------------------------------------------------


def _source_files(src: Path, dst: Path) -> list:
    # Skip dst when it sits inside src, or a re-run would crop its own output.
    src, dst = src.resolve(), dst.resolve()
    return sorted(path for path in src.rglob("*")
                  if path.is_file() and not path.is_relative_to(dst))


def _centre_face(image: Image.Image, size: int):
    """The course crop: a centred 108 px square resized to size; None if too small.

    Images under 108 px on a side are skipped, not padded or upscaled: their
    face would sit at a different scale from every other training image.
    """
    width, height = image.size
    if width < CROP_SIDE or height < CROP_SIDE:
        return None
    left, top = (width - CROP_SIDE) // 2, (height - CROP_SIDE) // 2
    face = image.crop((left, top, left + CROP_SIDE, top + CROP_SIDE))
    return face.resize((size, size), Image.Resampling.LANCZOS)


def _prepare_one(path: Path, out: Path, size: int, quality: int) -> str:
    """Crop one image; return which counter it belongs to."""
    if out.exists():
        return "skipped_existing"
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so truncated files fail here, not later
            face = _centre_face(image.convert("RGB"), size)
    except _UNREADABLE_IMAGE:
        return "unreadable"
    if face is None:
        return "too_small"
    # A hidden temp file, fsynced and renamed: the real name only ever holds a whole JPEG.
    with atomic_open(out) as handle:
        face.save(handle, format="JPEG", quality=quality)
    return "written"


def prepare_celeba(src, dst, size=64, quality=95, progress=True) -> dict:
    """Turn full aligned CelebA images in `src` into the course's face crops in `dst`.

    Each image (searched recursively) is cut to its centred 108x108 square,
    resized to `size` x `size` and saved as `dst/<stem>.jpg`.  Outputs already
    present are skipped, so an interrupted run can simply be restarted.
    Returns counts: written, skipped_existing, unreadable, too_small.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise _data_error(f"source folder {src} does not exist; pass the folder "
                        "holding the aligned CelebA JPEGs (img_align_celeba)")
    if size < 1:
        raise _data_error(f"size must be a positive number of pixels, not {size}")
    counts = dict.fromkeys(("written", "skipped_existing", "unreadable", "too_small"), 0)
    with _disk_errors(dst):
        dst.mkdir(parents=True, exist_ok=True)
        for path in progress_bar(_source_files(src, dst), unit="img", desc="cropping faces",
                         disable=not progress):
            counts[_prepare_one(path, dst / f"{path.stem}.jpg", size, quality)] += 1
    print(f"prepare_celeba: {counts['written']} written, {counts['skipped_existing']} "
          f"already present, {counts['unreadable']} unreadable, "
          f"{counts['too_small']} too small -> {dst}")
    return counts
