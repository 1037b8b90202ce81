"""The explorer (`facegan serve`, facegan/commands/explorer.py): its HTTP API against a real
server on a free port, and its page in headless Chromium."""
import io
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegan.commands import explorer
from facegan.commands.explorer import make_server, serve
from facegan.generate.export import load_generator
from facegan.generate.sample import generate, latents_for_seeds

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def G(tiny_checkpoint):
    return load_generator(tiny_checkpoint)


@pytest.fixture(scope="module")
def base_url(G):
    server = make_server(G, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def get(url: str):
    """(status, headers, body), for error statuses too."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers, e.read()


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def expected_face(G, seed: int, truncation=None) -> np.ndarray:
    return generate(G, latents_for_seeds([seed], G.z_size, truncation))[0]


# --- HTTP ----------------------------------------------------------------------------------

def test_face_is_a_png_of_the_generators_size(G, base_url):
    status, headers, body = get(f"{base_url}/face.png?seed=3")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    assert decode(body).shape == (G.image_size, G.image_size, 3)
    assert "max-age" in headers["Cache-Control"]


@pytest.mark.parametrize("truncation", [None, 0.7])
def test_face_is_the_seeds_face(G, base_url, truncation):
    query = "" if truncation is None else f"&truncation={truncation}"
    a1, a2, b = (get(f"{base_url}/face.png?seed={s}{query}")[2] for s in (7, 7, 8))
    assert a1 == a2 and a1 != b
    assert np.array_equal(decode(a1), expected_face(G, 7, truncation))


def test_walk_ends_are_the_two_faces(G, base_url):
    faces = {t: decode(get(f"{base_url}/walk.png?a=5&b=9&t={t}")[2]) for t in (0, 0.5, 1)}
    assert np.array_equal(faces[0], expected_face(G, 5))
    assert np.array_equal(faces[1], expected_face(G, 9))
    assert not np.array_equal(faces[0.5], faces[0]) and not np.array_equal(faces[0.5], faces[1])


def test_concurrent_requests_match_sequential_ones(G, base_url):
    seeds = list(range(100, 108))
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda s: get(f"{base_url}/face.png?seed={s}")[2], seeds))
    for seed, body in zip(seeds, bodies):
        assert np.array_equal(decode(body), expected_face(G, seed))


def test_info_and_page(G, base_url):
    status, _, body = get(f"{base_url}/info")
    assert status == 200 and json.loads(body) == {"image_size": G.image_size, "z_size": G.z_size}
    status, headers, body = get(f"{base_url}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode()
    for element_id in ("seed", "random", "truncation", "face", "seed-a", "seed-b", "t", "walk"):
        assert f'id="{element_id}"' in html
    assert "http://" not in html and "https://" not in html  # works offline: nothing external


@pytest.mark.parametrize("query, names", [
    ("/face.png", "seed"),
    ("/face.png?seed=abc", "seed"),
    ("/face.png?seed=-1", "seed"),
    ("/face.png?seed=1.5", "seed"),
    ("/face.png?seed=" + "9" * 5000, "seed"),
    ("/face.png?seed=1&seed=2", "seed"),
    ("/face.png?seed=1&truncation=0", "truncation"),
    ("/face.png?seed=1&truncation=-1", "truncation"),
    ("/face.png?seed=1&truncation=1e-9", "truncation"),
    ("/face.png?seed=1&truncation=abc", "truncation"),
    ("/face.png?seed=1&truncation=nan", "truncation"),
    ("/walk.png?a=1&b=2&t=1.5", "t="),
    ("/walk.png?a=1&b=2&t=-0.1", "t="),
    ("/walk.png?a=1&b=2", "t is missing"),
    ("/walk.png?a=x&b=2&t=0.5", "a="),
    ("/walk.png?a=1&t=0.5", "b is missing"),
])
def test_bad_queries_get_a_400_that_says_what_to_do(base_url, query, names):
    status, headers, body = get(base_url + query)
    text = body.decode()
    assert status == 400 and headers["Content-Type"].startswith("text/plain")
    assert names in text and ("use" in text or "add" in text or "give" in text)
    assert text.count("\n") == 1 and "Traceback" not in text


def test_unknown_path_is_a_404(base_url):
    status, _, body = get(f"{base_url}/nope")
    assert status == 404 and "/face.png" in body.decode()


def test_requests_are_not_logged_unless_verbose(base_url, capsys):
    get(f"{base_url}/face.png?seed=1")
    get(f"{base_url}/nope")
    assert capsys.readouterr().err == ""


class BrokenGenerator(torch.nn.Module):
    z_size, image_size = 4, 8

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        raise RuntimeError("secret internals")


def test_a_failing_generator_is_a_one_line_500(capsys):
    server = make_server(BrokenGenerator())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, _, body = get(f"http://127.0.0.1:{server.server_address[1]}/face.png?seed=1")
    finally:
        server.shutdown()
        server.server_close()
    text = body.decode()
    assert status == 500 and text.count("\n") == 1 and "secret" not in text and "Traceback" not in text
    assert "secret internals" in capsys.readouterr().err  # the details go to the server's terminal


def test_serve_prints_the_url_and_stops_cleanly_on_ctrl_c(tiny_checkpoint, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explorer.FaceServer, "serve_forever", interrupted)
    serve(tiny_checkpoint, port=0)
    out = capsys.readouterr()
    assert "http://127.0.0.1:" in out.out and "stopped" in out.err


# --- the page in a real browser ------------------------------------------------------------

@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install 'selenium>=4.20'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1000,700",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


LOADED = """const img = document.getElementById(arguments[0]);
return img.complete && img.naturalWidth > 0 && img.currentSrc === img.src ? img.src : null;"""

PIXELS = """const img = document.getElementById(arguments[0]);
const canvas = document.createElement("canvas");
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const ctx = canvas.getContext("2d");
ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);"""


def wait_for_image(driver, element_id: str, must_contain: str) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    def loaded(d):
        src = d.execute_script(LOADED, element_id)
        return src if src and must_contain in src else None
    return WebDriverWait(driver, 20).until(loaded, f"#{element_id} never loaded a src with {must_contain}")


def drawn_pixels(driver, element_id: str, size: int) -> np.ndarray:
    rgba = np.array(driver.execute_script(PIXELS, element_id), np.uint8).reshape(size, size, 4)
    return rgba[..., :3]


def test_page_shows_faces_and_walks_in_chromium(G, base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url + "/")
    wait_for_image(browser, "face", "seed=0")

    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("42")
    src = wait_for_image(browser, "face", "seed=42")
    assert src.endswith("/face.png?seed=42")
    assert browser.execute_script("return document.getElementById('face').naturalWidth") == G.image_size
    # What the browser drew is the server's face for that URL, pixel for pixel
    assert np.array_equal(drawn_pixels(browser, "face", G.image_size), decode(get(src)[2]))
    assert np.array_equal(drawn_pixels(browser, "face", G.image_size), expected_face(G, 42))

    browser.find_element(By.ID, "truncation-off").click()
    assert "truncation=1" in wait_for_image(browser, "face", "truncation=")

    browser.find_element(By.ID, "random").click()
    wait_for_image(browser, "face", "seed=")
    assert browser.find_element(By.ID, "seed").get_attribute("value") != "42"

    walk_before = wait_for_image(browser, "walk", "t=0.5")
    browser.find_element(By.ID, "t").send_keys(Keys.END)  # the slider to t = 1: face B
    walk_src = wait_for_image(browser, "walk", "t=1&")
    assert walk_src != walk_before and "a=0&b=1" in walk_src
    walked = drawn_pixels(browser, "walk", G.image_size)
    assert np.array_equal(walked, expected_face(G, 1, truncation=1.0))

    seed.clear()
    seed.send_keys("e")  # a number input's value is "" then: the page says so, requests nothing
    assert "whole number" in browser.find_element(By.ID, "face-error").text
    seed.clear()
    seed.send_keys("9" * 25)  # digits, but past uint64: the server refuses and the page shows why
    WebDriverWait(browser, 20).until(
        lambda d: "not a seed" in d.find_element(By.ID, "face-error").text, "the server's 400 never showed")

    shot = tmp_path / "explorer.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0


def test_a_taken_port_is_one_line_naming_the_fix(tiny_checkpoint, capsys):
    import socket

    from facegan.commands.cli import main
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--checkpoint", str(tiny_checkpoint), "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"127.0.0.1:{port}" in err and "--port" in err
