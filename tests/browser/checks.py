"""What the browser tests check in a page: accessibility with axe-core, and screenshots under build/."""

from pathlib import Path

from playwright.sync_api import Page

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
