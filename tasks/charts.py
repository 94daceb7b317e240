"""Charts as PNG for reports and artifacts, with a bundled CJK font so Chinese labels render on any
machine (the Noto Sans CJK SC that the mplfonts package ships; no system font is assumed)."""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.files import write_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _font_path() -> str:
    """The bundled font, found without importing mplfonts (which imports matplotlib)."""
    spec = importlib.util.find_spec("mplfonts")
    assert spec is not None and spec.origin is not None, "mplfonts is a declared dependency"
    return str(Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf")


@lru_cache(maxsize=1)
def _pyplot() -> Any:
    """matplotlib, imported on the first bar chart: it costs every process that imports this module
    ~0.5 s (every flow run's process, every CLI command), and most draw only the Pillow heat map."""
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    font = _font_path()
    font_manager.fontManager.addfont(font)
    plt.rcParams["font.family"] = font_manager.FontProperties(fname=font).get_name()
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _figure(title: str, width: float) -> tuple[Figure, Axes]:
    fig, ax = _pyplot().subplots(figsize=(width, 4.5), dpi=110)
    ax.set_title(title)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    _pyplot().close(fig)
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
    ax.yaxis.set_major_locator(_pyplot().MaxNLocator(integer=True))
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
    city above its counties) are labelled in bold with a line above them.

    Drawn with Pillow, not matplotlib: it is redrawn after every dated run, and matplotlib spent ~0.4 s
    laying out a hundred tick labels each time; this takes a few hundredths."""
    from PIL import Image, ImageDraw, ImageFont

    cell_w, cell_h, gap = 46, 16, 1
    font = ImageFont.truetype(_font_path(), 12)
    small = ImageFont.truetype(_font_path(), 11)
    heading = ImageFont.truetype(_font_path(), 17)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text: str, face: ImageFont.FreeTypeFont) -> int:
        return int(measure.textlength(text, font=face)) + 2

    angle = 35  # column titles slant up to the right, as a spreadsheet's rotated headers do
    slant = math.radians(angle)
    longest = max((width(c, small) for c in columns), default=0)
    header_h = int(longest * math.sin(slant) + 16 * math.cos(slant)) + 8
    label_w = max((width(r, font) for r in rows), default=0) + 12
    legend_w = max((width(label, font) for label, _ in legend), default=0) + 40
    grid_x, grid_y = 12 + label_w, 16 + 30 + header_h
    grid_w, grid_h = len(columns) * cell_w, len(rows) * cell_h
    tail = int(longest * math.cos(slant))  # the last title reaches past the grid's right edge
    canvas_w = max(grid_x + grid_w + max(tail - cell_w, 0) + 24 + legend_w, width(title, heading) + 24)
    canvas_h = max(grid_y + grid_h + 16, grid_y + 24 * len(legend))
    image = Image.new("RGB", (canvas_w, canvas_h), "white")
    draw = ImageDraw.Draw(image)
    draw.text((12, 12), title, font=heading, fill="#222222")

    for j, name in enumerate(columns):
        text = Image.new("RGBA", (width(name, small), 16), (255, 255, 255, 0))
        ImageDraw.Draw(text).text((0, 0), name, font=small, fill="#222222")
        turned = text.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC)
        x = grid_x + j * cell_w + cell_w // 2 - 4
        image.paste(turned, (x, grid_y - 4 - turned.height), turned)
    for i, name in enumerate(rows):
        y = grid_y + i * cell_h
        bold = i in heads
        for dx in (0, 1) if bold else (0,):  # the bundled font has no bold face: draw it twice, 1 px apart
            draw.text((grid_x - 7 + dx, y + cell_h // 2), name, font=font, fill="#111111", anchor="rm")
        for j, code in enumerate(codes[i]):
            x = grid_x + j * cell_w
            draw.rectangle((x, y, x + cell_w - gap, y + cell_h - gap), fill=legend[code][1])
        if bold and i:
            draw.line((12, y - 1, grid_x + grid_w, y - 1), fill="#333333", width=2)
    lx = grid_x + grid_w + max(tail - cell_w, 0) + 24
    for k, (label, colour) in enumerate(legend):
        y = grid_y + 24 * k
        draw.rectangle((lx, y, lx + 16, y + 16), fill=colour)
        draw.text((lx + 24, y + 8), label, font=font, fill="#222222", anchor="lm")
    return write_atomically(path, lambda tmp: image.save(tmp, format="PNG", optimize=False))
