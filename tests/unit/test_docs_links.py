"""The documentation holds together: every relative link in README.md, docs/ and bench/RESULTS.md reaches a file,
and an `#anchor` a heading of it (GitHub's slugs); the README stays a front door, under 200 lines."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "bench" / "RESULTS.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page):
    seen, found = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", page.read_text()), re.MULTILINE):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def broken_links(page):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(REPO)}")
    return broken


def test_slug_is_githubs():
    assert slug("Reconcile: `playbooks/reconcile.yml`") == "reconcile-playbooksreconcileyml"
    assert slug("Canary (`make bench-canary`)") == "canary-make-bench-canary"


def test_every_relative_link_and_anchor_resolves():
    broken = {str(page.relative_to(REPO)): broken_links(page) for page in PAGES}
    assert {page: links for page, links in broken.items() if links} == {}


def test_readme_is_a_front_door_under_200_lines():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines < 200, f"README.md has {lines} lines: move reference material to docs/"
