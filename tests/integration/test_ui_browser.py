"""The ``/ui`` console in a real headless browser (Debian's chromium driven by chromedriver
through Selenium) against a real ``recserve serve``: pages load, a user lookup renders the
recommendations with their explanations, and the browser logs no console errors.

``.ci/run`` installs ``chromium`` and ``chromium-driver``; without them this test fails (it
never skips), so CI cannot pass without having run it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from app.settings import Settings
from tests.integration.conftest import copy_home, serve, users_with_history

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 20


@pytest.fixture(scope="module")
def server(built_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = copy_home(built_home, tmp_path_factory.mktemp("ui-browser") / "home")
    with serve(home.home) as http:
        yield str(http.base_url).rstrip("/")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (.ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: WebDriver) -> list[dict[str, object]]:
    """Browser log entries at SEVERE since the last call (the log is drained by reading)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visible(driver: WebDriver, css: str) -> str:
    element = WebDriverWait(driver, WAIT_SECONDS).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )
    return str(element.text)


def test_every_page_loads_without_console_errors(server: str, browser: WebDriver) -> None:
    with httpx.Client(base_url=server) as http:
        version = http.get("/readyz").json()["model_version"]
    browser.get(f"{server}/ui")
    assert visible(browser, "#served-version") == version
    assert "feature_store" in visible(browser, "#readiness")
    browser.find_element(By.LINK_TEXT, "Models").click()
    assert version in visible(browser, "#models")
    browser.find_element(By.LINK_TEXT, "Experiments").click()
    assert "No experiments configured" in visible(browser, "#no-experiments")
    browser.find_element(By.LINK_TEXT, "Monitoring").click()
    visible(browser, "#chart-cache")
    assert browser.find_element(By.CSS_SELECTOR, "#chart-answers svg").is_displayed()
    browser.find_element(By.LINK_TEXT, "Drift").click()
    assert "item_popularity" in visible(browser, "#drift")
    assert browser.find_elements(By.CSS_SELECTOR, "#hist-item_category svg rect.reference")
    browser.get(f"{server}/ui/users?user_id=nobody-we-know")
    assert "nobody-we-know" in visible(browser, "#profile-missing")
    assert console_errors(browser) == []


def test_user_lookup_renders_recommendations_with_explanations(
    server: str, browser: WebDriver, built_home: Settings
) -> None:
    user_id = users_with_history(built_home)[3]
    browser.get(f"{server}/ui")
    browser.find_element(By.LINK_TEXT, "Users").click()
    field = WebDriverWait(browser, WAIT_SECONDS).until(
        expected_conditions.element_to_be_clickable((By.NAME, "user_id"))
    )
    field.send_keys(user_id)
    field.submit()
    visible(browser, "#recommendations")
    shown = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.item-id")]
    with httpx.Client(base_url=server) as http:
        api = http.get("/recommend", params={"user_id": user_id, "k": 10, "explain": "true"}).json()
    assert shown == [item["item_id"] for item in api["items"]]
    because = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.because")]
    for item, text in zip(api["items"], because, strict=True):
        for reason in item["explanation"]["because_you_viewed"]:
            assert reason["item_id"] in text
    assert any(cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.proposed-by"))
    assert user_id in visible(browser, "h1")
    assert console_errors(browser) == []
