"""The playground page: served with its files (nothing from elsewhere, no inline code), and, in
headless Chromium against a live gunicorn: generated words stream in shaded by the surprise the
API reports, each word shows the API's alternatives on focus and on hover, a pasted text is
scored as /score scores it, the training history is charted, and the page fits a phone.

One browser session serves every test of the module. The browser tests skip only when Chromium
is absent and RNNLM_REQUIRE_BROWSER is unset (CI sets it, so there a missing browser fails).
Install it with ``apt-get install -y chromium chromium-driver``.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser import DESKTOP, PHONE, browser_missing, chromium, fill, open_playground, state_of, wait_for
from tests.gunicorn_server import Server, start_server
from tests.sse import sse_data

STATIC = Path(__file__).resolve().parents[1] / "service" / "static"


# ------------------------------------------------------------------------- without a browser
def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for control in ("prompt", "temperature", "top_k", "top_p", "num_sentences", "seed", "generate", "model-info",
                    "score-text", "score", "history-chart", "alternatives"):
        assert f'id="{control}"' in html
    for path in STATIC.iterdir():
        served = client.get(f"/static/{path.name}")
        assert served.status_code == 200 and served.get_data() == path.read_bytes()
    assert client.get("/static/playground.js").mimetype in ("text/javascript", "application/javascript")


def test_nothing_is_fetched_from_elsewhere():
    for path in STATIC.iterdir():
        text = path.read_text().replace('"http://www.w3.org/2000/svg"', "")  # a namespace's name, not fetched
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.IGNORECASE), path.name


def test_no_inline_script_style_or_handler(client):
    """What a strict Content-Security-Policy would refuse: the page is served with one
    (service/security_headers.py; the browser tests fail on any violation it logs)."""
    html = (STATIC / "playground.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html, re.IGNORECASE)
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for path in STATIC.glob("*.js"):
        code = path.read_text()
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|setAttribute\(\"style",
                             code), path.name


def test_the_files_ship_with_the_package():
    import tomllib

    pyproject = tomllib.loads((STATIC.parents[1] / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["package-data"]["service"] == ["static/*"]


# ---------------------------------------------------------------------------- in a browser
def browser_or_skip() -> None:
    problem = browser_missing()
    if problem is None:
        return
    if os.environ.get("RNNLM_REQUIRE_BROWSER"):
        pytest.fail(problem + " (RNNLM_REQUIRE_BROWSER is set)")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def server(tiny_model_path: Path) -> Iterator[Server]:
    browser_or_skip()
    running = start_server(tiny_model_path, workers=1)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(server: Server):
    with chromium() as driver:
        open_playground(driver, server.base_url)
        yield driver


@pytest.fixture()
def page(browser, server):
    """The shared browser, at desktop size; the test fails if the page logged an error (a CSP
    violation, a failed script)."""
    browser.set_window_size(*DESKTOP)
    yield browser
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
                and "the server responded with a status of 422" not in entry["message"]]  # a refusal it shows
    assert not problems


def tokens_shown(driver, container: str) -> list[dict[str, Any]]:
    """Every word element of a words container: its text, log-probability, classes and colour."""
    return driver.execute_script("""
        return [...document.querySelectorAll(arguments[0] + ' .token')].map((e) => ({
          text: e.textContent, logprob: Number(e.dataset.logprob), classes: [...e.classList],
          color: getComputedStyle(e).color, background: getComputedStyle(e).backgroundColor}));""", container)


def legend_bands(driver) -> list[dict[str, Any]]:
    return driver.execute_script("""
        return [...document.querySelector('#result .legend').children].map((e) => ({
          band: e.dataset.band, from: Number(e.dataset.from), upTo: e.dataset.upTo === undefined ? null : Number(e.dataset.upTo),
          color: getComputedStyle(e).color, background: getComputedStyle(e).backgroundColor}));""")


def contrast(color: str, background: str) -> float:
    """WCAG 2 contrast ratio of two opaque CSS rgb() colours."""
    def luminance(css: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted([luminance(color), luminance(background)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_shaded_as_the_legend_says(token: dict[str, Any], logprob: float, bands: list[dict[str, Any]]) -> None:
    """The word is in the legend's band of its surprise in bits, drawn in that band's colour,
    readable on it (WCAG AA: 4.5:1)."""
    bits = -logprob / math.log(2)
    (band,) = [b for b in bands if b["from"] <= bits and (b["upTo"] is None or bits < b["upTo"])]
    assert f"s{band['band']}" in token["classes"], (token, bits)
    assert token["background"] == band["background"]
    assert contrast(token["color"], token["background"]) >= 4.5, token


def api_top_n(base_url: str) -> int:
    doc = requests.get(f"{base_url}/openapi.json", timeout=5).json()
    return doc["components"]["schemas"]["GenerateParameters"]["properties"]["top_n_tokens"]["maximum"]


PARAMETERS = {"temperature": 0.9, "top_k": 20, "top_p": 0.95, "num_sentences": 2, "seed": 21}


@pytest.fixture(scope="module")
def generated(browser, server) -> dict[str, Any]:
    """The page generates from "the cat"; the answer of POST /generate to the same request."""
    from selenium.webdriver.common.by import By

    fill(browser, {"prompt": "the cat", **{name: str(value) for name, value in PARAMETERS.items()}})
    browser.find_element(By.ID, "generate").click()
    wait_for(browser, lambda d: state_of(d, "output") == "done")
    body = {"inputs": "the cat", "parameters": {**PARAMETERS, "details": True, "top_n_tokens": api_top_n(server.base_url)}}
    return requests.post(f"{server.base_url}/generate", json=body, timeout=10).json()


def test_generated_words_stream_in_shaded_by_the_apis_log_probabilities(page, server, generated):
    from selenium.webdriver.common.by import By

    assert "tiny-test-corpus" in page.find_element(By.ID, "model-info").text
    tokens = generated["details"]["tokens"]
    shown = tokens_shown(page, "#output")
    assert len(shown) == len(tokens) > 2
    bands = legend_bands(page)
    assert len(bands) >= 5
    assert all(contrast(band["color"], band["background"]) >= 4.5 for band in bands)
    for element, token in zip(shown, tokens):
        assert element["logprob"] == token["logprob"]
        assert ("end" in element["classes"]) == token["special"]
        assert element["text"] == ("" if token["special"] else token["text"].strip())
        assert_shaded_as_the_legend_says(element, token["logprob"], bands)
    # the words stream in from /generate_stream, which answers as /generate does for the same seed
    assert page.find_element(By.ID, "output").get_attribute("textContent") == "the cat" + generated["generated_text"]
    events = sse_data(requests.post(f"{server.base_url}/generate_stream", timeout=10,
                                    json={"inputs": "the cat", "parameters": PARAMETERS}).text)
    assert [e["token"]["logprob"] for e in events] == [t["logprob"] for t in tokens]

    # one perplexity per sentence (its generated words and its end) and one for the whole text
    sentences, current = [], []
    for token in tokens:
        current.append(token["logprob"])
        if token["special"]:
            sentences.append(current)
            current = []
    sentences += [current] if current else []
    listed = page.find_elements(By.CSS_SELECTOR, "#generated-sentences li")
    assert len(listed) == len(sentences) == PARAMETERS["num_sentences"]
    for item, logprobs in zip(listed, sentences):
        perplexity = math.exp(-sum(logprobs) / len(logprobs))
        assert float(item.get_attribute("data-perplexity")) == pytest.approx(perplexity, rel=1e-12)
        assert f"perplexity {perplexity:.2f} over {len(logprobs)} tokens" in item.text
    everything = [t["logprob"] for t in tokens]
    status = page.find_element(By.ID, "status").text
    assert f"perplexity {math.exp(-sum(everything) / len(everything)):.2f} over {len(tokens)} tokens" in status
    assert "seed 21" in status


def popup_shown(driver) -> dict[str, Any] | None:
    return driver.execute_script("""
        const popup = document.getElementById('alternatives');
        if (popup.hidden) return null;
        const box = popup.getBoundingClientRect();
        return {word: popup.querySelector('p.chosen .word').textContent,
                bits: popup.querySelector('p.chosen .bits').textContent,
                top: box.top, right: box.right, left: box.left,
                rows: [...popup.querySelectorAll('tr.alternative')].map((r) => ({
                  word: r.querySelector('.word').textContent, logprob: Number(r.dataset.logprob),
                  bits: r.querySelector('.bits').textContent, chosen: r.classList.contains('chosen')}))};""")


def assert_popup_explains(driver, token: dict[str, Any], alternatives: list[dict[str, Any]]) -> None:
    """The popup shows the token, its surprise, and the API's likeliest words with their numbers."""
    shown = popup_shown(driver)
    assert shown is not None
    assert shown["word"] == ("¶ sentence end" if token["special"] else token["text"].strip())
    assert shown["bits"] == f"{-token['logprob'] / math.log(2):.2f} bits"
    assert len(shown["rows"]) == len(alternatives) > 0
    for row, alternative in zip(shown["rows"], alternatives):
        assert row["word"] == ("¶ sentence end" if alternative["special"] else alternative["text"].strip())
        assert row["logprob"] == alternative["logprob"]
        assert row["bits"] == f"{-alternative['logprob'] / math.log(2):.2f} bits"
        assert row["chosen"] == (alternative["id"] == token["id"])


def test_a_word_shows_the_apis_alternatives_on_focus_and_on_hover(page, generated):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    tokens, top = generated["details"]["tokens"], generated["details"]["top_tokens"]
    assert len(top[0]) == 5
    # from the Generate button, Tab reaches the first word, and arrows move from word to word
    page.find_element(By.ID, "generate").send_keys(Keys.TAB)
    assert "token" in page.switch_to.active_element.get_attribute("class")
    assert_popup_explains(page, tokens[0], top[0])
    page.switch_to.active_element.send_keys(Keys.ARROW_RIGHT * 3)
    assert_popup_explains(page, tokens[3], top[3])
    page.switch_to.active_element.send_keys(Keys.END)
    assert_popup_explains(page, tokens[-1], top[-1])
    page.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert popup_shown(page) is None

    words = page.find_elements(By.CSS_SELECTOR, "#output .token")
    ActionChains(page).move_to_element(words[5]).perform()
    assert_popup_explains(page, tokens[5], top[5])
    assert popup_shown(page)["top"] >= words[5].rect["y"] + words[5].rect["height"] - 1  # below the word
    ActionChains(page).move_to_element(page.find_element(By.TAG_NAME, "h1")).perform()
    assert popup_shown(page) is None


PASTED = "The cat sat on the mat. A zyzzyva ran <b>home</b> & <img src=x onerror=alert(1)>!"


def test_a_pasted_text_is_scored_as_the_api_scores_it(page, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    fill(page, {"score-text": PASTED})
    page.find_element(By.ID, "score").click()
    wait_for(page, lambda d: state_of(d, "scored") == "done")
    scores = requests.post(f"{server.base_url}/score", json={"inputs": PASTED}, timeout=10).json()
    words = [word for sentence in scores["sentences"] for word in sentence["words"]]
    shown = tokens_shown(page, "#scored")
    assert len(shown) == len(words) > 10
    bands = legend_bands(page)
    for element, word in zip(shown, words):
        assert element["logprob"] == word["logprob"]
        assert element["text"] == ("" if word["special"] else word["word"])
        assert ("unknown" in element["classes"]) == word["oov"]
        assert ("end" in element["classes"]) == word["special"]
        assert_shaded_as_the_legend_says(element, word["logprob"], bands)
    assert any(word["oov"] for word in words)
    # the markup in the text is shown as text, never run
    assert not page.find_elements(By.CSS_SELECTOR, "#scored img, #scored b")

    listed = page.find_elements(By.CSS_SELECTOR, "#score-sentences li")
    assert len(listed) == len(scores["sentences"]) == 2
    for item, sentence in zip(listed, scores["sentences"]):
        assert float(item.get_attribute("data-perplexity")) == sentence["perplexity"]
        assert f"perplexity {sentence['perplexity']:.2f} over {len(sentence['words'])} tokens" in item.text
    summary = page.find_element(By.ID, "score-summary").text
    assert f"perplexity {scores['perplexity']:.2f} over {scores['tokens']} tokens" in summary
    assert "zyzzyva" in summary

    unknown = page.find_elements(By.CSS_SELECTOR, "#scored .token.unknown")[0]
    ActionChains(page).move_to_element(unknown).perform()
    popup = page.find_element(By.ID, "alternatives").text
    assert "Not in the vocabulary" in popup and unknown.text in popup


def test_the_training_history_is_charted(page, server):
    from selenium.webdriver.common.by import By

    history = requests.get(f"{server.base_url}/info", timeout=5).json()["history"]
    points = page.execute_script("""
        return [...document.querySelectorAll('#history-chart circle')].map((c) => ({
          words: Number(c.dataset.trainWords), perplexity: Number(c.dataset.valPerplexity),
          halved: c.classList.contains('halved'), x: c.getBBox().x, y: c.getBBox().y}));""")
    assert [(p["words"], p["perplexity"], p["halved"]) for p in points] == [
        (e["train_words"], e["val_perplexity"], e["halved"]) for e in history]
    assert sum(p["halved"] for p in points) == 2
    assert len(page.find_elements(By.CSS_SELECTOR, "#history-chart .chart-halving")) == 2
    # drawn where the numbers say: more words further right, a lower perplexity further down the
    # page's y axis reversed (SVG's y grows downwards)
    xs = [p["x"] for p in points]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    by_perplexity = sorted(points, key=lambda p: p["perplexity"])
    assert [p["y"] for p in by_perplexity] == sorted(p["y"] for p in points)[::-1]
    assert page.find_element(By.ID, "history-chart").size["height"] > 150
    rows = page.find_elements(By.CSS_SELECTOR, "#history-table tbody tr")
    assert len(rows) == len(history)
    assert "halved 2 times" in page.find_element(By.ID, "history-summary").text

    # a file without a history, and one whose training diverged (a perplexity that is not finite)
    empty, drawn = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/static/chart.js').then(({ drawHistory }) => {
          const svg = document.createElementNS(document.getElementById('history-chart').namespaceURI, 'svg');
          drawHistory(svg, []);
          const empty = svg.textContent;
          drawHistory(svg, [{ train_words: 10, val_perplexity: 50, halved: false },
                            { train_words: 20, val_perplexity: null, halved: true }]);
          done([empty, svg.querySelectorAll('circle').length]);
        });""")
    assert empty == "This model file holds no training history" and drawn == 1


def test_the_page_fits_a_phone(page, generated):
    from selenium.webdriver.common.by import By

    page.set_window_size(*PHONE)
    width = page.execute_script("return document.documentElement.clientWidth")
    assert width <= PHONE[0]
    assert page.execute_script("return document.documentElement.scrollWidth") <= width  # no sideways scrolling
    main, aside = page.find_element(By.TAG_NAME, "main").rect, page.find_element(By.TAG_NAME, "aside").rect
    assert aside["y"] >= main["y"] + main["height"]  # one column
    word = page.find_elements(By.CSS_SELECTOR, "#output .token")[-2]
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", word)
    word.click()  # a tap focuses the word
    shown = popup_shown(page)
    assert shown is not None and shown["left"] >= 0 and shown["right"] <= width


def test_a_refused_request_shows_the_server_message(page, server):
    from selenium.webdriver.common.by import By

    open_playground(page, server.base_url)
    fill(page, {"top_p": "2"})
    page.find_element(By.ID, "generate").click()
    wait_for(page, lambda d: state_of(d, "output") == "failed")
    assert "parameters.top_p must be > 0 and <= 1" in page.find_element(By.ID, "error").text


def test_the_served_policy_is_enforced_and_the_page_cannot_be_framed(server):
    """In a browser session of its own: injected inline code does not run, and a page that frames
    the playground gets nothing (frame-ancestors, which only a header can set)."""
    with chromium() as driver:
        open_playground(driver, server.base_url)
        ran = driver.execute_script("""
            const script = document.createElement('script');
            script.textContent = 'window.injectedRan = true;';
            document.head.appendChild(script);
            return window.injectedRan === true;""")
        assert ran is False
        assert any("Content Security Policy" in entry["message"] for entry in driver.get_log("browser"))
        driver.get(f"{server.base_url}/health")  # even a page of its own origin may not frame it
        driver.execute_script("""
            const frame = document.createElement('iframe');
            frame.id = 'framed';
            frame.src = '/';
            document.body.appendChild(frame);""")
        wait_for(driver, lambda d: any("frame-ancestors 'none'" in entry["message"] for entry in d.get_log("browser")))
        assert driver.execute_script("""
            const inside = document.getElementById('framed').contentDocument;
            return inside !== null && inside.getElementById('prompt') !== null;""") is False
