"""The course's CelebA face crops: fetch and unzip them, or build them from full CelebA.

The course ships its training data as one zip on S3; `download_extract`
fetches it (facegan.data.download) and unzips it safely (facegan.data.unzip)
into the folder layout the course uses.  For anyone holding the full aligned
CelebA instead, `prepare_celeba` rebuilds the same tight face crops locally.
`facegan.data.images.celeba_folder` calls `download_extract` when a run asks
for data="celeba"; the course's helper.py at the repo root is a thin command
line over these modules.

Every failure a user can fix raises `facegan.errors.DataError`, whose message
is one line naming the problem and the fix.
"""

from __future__ import annotations

import sys
import urllib.parse
from pathlib import Path

from PIL import Image

from ..config import IMAGE_EXTENSIONS
from ..utils.atomic import atomic_open
from ..utils.bars import progress_bar
from ._files import _data_error, _disk_errors, _normalise_sha256, _require_file, file_sha256
from .download import download
from .unzip import extracted_here, safe_extract

__all__ = ["CELEBA_SUBDIR", "COURSE_URL", "DEFAULT_FOLDER", "download_extract", "prepare_celeba"]

COURSE_URL = (
    "https://s3.amazonaws.com/video.udacity-data.com/topher/2018/November/"
    "5be7eb6f_processed-celeba-small/processed-celeba-small.zip"
)
CELEBA_SUBDIR = "processed_celeba_small/celeba"  # where the course zip puts the faces
DEFAULT_FOLDER = CELEBA_SUBDIR
# The course's crops are a 108 px square around the centre of the aligned
# 178x218 CelebA frame, which is where the alignment puts the face.
CROP_SIDE = 108
_UNREADABLE_IMAGE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


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
        if not extracted_here(data_dir):
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
