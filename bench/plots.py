"""The plots in docs/performance.md, drawn from the bench's figures (docs/perf/runs.json: what
`make bench` printed, per run) by `make docs-plots`. SVG, written byte for byte the same from the
same figures (no date, a fixed id salt), so tests/unit/test_docs_plots.py can tell a stale image.

    python -m bench.plots [--out docs/img]
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "perf" / "runs.json"
OUT = ROOT / "docs" / "img"
COLOURS = ("#7a9cc6", "#1f4e8c", "#c77b30")


def _bars(ax: Axes, groups: list[str], series: dict[str, list[float | None]], unit: str) -> None:
    """Grouped bars: one group per label in `groups`, one bar per series (a run)."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        shown = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        bars = ax.bar(
            [x for x, _ in shown],
            [v for _, v in shown],
            width,
            label=name,
            color=COLOURS[i % len(COLOURS)],
        )
        ax.bar_label(bars, fmt="%g", fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(unit)
    ax.spines[["top", "right"]].set_visible(False)


def _by_run(runs: dict[str, Any], key: str, groups: list[str]) -> dict[str, list[float | None]]:
    return {date: [run[key].get(g) for g in groups] for date, run in runs.items() if key in run}


def throughput(data: dict[str, Any], ax: Axes) -> None:
    levels = ["10", "20", "40"]
    _bars(
        ax,
        [f"concurrency {c}" for c in levels],
        _by_run(data["runs"], "throughput", levels),
        "orders/s",
    )
    ax.set_title("Throughput, 1,000 orders, HTTP submit to confirmed frame", fontsize=9)
    ax.legend(fontsize=7, frameon=False)


def watcher(data: dict[str, Any], ax: Axes) -> None:
    groups = sorted({g for run in data["runs"].values() for g in run.get("watcher_tick", {})})
    _bars(
        ax,
        [textwrap.fill(g, 24) for g in groups],
        _by_run(data["runs"], "watcher_tick", groups),
        "ms per tick (engine)",
    )
    target = data["targets"]["watcher_tick"]
    ax.axhline(target, color="#b03030", linestyle="--", linewidth=1)
    ax.text(
        len(groups) - 0.5,
        target,
        f"target {target} ms",
        color="#b03030",
        fontsize=7,
        ha="right",
        va="bottom",
    )
    ax.set_title("Watcher tick", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left")


def imports(data: dict[str, Any], ax: Axes) -> None:
    functions = ["submit", "ws_connect", "execute", "notify", "authorizer"]
    _bars(ax, functions, _by_run(data["runs"], "imports", functions), "ms")
    for i, name in enumerate(functions):
        target = data["targets"]["imports"].get(name)
        if target is not None:
            ax.hlines(target, i - 0.45, i + 0.45, color="#b03030", linestyle="--", linewidth=1)
            ax.text(
                i, target, f"target {target}", color="#b03030", fontsize=7, ha="center", va="bottom"
            )
    ax.set_title("Module import, fresh interpreter (cold start)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper right")


def overhead(data: dict[str, Any], ax: Axes) -> None:
    date, run = next((d, r) for d, r in data["runs"].items() if "overhead_steps" in r)
    steps = run["overhead_steps"]
    names = list(steps)
    bars = ax.barh(names[::-1], [steps[n] for n in names][::-1], color=COLOURS[1])
    ax.bar_label(bars, fmt="%g ms", fontsize=7, padding=2)
    pct = run["overhead_percentiles"]
    target = data["targets"]["overhead_percentiles"]
    ax.set_xlabel("ms per order (chain time excluded)")
    ax.set_title(
        f"Engine overhead per order by step ({date})\np50 {pct['p50']:g} ms (target"
        f" {target['p50']}), p99 {pct['p99']:g} ms (target {target['p99']})",
        fontsize=9,
    )
    ax.spines[["top", "right"]].set_visible(False)


PLOTS: dict[str, tuple[Callable[[dict[str, Any], Axes], None], tuple[float, float]]] = {
    "perf-throughput.svg": (throughput, (6.4, 3.2)),
    "perf-watcher.svg": (watcher, (6.4, 3.4)),
    "perf-imports.svg": (imports, (6.4, 3.2)),
    "perf-overhead.svg": (overhead, (6.4, 2.8)),
}


def draw(out: Path, figures: Path = FIGURES) -> list[Path]:
    """Write every plot into `out`; the paths written."""
    data = json.loads(figures.read_text())
    plt.rcParams["svg.hashsalt"] = "docs-plots"  # fixed element ids: the same bytes each time
    plt.rcParams["font.family"] = "DejaVu Sans"  # matplotlib's own font, on every machine
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (plot, size) in PLOTS.items():
        fig, ax = plt.subplots(figsize=size)
        plot(data, ax)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    for path in draw(parser.parse_args(argv).out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
