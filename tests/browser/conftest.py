"""A real browser on the live server: Debian's Chromium, driven by Playwright.

Nothing is downloaded: Playwright's Python wheel carries its driver, and the browser is the
system's (`make test` installs the `chromium` package). Every page a test opens is held to the
site's Content-Security-Policy as served: a violation fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium; "
            "or set CHROMIUM_PATH to another build"
        )
    # Playwright's sync API keeps an event loop running in this thread; Django refuses ORM calls
    # there unless told the thread is not serving async code, which in these tests it is not.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


class CspViolations(list[str]):
    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.append(message.text)


@pytest.fixture
def page(browser: Browser, live_server: Any) -> Iterator[Page]:
    """A fresh browser context on the live server; fails the test if the page broke the CSP."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    violations = CspViolations()
    page.on("console", violations.record)
    yield page
    context.close()
    assert not violations, f"the page broke its Content-Security-Policy: {violations}"
