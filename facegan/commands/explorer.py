"""A local web page for exploring a trained generator: pick a seed, turn the truncation
knob, walk between two faces, and see the result at once.

Built on the standard library's `http.server` alone, so exploring a model needs nothing
beyond what training already installed, and the page (inline CSS and JS, no external
resources) works offline. It is meant for one person on their own machine: it binds
127.0.0.1 by default and has no authentication.

    GET /                                        the page
    GET /face.png?seed=S[&truncation=T]          the face for seed S (same seed, same face)
    GET /walk.png?a=A&b=B&t=X[&truncation=T]     the face at X in [0, 1] on the arc from A to B
    GET /info                                    {"image_size": ..., "z_size": ...}

Bad queries get a 400 (unknown paths a 404) with one plain-text line naming the problem
and the fix; a traceback never reaches the client.
"""
from __future__ import annotations

import json
import math
import re
import socket
import sys
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import torch

from ..generate.export import load_generator
from ..generate.sample import MIN_TRUNCATION, generate, latents_for_seeds, png_bytes, slerp

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes any uint64; negatives would alias these


class BadRequest(ValueError):
    """A query the client can fix; `str(e)` is the one-line message sent back."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


# --- query parsing -------------------------------------------------------------------------

def _one(query: dict, name: str, example: str) -> str | None:
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        raise BadRequest(f"{name} is given {len(values)} times; give it once, e.g. {name}={example}")
    return values[0]


def _seed(query: dict, name: str) -> int:
    raw = _one(query, name, "42")
    if raw is None:
        raise BadRequest(f"{name} is missing; add it to the query, e.g. {name}=42")
    # Digits only: int() would also take "+4_2" or " 42" (two URLs, one face) and, past 4300
    # digits, raise; 20 digits cover every uint64
    if not re.fullmatch(r"[0-9]{1,20}", raw) or int(raw) > MAX_SEED:
        raise BadRequest(f"{name}={raw!r} is not a seed; use a whole number from 0 to {MAX_SEED}, "
                         f"e.g. {name}=42")
    return int(raw)


def _number(query: dict, name: str, example: str) -> float | None:
    raw = _one(query, name, example)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise BadRequest(f"{name}={raw!r} is not a number; use a decimal, e.g. {name}={example}")
    return value


def _truncation(query: dict) -> float | None:
    value = _number(query, "truncation", "0.7")
    if value is not None and value < MIN_TRUNCATION:
        raise BadRequest(f"truncation={value:g} is too small; use at least {MIN_TRUNCATION} "
                         f"(about 0.5 to 1 is usual), or leave it out for no truncation")
    return value


def _t(query: dict) -> float:
    value = _number(query, "t", "0.5")
    if value is None:
        raise BadRequest("t is missing; add where on the walk to look, from 0 (face a) to 1 (face b), e.g. t=0.5")
    if not 0 <= value <= 1:
        raise BadRequest(f"t={value:g} is outside the walk; use a number from 0 (face a) to 1 (face b)")
    return value


# --- images --------------------------------------------------------------------------------

def _render(server: FaceServer, z: torch.Tensor) -> bytes:
    device = next(server.G.parameters()).device
    # One forward pass at a time: generate() flips G's train/eval mode, which threads would race on
    with server.lock, torch.inference_mode():
        image = generate(server.G, z.to(device))[0]
    return png_bytes(image)


def face_png(server: FaceServer, query: dict) -> bytes:
    z = latents_for_seeds([_seed(query, "seed")], server.G.z_size, _truncation(query))
    return _render(server, z)


def walk_png(server: FaceServer, query: dict) -> bytes:
    a, b, t = _seed(query, "a"), _seed(query, "b"), _t(query)
    keys = latents_for_seeds([a, b], server.G.z_size, _truncation(query))
    # The ends are exactly faces a and b (slerp's sines may round them a hair away)
    z = keys[:1] if t == 0 else keys[1:] if t == 1 else slerp(keys[:1], keys[1:], t)
    return _render(server, z)


IMAGES = {"/face.png": face_png, "/walk.png": walk_png}


# --- HTTP ----------------------------------------------------------------------------------

class FaceServer(ThreadingHTTPServer):
    """Holds the generator, and the lock that serializes its use, for the request handlers."""

    def __init__(self, address, G: torch.nn.Module, verbose: bool = False):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.G, self.lock, self.verbose = G, threading.Lock(), verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):  # listening everywhere; this machine's browser can use localhost
            host = "127.0.0.1"
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class Handler(BaseHTTPRequestHandler):
    server: FaceServer

    def do_GET(self):
        url = urlsplit(self.path)
        try:
            status, ctype, body, headers = self._route(url.path, parse_qs(url.query, keep_blank_values=True))
        except BadRequest as e:
            status, ctype, body, headers = e.status, "text/plain; charset=utf-8", f"{e}\n".encode(), {}
        except Exception as e:  # noqa: BLE001 - the client gets one line; the details stay here
            self.log_error("failed on %s: %r", self.path, e)
            status, ctype, body, headers = (HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                                            f"the generator failed ({type(e).__name__}); see the server's "
                                            f"terminal\n".encode(), {})
        self._send(status, ctype, body, headers)

    def _route(self, path: str, query: dict):
        if path in IMAGES:
            # Deterministic per URL, so the browser may keep them: dragging a slider back is free
            return HTTPStatus.OK, "image/png", IMAGES[path](self.server, query), {
                "Cache-Control": "max-age=3600"}
        if path == "/":
            return HTTPStatus.OK, "text/html; charset=utf-8", page(self.server.G).encode(), {}
        if path == "/info":
            G = self.server.G
            return HTTPStatus.OK, "application/json", json.dumps(
                {"image_size": G.image_size, "z_size": G.z_size}).encode(), {}
        raise BadRequest(f"no page at {path}; try / (the explorer), /face.png?seed=42, "
                         f"/walk.png?a=1&b=2&t=0.5 or /info", HTTPStatus.NOT_FOUND)

    def _send(self, status, ctype: str, body: bytes, headers: dict) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:  # the browser moved on (a newer slider position): nothing to tell
            pass

    def log_message(self, format, *args):
        # One line per request drowns the URL and any real error; log_error still goes through
        if self.server.verbose:
            super().log_message(format, *args)

    def log_error(self, format, *args):
        super().log_message(format, *args)


def make_server(G: torch.nn.Module, host: str = "127.0.0.1", port: int = 0,
                verbose: bool = False) -> FaceServer:
    """A server for G, bound and listening (port 0 picks a free one: see `.server_address`),
    not yet serving: call `serve_forever()`, e.g. in a thread."""
    return FaceServer((host, port), G.eval(), verbose)


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False,
          verbose: bool = False, device: str = "cpu") -> None:
    """Load the generator (.pt checkpoint or .safetensors export) and serve the page until Ctrl-C."""
    server = make_server(load_generator(checkpoint, device), host, port, verbose)
    print(f"Exploring {checkpoint} at {server.url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(server.url)  # the socket already listens, so the request waits for us
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()


# --- the page ------------------------------------------------------------------------------

def page(G: torch.nn.Module) -> str:
    return PAGE.replace("__SIZE__", str(G.image_size)).replace("__Z__", str(G.z_size))


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>facegan explorer</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  .note { color: #666; margin: 0 0 1rem; }
  main { display: flex; flex-wrap: wrap; gap: 1.5rem; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1rem; }
  h2 { font-size: 1.05rem; margin: 0 0 .6rem; }
  label { display: block; margin: .4rem 0; }
  input[type=number] { width: 9rem; }
  input[type=range] { width: 256px; vertical-align: middle; }
  img { display: block; width: 256px; height: 256px; margin-top: .6rem; background: #eee;
        image-rendering: pixelated; }
  .error { color: #b00; min-height: 1.2em; margin: .4rem 0 0; max-width: 256px; }
</style>
</head>
<body>
<h1>facegan explorer</h1>
<p class="note">__SIZE__&times;__SIZE__ faces from a __Z__-dimensional latent; a seed is always the same face.</p>
<main>
<section>
  <h2>Face from a seed</h2>
  <label>Seed <input id="seed" type="number" min="0" step="1" value="0">
    <button id="random" type="button">Random</button></label>
  <label>Truncation <input id="truncation" type="range" min="0.3" max="2" step="0.05" value="1" disabled>
    <span id="truncation-value">1.00</span>
    <input id="truncation-off" type="checkbox" checked> off</label>
  <img id="face" alt="the face for this seed">
  <p class="error" id="face-error"></p>
</section>
<section>
  <h2>Walk between two faces</h2>
  <label>Seed A <input id="seed-a" type="number" min="0" step="1" value="0"></label>
  <label>Seed B <input id="seed-b" type="number" min="0" step="1" value="1"></label>
  <label>t <input id="t" type="range" min="0" max="30" step="1" value="15">
    <span id="t-value">0.5</span></label>
  <img id="walk" alt="the face part-way from A to B">
  <p class="error" id="walk-error"></p>
</section>
</main>
<script>
"use strict";
const $ = id => document.getElementById(id);
const STEPS = 30;

function seedOf(id) {
  const v = $(id).value.trim();
  return /^[0-9]+$/.test(v) ? v : null;  // the server checks too; this spares a useless request
}

function truncationQuery() {
  return $("truncation-off").checked ? "" : "&truncation=" + $("truncation").value;
}

function show(imgId, url, problem) {
  $(imgId + "-error").textContent = problem || "";
  if (!problem && $(imgId).getAttribute("src") !== url) $(imgId).src = url;
}

function updateFace() {
  const seed = seedOf("seed");
  show("face", "/face.png?seed=" + seed + truncationQuery(), seed ? "" : "Seed: type a whole number, 0 or more.");
}

function updateWalk() {
  const a = seedOf("seed-a"), b = seedOf("seed-b");
  const t = String(+($("t").value / STEPS).toFixed(4));
  $("t-value").textContent = t;
  show("walk", "/walk.png?a=" + a + "&b=" + b + "&t=" + t + truncationQuery(),
       a && b ? "" : "Seeds A and B: type whole numbers, 0 or more.");
}

function updateTruncation() {
  $("truncation").disabled = $("truncation-off").checked;
  $("truncation-value").textContent = (+$("truncation").value).toFixed(2);
  updateFace();
  updateWalk();
}

// A failed image says nothing by itself: fetch the server's one-line reason and show it
for (const id of ["face", "walk"]) {
  $(id).addEventListener("error", () => {
    fetch($(id).src).then(r => r.text()).then(text => { $(id + "-error").textContent = text; });
  });
}
$("seed").addEventListener("input", updateFace);
$("random").addEventListener("click", () => {
  $("seed").value = Math.floor(Math.random() * 2 ** 31);
  updateFace();
});
for (const id of ["truncation", "truncation-off"]) $(id).addEventListener("input", updateTruncation);
for (const id of ["seed-a", "seed-b", "t"]) $(id).addEventListener("input", updateWalk);
updateTruncation();
</script>
</body>
</html>
"""
