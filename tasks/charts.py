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
