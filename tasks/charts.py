"""Charts as PNG for reports and artifacts, with a bundled CJK font so Chinese labels render on any
machine (the Noto Sans CJK SC that the mplfonts package ships; no system font is assumed)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on servers

import matplotlib.pyplot as plt
import mplfonts
from matplotlib import font_manager
from matplotlib.ticker import MaxNLocator


@lru_cache(maxsize=1)
def _font() -> str:
    path = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def _figure(title: str, width: float) -> tuple[plt.Figure, plt.Axes]:
    plt.rcParams["font.family"] = _font()
    plt.rcParams["axes.unicode_minus"] = False
    fig, ax = plt.subplots(figsize=(width, 4.5), dpi=110)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def bar_chart(path: Path, title: str, labels: list[str], values: list[float], unit: str = "") -> Path:
    fig, ax = _figure(title, max(6.0, 0.7 * len(labels) + 2))
    bars = ax.bar(labels, values, color="#4472C4")
    ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=8)
    ax.set_ylabel(unit)
    ax.tick_params(axis="x", labelrotation=45)
    return _save(fig, path)


def paired_bar_chart(
    path: Path, title: str, labels: list[str], series: dict[str, list[float]], unit: str = ""
) -> Path:
    """Two or more series side by side per label, e.g. plan against actual."""
    fig, ax = _figure(title, max(6.0, 0.9 * len(labels) + 2))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        bars = ax.bar(positions, values, width, label=name)
        ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(unit)
    ax.legend()
    return _save(fig, path)


def heat_map(
    path: Path,
    title: str,
    rows: list[str],
    columns: list[str],
    codes: list[list[int]],
    legend: list[tuple[str, str]],
    heads: set[int] = frozenset(),  # type: ignore[assignment]
) -> Path:
    """A grid of categories: `codes[i][j]` indexes `legend` ((label, colour)), one row per `rows` item.
    Reads at a glance: each colour is one status, with its label in the legend. Rows in `heads` (a
    city above its counties) are labelled in bold with a line above them."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, ax = _figure(title, max(7.0, 0.55 * len(columns) + 3))
    fig.set_size_inches(max(7.0, 0.55 * len(columns) + 3), max(4.0, 0.2 * len(rows) + 2.5))
    colours = ListedColormap([colour for _, colour in legend])
    ax.imshow(codes, cmap=colours, vmin=-0.5, vmax=len(legend) - 0.5, aspect="auto", interpolation="nearest")
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="left", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for i, label in enumerate(ax.get_yticklabels()):
        if i in heads:
            label.set_fontweight("bold")
            if i:
                ax.axhline(i - 0.5, color="#333333", linewidth=1.2)
    ax.set_xticks([x - 0.5 for x in range(1, len(columns))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
    ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    ax.spines[:].set_visible(False)
    handles = [Patch(color=colour, label=label) for label, colour in legend]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    return _save(fig, path)
