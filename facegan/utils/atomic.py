"""Atomic file writes: a crash mid-write never leaves a truncated checkpoint or output.

Every writer goes to a temporary file in the same folder, fsyncs it and then
`os.replace`s it over the target, which is atomic on POSIX and Windows. A write that
fails (full disk, read-only place, a file where a folder should be) raises OutputError
with one line naming the path and the fix; the target is untouched.
"""
from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def output_error(path: Path | str, error: OSError) -> OutputError:
    """One line for a failed write of `path`: what went wrong and what to do."""
    if isinstance(error, OutputError):
        return error
    if error.errno in _FULL:
        why, fix = "the disk is full", "free some space or write somewhere else"
    elif error.errno in _DENIED:
        why, fix = "the place is read-only or not yours", "choose a writable location"
    elif error.errno in _NOT_A_FOLDER:
        blocker = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else "a part of the path is a file, not a folder"
        fix = "choose another path"
    elif error.errno == errno.EISDIR:
        why, fix = "it is a folder", "give a file name"
    else:
        why, fix = error.strerror or type(error).__name__, "check the path and the disk"
    detail = f" ({error.strerror})" if error.strerror and error.strerror.lower() not in why else ""
    out = OutputError(f"cannot write {path}: {why}{detail}; whatever was there is intact: {fix}")
    out.errno, out.strerror = error.errno, error.strerror
    return out


def make_folder(path: Path | str, writing: Path | str | None = None) -> Path:
    """mkdir -p, failing as OutputError in one line that names `writing` (default: the folder)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(writing or path, e) from None
    return path


@contextmanager
def atomic_open(path: Path | str, mode: str = "wb"):
    path = Path(path)
    make_folder(path.parent, writing=path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise output_error(path, e) from None
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)
