"""Screenshots of the playground's views for docs/: generated text shaded by surprise, one word's
alternatives, a scored pasted text, the training chart, and the page at a phone's width.

    .venv/bin/python -m tests.playground_screenshots --model artifacts/model.joblib --out docs

Serves ``--model`` with gunicorn and drives the page in headless Chromium as the tests do.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.browser import PHONE, browser_missing, chromium, fill, open_playground, state_of, wait_for
from tests.gunicorn_server import start_server

PASTED = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
          "must be in want of a wife. She checked her smartphone before the carriage arrived.")


def scroll_to(driver, element_id: str) -> None:
    driver.execute_script("document.getElementById(arguments[0]).scrollIntoView({block: 'start'})", element_id)


def take(driver, out: Path, seed: int, prompt: str) -> list[Path]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = []

    def shot(name: str, element_id: str | None = None) -> None:
        path = out / name
        if element_id is None:
            written = driver.save_screenshot(str(path))
        else:
            written = driver.find_element(By.ID, element_id).screenshot(str(path))
        if not written:
            raise RuntimeError(f"could not write {path}")
        shots.append(path)

    fill(driver, {"prompt": prompt, "seed": str(seed), "num_sentences": "3", "temperature": "0.8"})
    driver.find_element(By.ID, "generate").click()
    wait_for(driver, lambda d: state_of(d, "output") == "done", seconds=60)
    scroll_to(driver, "result")
    shot("playground.png")

    driver.find_element(By.ID, "generate").send_keys(Keys.TAB)
    driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT * 4)
    scroll_to(driver, "result")
    shot("playground-alternatives.png")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)

    fill(driver, {"score-text": PASTED})
    driver.find_element(By.ID, "score").click()
    wait_for(driver, lambda d: state_of(d, "scored") == "done", seconds=60)
    scroll_to(driver, "score-panel")
    shot("playground-score.png")

    scroll_to(driver, "training-panel")
    shot("playground-chart.png", "training-panel")

    driver.set_window_size(*PHONE)
    scroll_to(driver, "result")
    driver.find_elements(By.CSS_SELECTOR, "#output .token")[2].click()  # a tap shows the alternatives
    shot("playground-phone.png")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("artifacts/model.joblib"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--prompt", default="It is a truth")
    args = parser.parse_args(argv)
    problem = browser_missing()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    server = start_server(args.model.resolve(), workers=1)
    try:
        with chromium() as driver:
            open_playground(driver, server.base_url)
            for path in take(driver, args.out, args.seed, args.prompt):
                print(path)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
