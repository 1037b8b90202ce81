"""The course's entry point for getting the CelebA face crops onto disk.

The code lives in the facegan package: facegan/data/download.py (resumable, verified
download), facegan/data/unzip.py (safe extraction) and facegan/data/celeba.py (the
course zip in one call; building the crops from full CelebA).  This script keeps the
course's habits working: `import helper; helper.download_extract()` in the notebook,
and the command line below.  Every failure a user can fix raises `DataError`
(facegan.errors.DataError) with a one-line message.

Command line:
    python helper.py download [--data-dir D] [--zip PATH] [--url U] [--sha256 H]
    python helper.py prepare SRC DST [--size 64]
"""

from __future__ import annotations

import argparse
import sys

from facegan.data.celeba import COURSE_URL, DEFAULT_FOLDER, download_extract, prepare_celeba
from facegan.data.download import download, file_sha256
from facegan.data.unzip import safe_extract, verify_zip
from facegan.errors import DataError

__all__ = ["COURSE_URL", "DEFAULT_FOLDER", "DataError", "download", "download_extract",
           "file_sha256", "main", "prepare_celeba", "safe_extract", "verify_zip"]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _run_download(args) -> None:
    folder = download_extract(data_dir=args.data_dir, url=args.url,
                              zip_path=args.zip_path, sha256=args.sha256)
    print(folder)


def _run_prepare(args) -> None:
    prepare_celeba(args.src, args.dst, size=args.size)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helper.py",
        description="Fetch the course's CelebA face crops, or build them from full CelebA.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "download", help="download (or take a local zip) and extract the course data")
    fetch.add_argument("--data-dir", default="data", help="where to put the data (default: data)")
    fetch.add_argument("--zip", dest="zip_path", help="use this local zip instead of downloading")
    fetch.add_argument("--url", default=COURSE_URL, help="download from this URL")
    fetch.add_argument("--sha256", help="expected sha256 of the zip")
    fetch.set_defaults(run=_run_download)
    prepare = commands.add_parser(
        "prepare", help="crop full aligned CelebA images into the course's face crops")
    prepare.add_argument("src", help="folder with aligned CelebA JPEGs")
    prepare.add_argument("dst", help="folder for the crops")
    prepare.add_argument("--size", type=int, default=64, help="output side in pixels (default: 64)")
    prepare.set_defaults(run=_run_prepare)
    return parser


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        args.run(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
