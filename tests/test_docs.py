"""The docs hold together: relative links resolve, the README stays a door, and mkdocs.yml's nav has every page.

The site itself is built strictly by `scripts/test.sh` (`mkdocs build --strict`); these checks are fast.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# Pages the build generates (scripts/cli_reference.py, an MkDocs hook): in the nav, not in docs/.
GENERATED = {"cli.md"}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        targets.append(target.split("#", 1)[0])
    return targets


def test_every_relative_link_points_at_a_file() -> None:
    broken = []
    for page in _pages():
        for target in _relative_links(page):
            if page.parent == DOCS and target in GENERATED:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_the_readme_is_a_door() -> None:
    assert len(README.read_bytes()) <= 15_000


def _nav_pages() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:", 1)[1]
    return set(re.findall(r":\s*([\w./-]+\.md)\s*$", nav, flags=re.M))


def test_the_nav_lists_every_page() -> None:
    on_disk = {page.name for page in DOCS.glob("*.md")}
    nav = _nav_pages()
    assert on_disk - nav == set(), f"pages missing from mkdocs.yml's nav: {sorted(on_disk - nav)}"
    assert nav - on_disk - GENERATED == set(), f"nav entries with no page: {sorted(nav - on_disk - GENERATED)}"
