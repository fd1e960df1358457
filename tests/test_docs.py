"""The README and docs/ as a reader follows them: every relative link reaches a file, every #anchor a heading."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"```.*?```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub makes for the page's headings (lower case, punctuation dropped, spaces to dashes)."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        match = HEADING.match(line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(2).strip().lower()).replace(" ", "-")
            found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return found


def broken_links(page: Path) -> list[str]:
    """The page's relative links whose file or anchor does not exist."""
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+://|^mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and (destination.suffix != ".md" or anchor not in anchors(destination)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {destination.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert not broken_links(page)


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A heading\n\n[ok](#a-heading) [gone](missing.md) [nope](#other)\n", encoding="utf-8")
    assert [b.split(":")[0] for b in broken_links(page)] == ["missing.md", "#other"]


def test_the_readme_opens_with_the_commands_that_work() -> None:
    head = (REPO / "README.md").read_text(encoding="utf-8")[:6000]
    assert "make reproduce" in head and "make test" in head
