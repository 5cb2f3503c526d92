"""The docs site builds with `mkdocs build --strict` and loads nothing from another host."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        check=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    return out


def _nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = yaml.safe_load(text.split("\ntheme:")[0])["nav"]
    return [page for item in nav for page in item.values()]


def test_every_page_of_the_nav_is_built(site: Path) -> None:
    pages = _nav_pages()
    assert "changelog.md" in pages
    assert "configuration.md" in pages
    for page in pages:
        built = site / ("index.html" if page == "index.md" else page[:-3] + "/index.html")
        assert built.exists(), page


def test_the_generated_tables_are_included(site: Path) -> None:
    configuration = (site / "configuration" / "index.html").read_text()
    assert "PRIORITY_FEE_PERCENTILE" in configuration
    assert "--8<--" not in configuration
    api = (site / "api" / "index.html").read_text()
    assert "unsupported_media_type" in api
    assert "too_many_triggers" in api
    assert "WatchTick" in (site / "operations" / "index.html").read_text()
    assert (site / "openapi.json").exists()


def test_nothing_is_loaded_from_another_host(site: Path) -> None:
    loads = re.compile(
        r"<(?:script|link|img|iframe|source|audio|video)\b[^>]*?(?:src|href)=\"(//|https?://)"
    )
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert not loads.search(text), page
        assert "fonts.googleapis" not in text, page
        assert "fonts.gstatic" not in text, page
        assert 'class="mermaid"' not in text, page  # the theme would fetch mermaid from a CDN
    for sheet in site.rglob("*.css"):
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", sheet.read_text())
        assert [u for u in urls if not u.startswith(("data:", "../", "./")) and "//" in u] == []


def test_the_changelog_keeps_a_place_for_split_routes() -> None:
    text = (ROOT / "docs" / "changelog.md").read_text()
    assert "## Split routes and exact-out" in text
    for code in ("415", "order_limit_exceeded", "mint_not_allowed", "too_many_sniper_pairs"):
        assert code in text
