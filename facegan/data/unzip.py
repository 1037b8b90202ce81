"""Extract a zip without trusting it, and check that a zip is whole.

`safe_extract` refuses hostile archives before writing anything (path
traversal, links, names facegan reserves, zip bombs), never replaces what it
did not put in the target, and lands files atomically: a staging folder, then
renames, then a marker recording the zip it came from, so a repeat call with the
same zip does nothing and an interrupted one never looks complete.  Every
failure a user can fix raises `facegan.errors.DataError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so extractions there don't wait for each other
    fcntl = None

from ..errors import DataError
from ..utils.atomic import atomic_write_text
from ._files import _data_error, _disk_errors, _require_file, file_sha256

__all__ = ["RATIO_CHECK_MIN_BYTES", "extracted_here", "safe_extract", "verify_zip"]

MARKER_NAME = ".extracted-ok"
LOCK_NAME = ".extracting.lock"
# Small members (empty files, short text) compress absurdly well without being
# bombs, so the ratio tests (per member, and for the whole archive) only bite
# once a member, or the archive's total, is big enough to hurt.
RATIO_CHECK_MIN_BYTES = 1 << 20
# Top-level names facegan uses inside a target for its own bookkeeping; an
# archive may not bring its own (it could forge the marker, or have its folders
# swept away as leftovers by the next extraction).
_RESERVED_NAME = re.compile(r"\.extracted-ok|\.extracting\.lock|\.extracting-.*|\.replaced-.*", re.DOTALL)

_CORRUPT_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


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
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
        return None


def extracted_here(target) -> bool:
    """Whether safe_extract has extracted into `target` (its marker is there)."""
    return _read_marker(Path(target)) is not None


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

