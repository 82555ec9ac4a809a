"""A real browser on the live server: Debian's Chromium, driven by Playwright (fixtures and checks).

Nothing is downloaded: Playwright's Python wheel carries its driver, and the browser is the
system's (`make test` installs the `chromium` package). Every page a test opens is held to the
site's Content-Security-Policy as served: a violation fails the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from apps.core.http.navigation import site_name

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# A machine busy with the rest of the suite can take seconds to answer; what is awaited does come.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


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
def open_page(browser: Browser, live_server: Any) -> Iterator[Callable[..., Page]]:
    """Opens pages on the live server, each in a fresh browser context (Playwright's options:
    `viewport`, `java_script_enabled`...); fails the test if any of them broke the CSP."""
    contexts: list[BrowserContext] = []
    violations = CspViolations()

    def open_page(**options: Any) -> Page:
        context = browser.new_context(
            base_url=live_server.url, **{"viewport": {"width": 1280, "height": 800}, **options}
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", violations.record)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not violations, f"a page broke its Content-Security-Policy: {violations}"


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
# WCAG 2.1 A and AA: what an accessibility audit of a public site asks for.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def accessibility_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now, one line each.

    axe is evaluated through the DevTools protocol, as the page's own CSP does not allow a script
    from elsewhere: the policy stays as served and no static file of the site carries the tool.
    """
    page.evaluate(AXE_SOURCE)
    found = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(result => result.violations.map(v => v.id + ': ' + v.help + ' (' +"
        " v.nodes.map(n => n.target.join(' ')).join(', ') + ')'))",
        AXE_TAGS,
    )
    return list(found)


def sign_in_to_admin(page: Page, email: str, password: str) -> None:
    page.goto(reverse("admin:login"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_contain_text(f"{site_name()} administration")


@pytest.fixture
def staff(page: Page) -> Page:
    """A page signed in to the admin as a superuser."""
    password = secrets.token_urlsafe(16)
    user = get_user_model().objects.create_superuser(f"staff-{secrets.token_hex(4)}@example.com", password)
    sign_in_to_admin(page, user.email, password)
    return page
