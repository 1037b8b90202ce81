"""Shared fixtures: tiny configs that train in about a second on CPU; a zip laid out like the
course's CelebA zip, and a local HTTP server for it (the download, unzip and CelebA tests)."""
import io
import os
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # helper.py and problem_unittests.py live at the repo root
    sys.path.insert(0, str(ROOT))

from facegan.config import preset  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers (one per core) already fill the cores: more threads each only make them wait
    # on one another. Their subprocesses (the CLI, torchrun, the notebook's kernel) inherit it.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture
def tiny_cfg(tmp_path):
    """A factory: tiny_cfg(epochs=2, ...) -> a TrainConfig writing under tmp_path."""
    def make(**overrides):
        base = dict(out=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
        return preset("tiny", **{**base, **overrides})
    return make


# ---------------------------------------------------------------- a course-like zip and a server for it

COURSE_FOLDER = "processed_celeba_small/celeba"  # where the course zip keeps its faces
N_COURSE_IMAGES = 5


def noise_jpeg(seed: int, side: int = 48) -> bytes:
    # Noise keeps the JPEGs (and so the zip) big enough that a cut lands mid-file.
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def build_zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def course_zip_with(path: Path, extra: dict) -> Path:
    """A zip laid out like the course's (N_COURSE_IMAGES JPEGs under COURSE_FOLDER), plus `extra`."""
    members = {f"{COURSE_FOLDER}/{i}.jpg": noise_jpeg(i) for i in range(N_COURSE_IMAGES)}
    return build_zip(path, {**members, **extra})


def image_count(folder: Path) -> int:
    return sum(1 for path in folder.iterdir() if path.suffix == ".jpg")


@pytest.fixture
def course_zip(tmp_path) -> Path:
    """A course-like zip, in its own folder so that extracting next to it is a clean target."""
    (tmp_path / "served").mkdir()
    return course_zip_with(tmp_path / "served" / "celeba.zip", {})


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
    """A local HTTP server for course_zip (Range, cuts and all); yields its ZipServer state."""
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


def one_line_error(capsys, *needles) -> str:
    """The CLI's error on stderr: one `facegan: error:` line, no traceback, naming each needle."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("facegan: error:") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def tiny(out, *extra) -> list[str]:
    """`facegan train` arguments for a tiny run into `out`, its cache beside it."""
    return ["train", "--preset", "tiny", "--out", str(out), "--cache-dir", str(out) + "-cache", "--quiet", *extra]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny run's latest.pt, trained once per module (tiny_cfg is function-scoped)."""
    from facegan.training.loop import train

    root = tmp_path_factory.mktemp("tiny")
    cfg = preset("tiny", out=str(root / "run"), cache_dir=str(root / "cache"))
    train(cfg, progress=False)
    return cfg.run_dir / "checkpoints/latest.pt"
