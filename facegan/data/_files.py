"""What the downloader and the unzipper share: one-line DataErrors, write failures turned
into them, and sha256 checks of files on disk."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import re
from pathlib import Path

from ..errors import DataError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def _data_error(message) -> DataError:
    """A DataError whose str() is one line: the problem, then the fix."""
    return DataError(_one_line(message))


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
