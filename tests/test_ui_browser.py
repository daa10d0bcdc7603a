"""``inpaint-kit ui`` in a real browser: headless Chromium from the OS packages (Debian ``chromium`` +
``chromium-driver``, which ``make setup`` installs as root) driven by selenium, against the server started
with the CLI on 127.0.0.1 and the builtin model.

One short session: a file that is not an image shows a readable error in the page; then an image, a mask
file and a brush stroke across the canvas, Run, and the candidates appear. The files the page offers are
checked: outside the mask the collage shows (mask file + stroke) the result equals the input bit for bit,
and ``inpaint-kit infer`` on that mask gives the same pixels. Last, "Detect damage" on a cracked photo fills
the mask layer with exactly the builtin detector's mask, and Run restores that mask. ``UI_SCREENSHOT=docs/ui.png`` keeps the
screenshot (default: the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_kit.images import load_image

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
DRIVER = shutil.which("chromedriver")

try:
    import selenium  # noqa: F401
    import gradio  # noqa: F401
except ModuleNotFoundError as e:  # pragma: no cover - depends on the machine
    pytestmark = pytest.mark.skip(reason=f"browser test needs {e.name} (pip install -e '.[dev,ui]')")
else:
    pytestmark = pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="browser test skipped: no chromium + chromedriver on PATH (Debian/Ubuntu: apt-get install chromium "
               "chromium-driver; `make setup` does it when run as root)")

SETTINGS = {"steps": 2, "size": 64, "rows": 2, "seed": 5}
BOX = (4, 4, 20, 28)  # the mask file's repair box: top, left, bottom, right


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"server did not answer on {url} within {timeout} s")


def _inputs(tmp_path: Path):
    y, x = np.mgrid[0:64, 0:96]
    photo = np.stack([x * 2 + 40, y * 3 + 20, (x + y) % 200 + 30], -1).astype(np.uint8)  # no 255: see _mask
    Image.fromarray(photo).save(tmp_path / "photo.png")
    mask = np.full((64, 96), 255, np.uint8)
    t, l, b, r = BOX
    mask[t:b, l:r] = 0  # black = repair (--mask_mode black)
    Image.fromarray(mask).save(tmp_path / "photo_mask.png")
    (tmp_path / "notes.png").write_text("meeting notes, not a picture")
    return photo


def _scratched(tmp_path: Path) -> np.ndarray:
    """The test photo crossed by a dark wavy 2-px crack (for "Detect damage")."""
    y, x = np.mgrid[0:64, 0:96]
    img = np.stack([x * 2 + 40, y * 3 + 20, (x + y) % 200 + 30], -1).astype(np.float32)
    for row in range(6, 58):
        col = int(48 + 6 * np.sin(row / 9))
        img[row, col : col + 2] *= 0.25
    img = img.astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "scratched.png")
    return img


def _mask_from_collage(collage: np.ndarray, h: int, w: int, spacing: int = 20) -> np.ndarray:
    """The mask the server used: the collage's middle tile is the original with the repair region white
    (the test image has no white pixel of its own)."""
    preview = collage[:h, w + spacing: 2 * w + spacing]
    return (preview == 255).all(axis=2)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1500"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    out = tmp_path / "out"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "inpaint_kit", "ui", "--model", "builtin", "--host", "127.0.0.1", "--port", str(port),
         "--output_dir", str(out), "--threads", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield f"http://127.0.0.1:{port}/", proc, out
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()


def test_paint_run_compare_and_bad_input_in_chromium(tmp_path, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    photo = _inputs(tmp_path)
    url, proc, out = server
    _wait_http(url, proc, timeout=120)  # the browser started meanwhile; the server imports gradio + torch
    browser.get(url)
    wait = WebDriverWait(browser, 60)
    find = browser.find_element

    # 1. Not an image: a readable one-line message in the page, naming the file, no traceback.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#restore-image input[type=file]"))
    find(By.CSS_SELECTOR, "#restore-image input[type=file]").send_keys(str(tmp_path / "notes.png"))
    toast = wait.until(lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, ".toast-body.error") if t.text])[0]
    assert "notes.png: not a readable image" in toast.text and "Traceback" not in toast.text
    assert "/tmp/" not in toast.text.split("(")[0]  # names the user's file, not the server's copy
    find(By.CSS_SELECTOR, "#restore-image button[aria-label=Clear]").click()
    for close in browser.find_elements(By.CSS_SELECTOR, ".toast-close"):
        close.click()

    # 2. The server keeps serving: image, mask file, settings, one brush stroke across the middle, Run.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#restore-image input[type=file]"))
    find(By.CSS_SELECTOR, "#restore-image input[type=file]").send_keys(str(tmp_path / "photo.png"))
    find(By.CSS_SELECTOR, "#restore-mask input[type=file]").send_keys(str(tmp_path / "photo_mask.png"))
    for name, value in SETTINGS.items():
        box = find(By.CSS_SELECTOR, f"#restore-{name} input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(str(value), Keys.TAB)
    time.sleep(1.0)  # let the editor draw the uploaded background
    canvas = find(By.CSS_SELECTOR, "#restore-editor canvas")
    w = canvas.rect["width"]
    ActionChains(browser).move_to_element_with_offset(canvas, int(-0.15 * w), 0).click_and_hold() \
        .move_by_offset(int(0.1 * w), 0).move_by_offset(int(0.2 * w), 0).release().perform()
    find(By.ID, "restore-run").click()
    wait.until(lambda d: "candidate(s)" in d.find_element(By.ID, "restore-status").text)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#restore-gallery img")) >= 3  # original + 2 candidates
    browser.save_screenshot(os.environ.get("UI_SCREENSHOT", str(tmp_path / "ui.png")))

    # 3. What the page produced: pixels outside the mask untouched, the stroke in the mask, the CLI's pixels.
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    rows = sorted(run.glob("photo_row*_seed*.png"))
    assert [p.name for p in rows] == ["photo_row0_seed5.png", "photo_row1_seed6.png"]
    mask = _mask_from_collage(load_image(run / "photo_collage.png"), 64, 96)
    t, l, b, r = BOX
    assert mask[t:b, l:r].all()  # the mask file's box
    stroke = mask.copy()
    stroke[t:b, l:r] = False
    ys, xs = np.nonzero(stroke)
    assert len(ys) > 20 and 20 <= ys.mean() <= 44 and xs.max() - xs.min() > 20  # a horizontal stroke mid-image
    for path in rows:
        result = load_image(path)
        assert np.array_equal(result[~mask], photo[~mask]) and not np.array_equal(result[mask], photo[mask])

    from inpaint_kit.cli import main

    Image.fromarray(np.where(mask, 0, 255).astype(np.uint8)).save(tmp_path / "used_mask.png")
    args = [f"--{k}={v}" for k, v in SETTINGS.items()]
    assert main(["infer", "--model", "builtin", "--image", str(tmp_path / "photo.png"), "--mask",
                 str(tmp_path / "used_mask.png"), "--output", str(tmp_path / "cli" / "photo_collage.png"),
                 "--save_rows", *args]) == 0
    for path in rows:
        assert np.array_equal(load_image(path), load_image(tmp_path / "cli" / path.name))

    # 4. "Detect damage" on a cracked photo (no mask file): the builtin detector's mask fills the mask layer
    # and Run restores exactly what it found (the mask the server used = the detector's, pixel for pixel).
    from inpaint_kit.detect.detector import detect_mask, load_detector

    scratched = _scratched(tmp_path)
    found = detect_mask(scratched, load_detector("builtin", device="cpu"))
    assert found.sum() > 60 and found[:, 40:58].sum() == found.sum()  # the crack, and only it
    find(By.CSS_SELECTOR, "#restore-mask button[aria-label=Clear]").click()
    find(By.CSS_SELECTOR, "#restore-image button[aria-label=Clear]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#restore-image input[type=file]"))
    find(By.CSS_SELECTOR, "#restore-image input[type=file]").send_keys(str(tmp_path / "scratched.png"))
    time.sleep(1.0)
    find(By.ID, "restore-detect").click()
    toast = wait.until(lambda d: [t for t in d.find_elements(By.CSS_SELECTOR, ".toast-body") if "marked" in t.text])
    assert f"marked {int(found.sum())} pixels" in toast[0].text
    time.sleep(1.0)  # let the editor draw the detected layer before Run reads it
    find(By.ID, "restore-run").click()
    # the status keeps the first run's text (under a progress overlay) until this run ends: wait for its files
    # and for the status naming its folder
    collages = wait.until(lambda d: list(out.glob("*/scratched_collage.png")))
    (collage,) = collages
    wait.until(lambda d: "candidate(s)" in d.find_element(By.ID, "restore-status").text
               and str(collage.parent) in d.find_element(By.ID, "restore-status").text)
    used = _mask_from_collage(load_image(collage), 64, 96)
    assert np.array_equal(used, found)
    for path in sorted(collage.parent.glob("scratched_row*_seed*.png")):
        assert np.array_equal(load_image(path)[~found], scratched[~found])
    assert proc.poll() is None
