"""Headless Chromium driven by Selenium, for the playground's tests and its screenshots.

Needs Debian's browser and driver (``apt-get install -y chromium chromium-driver``).
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1200, 900)
PHONE = (390, 844)  # a common phone's CSS pixels


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    return f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver"


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium session with a throwaway profile; its console log is kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def fill(driver, values: dict[str, str]) -> None:
    """Type ``values`` into the boxes with those ids, replacing what they held."""
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)


def wait_for(driver, condition: Callable[[Any], Any], seconds: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def state_of(driver, element_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).get_attribute("data-state")


def open_playground(driver, base_url: str) -> None:
    """Load the page and wait until it has shown /info (the chart and the model's facts)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/")
    wait_for(driver, lambda d: d.find_element(By.ID, "history-summary").text
             or d.find_elements(By.CSS_SELECTOR, "#history-chart .chart-empty"))
