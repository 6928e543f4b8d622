"""The playground page: served with its files (nothing from elsewhere), and, in headless
Chromium against a live gunicorn, a click on Generate streams the model's words into the page.

The browser test skips only when Chromium is absent and RNNLM_REQUIRE_BROWSER is unset (CI
sets it, so there a missing browser fails). Install it with
``apt-get install -y chromium chromium-driver``.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.gunicorn_server import Server, start_server
from tests.sse import sse_data

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STATIC = Path(__file__).resolve().parents[1] / "service" / "static"


# ------------------------------------------------------------------------- without a browser
def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for control in ("prompt", "temperature", "top_k", "top_p", "num_sentences", "seed", "generate", "model-info"):
        assert f'id="{control}"' in html
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200
    assert len(re.findall(r'(?:href|src)="/static/', html)) == 2


def test_nothing_is_fetched_from_elsewhere():
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.IGNORECASE), path.name


def test_the_files_ship_with_the_package():
    import tomllib

    pyproject = tomllib.loads((STATIC.parents[1] / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["service"] == ["static/*"]


# ---------------------------------------------------------------------------- in a browser
def browser_or_skip() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver"
    if os.environ.get("RNNLM_REQUIRE_BROWSER"):
        pytest.fail(message + " (RNNLM_REQUIRE_BROWSER is set)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tiny_model_path: Path) -> Iterator[Server]:
    browser_or_skip()
    running = start_server(tiny_model_path, workers=1)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(flag)
    profile = tmp_path_factory.mktemp("chromium-profile")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def fill(driver, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)


def wait_for(driver, condition, seconds: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def test_generate_streams_words_into_the_page(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{server.base_url}/")
    wait_for(browser, lambda d: "35" in d.find_element(By.ID, "model-info").text)  # /info arrived
    assert "tiny-test-corpus" in browser.find_element(By.ID, "model-info").text
    fill(browser, {"prompt": "the cat", "temperature": "0.9", "top_k": "20", "top_p": "0.95",
                   "num_sentences": "2", "seed": "21"})
    browser.find_element(By.ID, "generate").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "output").get_attribute("data-state") == "done")

    words = [w.get_attribute("textContent") for w in browser.find_elements(By.CSS_SELECTOR, "#output .word")]
    params = {"temperature": 0.9, "top_k": 20, "top_p": 0.95, "num_sentences": 2, "seed": 21}
    events = sse_data(requests.post(f"{server.base_url}/generate_stream", timeout=10,
                                    json={"inputs": "the cat", "parameters": params}).text)
    expected = [e["token"]["text"] for e in events if not e["token"]["special"]]
    assert len(words) == len(expected) > 2  # one element per streamed word
    assert words == expected
    shown = browser.find_element(By.ID, "output").get_attribute("textContent")
    assert shown == "the cat" + events[-1]["generated_text"]
    assert "seed 21" in browser.find_element(By.ID, "status").text
    assert browser.save_screenshot(str(tmp_path / "playground.png"))


def test_a_refused_request_shows_the_server_message(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(f"{server.base_url}/")
    fill(browser, {"top_p": "2"})
    browser.find_element(By.ID, "generate").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "output").get_attribute("data-state") == "failed")
    assert "parameters.top_p must be > 0 and <= 1" in browser.find_element(By.ID, "error").text
