"""docs/performance.md's plots are images drawn from the bench's figures (make docs-plots), and
the committed ones are what the figures draw now."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench import plots

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_plots_are_what_the_figures_draw(tmp_path: Path) -> None:
    for drawn in plots.draw(tmp_path):
        committed = ROOT / "docs" / "img" / drawn.name
        assert committed.exists(), f"{committed} is missing: run make docs-plots"
        assert committed.read_bytes() == drawn.read_bytes(), (
            f"{committed} is stale: make docs-plots"
        )


def test_the_performance_page_shows_every_plot_and_the_figures_hold_its_numbers() -> None:
    page = (ROOT / "docs" / "performance.md").read_text()
    shown = set(re.findall(r"!\[[^\]]+\]\(img/([^)]+)\)", page))
    assert shown == set(plots.PLOTS)
    # The plotted figures are the page's own: the latest run's throughput row names them.
    runs = json.loads(plots.FIGURES.read_text())["runs"]
    latest = runs[max(runs)]["throughput"]
    assert " / ".join(f"{latest[c]:g}" for c in ("10", "20", "40")) in page
