"""The docs a reader follows: every relative link in README.md and the topic pages leads somewhere."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "deploy" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(markdown: str) -> set[str]:
    """The ids GitHub gives a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def relative_links(document: Path) -> list[str]:
    text = FENCE.sub("", document.read_text())
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    broken = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        resolved = (document.parent / path).resolve() if path else document
        if not resolved.exists():
            broken.append(f"{target}: no file {resolved.relative_to(ROOT)}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert not broken, f"{document.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) < 150


# Paths the docs name that a reader makes, not the repository: each with why it is absent.
MADE_BY_THE_READER = {
    "apps/inventory/": "the app `make app NAME=inventory` creates",
    "config/settings/local.py": "a developer's own overrides, ignored by git",
    "bench/results.json": "written by `make bench`",
}
REPO_PATH = re.compile(r"`((?:apps|bench|config|deploy|docs|monitoring|templates|tests)/[\w./-]*)`")


def _of_a_removed_example(path: str) -> bool:
    """The docs describe the example app; a fork that ran `make remove-example` no longer has it."""
    return path.startswith("apps/articles") and not (ROOT / "apps" / "articles").exists()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_file_a_page_names_is_in_the_repository(document):
    missing = [
        path
        for path in sorted(set(REPO_PATH.findall(document.read_text())))
        if path not in MADE_BY_THE_READER and not (ROOT / path).exists() and not _of_a_removed_example(path)
    ]
    assert missing == [], f"{document.relative_to(ROOT)} names files that are not there"
