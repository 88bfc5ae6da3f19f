"""Headless Chromium for the web console's tests (Playwright driving Debian's chromium, nothing
downloaded at test time): the browser (one per module), a page that fails its test on any console
error, and helpers that wait for what the page shows (it updates itself: no reload anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
UI_TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; fails the test on any console error or uncaught exception in it."""
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    pg.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    pg.screenshot(path=str(tmp_path / f"{request.node.name}.png"))
    pg.close()
    assert errors == [], errors


def text(page: Any, testid: str) -> str:
    return page.get_by_test_id(testid).first.inner_text().strip()


def wait_text(page: Any, testid: str, want: str) -> None:
    """Until the element shows `want` (the page updates itself: no reload anywhere)."""
    page.wait_for_function("([id, want]) => { const e = document.querySelector(`[data-testid=\"${id}\"]`);"
                           " return e && e.innerText.trim() === want; }", arg=[testid, want], timeout=UI_TIMEOUT_MS)


def submit(page: Any, form_id: str, **fields: str) -> None:
    """Fill a form's inputs by name and press its (first) button."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    form.locator("button").first.click()
