"""The review web page in a real browser: Debian's headless Chromium driven through its matching
chromedriver (Selenium). Logs in, resolves a conflict, bulk-resolves a filter, replays a dead
letter, approve held deletes, and screenshots every page at desktop (1280×800) and phone (390×844) widths into
``test-artifacts/screenshots/`` at the repository root (the path is printed at the end of the run).

Without chromium, chromedriver or selenium the test is skipped, except under ``CI=true``, where it
fails: CI installs them (.ci/run).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from syncd.daemon import Daemon

from .conftest import make_settings, started
from .harness import ADMIN_TOKEN, PEOPLE_MAPPING, SqlTable, sql_app, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = (1280, 800)
PHONE = (390, 844)
REVIEW_MAPPING = PEOPLE_MAPPING.replace('key = "email"', 'key = "email"\ninitial_conflict = "review"')

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package})"
    return None


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    why = _missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


class Shots:
    """Full-page screenshots of the current page at both widths (CDP device metrics)."""

    def __init__(self, browser: Any, folder: Path) -> None:
        self.browser = browser
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def _size(self, width: int, height: int, mobile: bool) -> None:
        self.browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def __call__(self, name: str) -> None:
        for label, (width, height), mobile in (("desktop", DESKTOP, False), ("phone", PHONE, True)):
            self._size(width, height, mobile)
            metrics = self.browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
            full = metrics["cssContentSize"]
            shot = self.browser.execute_cdp_cmd(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {
                        "x": 0,
                        "y": 0,
                        "width": width,
                        "height": max(height, min(int(full["height"]), 6000)),
                        "scale": 1,
                    },
                },
            )
            path = self.folder / f"{name}-{label}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            self.taken.append(path)
        self._size(*DESKTOP, False)


def _refuse_names(table: SqlTable, pattern: str) -> None:
    with closing(sqlite3.connect(table.path)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE UPDATE ON users WHEN NEW.name LIKE "
            f"'{pattern}' BEGIN SELECT RAISE(ABORT, 'this table refuses names like that'); END"
        )
        db.commit()


def _allow_names(table: SqlTable) -> None:
    with closing(sqlite3.connect(table.path)) as db:
        db.execute("DROP TRIGGER refuse")
        db.commit()


async def test_in_chromium_log_in_resolve_bulk_resolve_replay_and_screenshot_every_page(
    tmp_path: Path, driver: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    alpha = SqlTable.create(tmp_path / "alpha.db")
    beta = SqlTable.create(tmp_path / "beta.db")
    people = {
        "ada": ("Ada Lovelace", "Augusta King"),
        "bob": ("Bob Stone", "Robert Stone"),
        "cy": ("Cy Young", "Cyrus Young"),
        "dee": ("Dee Okafor", "Dee Okafor"),
    }
    for person, (a, b) in people.items():
        alpha.insert(f"{person}@example.com", a)
        beta.insert(f"{person}@example.com", b)
    _refuse_names(beta, "%Refused%")
    settings = make_settings(
        tmp_path, {"alpha": sql_app(alpha, 3600.0), "beta": sql_app(beta, 3600.0)}, {"people": REVIEW_MAPPING}
    )
    daemon: Daemon = await started(settings)
    shots = Shots(driver, SCREENSHOTS)
    url = daemon.url

    async def browse(step: Callable[[], Any]) -> Any:
        """Selenium blocks: drive the browser from a thread while the daemon serves on this loop."""
        return await asyncio.to_thread(step)

    def wait(check: Callable[[Any], Any]) -> Any:
        return WebDriverWait(driver, 15).until(check)

    def submit_why(text: str) -> None:
        driver.find_element(By.ID, "why").send_keys(text)
        driver.find_element(By.ID, "confirm").click()
        wait(lambda d: d.find_elements(By.ID, "summary"))

    try:

        async def three_open() -> bool:
            return await _count(daemon, "open") == 3

        await wait_for(three_open, 10, what="the three conflicts")

        def log_in() -> dict[str, Any]:
            driver.get(f"{url}/conflicts")
            wait(lambda d: d.find_elements(By.ID, "token"))
            assert driver.current_url.endswith("/login?next=/conflicts")
            shots("login")
            driver.find_element(By.ID, "token").send_keys(ADMIN_TOKEN)
            driver.find_element(By.ID, "name").send_keys("Browser")
            driver.find_element(By.ID, "login").click()
            wait(lambda d: d.current_url.endswith("/conflicts"))
            (cookie,) = [c for c in driver.get_cookies() if c["name"] == "syncd_session"]
            return dict(cookie)

        cookie = await browse(log_in)
        # Chromium keeps a Secure cookie on http://127.0.0.1 (a loopback origin counts as secure).
        assert cookie["secure"] is True
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert "expiry" in cookie

        def resolve_one() -> str:
            shots("conflicts")
            card = driver.find_element(By.XPATH, "//article[.//a[contains(., 'ada@example.com')]]")
            card.find_element(By.XPATH, ".//button[normalize-space()='Take beta']").click()
            wait(lambda d: d.find_elements(By.ID, "planned"))
            shots("conflicts-confirm")
            planned = str(driver.find_element(By.ID, "planned").text)
            submit_why("married name")
            return planned

        planned = await browse(resolve_one)
        assert "alpha: name ← Augusta King" in planned
        await wait_for(
            lambda: alpha.name_of("ada@example.com") == "Augusta King", 10, what="the resolved value"
        )

        def bulk() -> str:
            driver.get(f"{url}/conflicts")
            Select(driver.find_element(By.ID, "filter-field")).select_by_visible_text("name")
            Select(driver.find_element(By.ID, "filter-app")).select_by_visible_text("beta")
            driver.find_element(By.ID, "apply-filter").click()
            wait(lambda d: "field=name" in d.current_url)
            Select(driver.find_element(By.ID, "bulk-scope")).select_by_value("filter")
            Select(driver.find_element(By.ID, "bulk-choice")).select_by_value("take:beta")
            driver.find_element(By.ID, "bulk-preview").click()
            wait(lambda d: d.find_elements(By.ID, "planned"))
            submit_why("beta is the CRM of record")
            return str(driver.find_element(By.ID, "summary").text)

        assert await browse(bulk) == "2 settled with beta's value."
        assert await _count(daemon, "open") == 0
        await wait_for(
            lambda: (
                alpha.name_of("bob@example.com") == "Robert Stone"
                and alpha.name_of("cy@example.com") == "Cyrus Young"
            ),
            10,
            what="the bulk-resolved values",
        )

        alpha.rename("dee@example.com", "Dee Refused")
        await daemon.poll("alpha")
        await wait_for(lambda: _count(daemon, "dead"), 10, what="the dead letter")

        def look_at_dead_letters() -> None:
            driver.get(f"{url}/deadletters")
            wait(lambda d: d.find_elements(By.CSS_SELECTOR, "button.replay"))
            shots("deadletters")

        await browse(look_at_dead_letters)
        _allow_names(beta)

        def replay_it() -> str:
            driver.find_element(By.CSS_SELECTOR, "button.replay").click()
            wait(lambda d: d.find_elements(By.ID, "planned"))
            submit_why("the trigger is gone")
            return str(driver.find_element(By.ID, "summary").text)

        assert await browse(replay_it) == "1 replayed."
        await wait_for(
            lambda: beta.name_of("dee@example.com") == "Dee Refused", 10, what="the replayed write"
        )

        def other_pages() -> str:
            driver.get(f"{url}/")
            wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".strip .chip"))
            shots("status")
            driver.get(f"{url}/customers?email=ada%40example.com")
            wait(lambda d: d.find_elements(By.ID, "grid"))
            shots("customer")
            driver.get(f"{url}/conflicts/prefer?sync=people&field=name&app=beta")
            wait(lambda d: d.find_elements(By.ID, "diff"))
            shots("prefer")
            driver.get(f"{url}/activity")
            wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#activity li")) > 0)
            shots("activity")
            return str(driver.find_element(By.ID, "activity").text)

        activity = await browse(other_pages)
        assert "Dee Refused" in activity

        sample = [{"entity_id": 1, "key": "ada@example.com", "remote_id": "1"}]
        hold = await daemon.store.call(
            lambda s: s.hold_deletes(
                "people", "alpha", linked=4, missing=3, sample=sample, records=["1", "2", "3"], run_id=None
            )
        )

        def approve_held_deletes() -> str:
            driver.get(f"{url}/deletes")
            wait(lambda d: d.find_elements(By.CSS_SELECTOR, f"#hold-{hold} button.replay"))
            shots("deletes")
            driver.find_element(By.CSS_SELECTOR, f"#hold-{hold} button.replay").click()
            wait(lambda d: d.find_elements(By.ID, "planned"))
            submit_why("old leads removed on purpose")
            return str(driver.find_element(By.ID, "summary").text)

        assert await browse(approve_held_deletes) == "1 approved."
        decided = await daemon.store.call(lambda s: s.held_delete(hold))
        assert decided is not None
        assert decided["status"] == "approved"

        def log_out() -> str:
            driver.find_element(By.XPATH, "//button[normalize-space()='Log out']").click()
            wait(lambda d: "/login" in d.current_url)
            driver.get(f"{url}/conflicts")
            wait(lambda d: d.find_elements(By.ID, "token"))
            return str(driver.current_url)

        assert "/login" in await browse(log_out)
    finally:
        await daemon.stop()
    for path in shots.taken:
        assert path.stat().st_size > 5_000, path
    docs = Path(__file__).resolve().parents[2] / "docs" / "review-conflicts.png"
    if os.environ.get("SYNCD_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(SCREENSHOTS / "conflicts-desktop.png", docs)


async def _count(daemon: Daemon, what: str) -> int:
    if what == "dead":
        return int(await daemon.store.call(lambda s: s.count_dead_letters()))
    return int(await daemon.store.call(lambda s: s.count_conflicts(what)))
