"""The one way to publish a table to the Prefect UI: bounded, whatever the number of units.

Prefect refuses an event over 1.5 MB (`PREFECT_SERVER_EVENTS_MAXIMUM_SIZE_BYTES`), and a table of all
3,371 units of a national campaign is larger. A table artifact therefore holds at most `max_rows` rows
and `MAX_BYTES` of JSON; when it is cut, its description says how many rows there are and where the
whole table is: a workbook in the reports folder (`<home>/reports/<year>/`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from prefect.artifacts import create_table_artifact

from config.settings import get_settings
from models import markdown
from tasks.workbooks import write_report


def markdown_table(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table of literal text, for an artifact's text (a big one goes to
    publish_table)."""
    return markdown.table(list(frame.columns), frame.itertuples(index=False))


def report_link(path: Path) -> str:
    """A file in the reports folder as a Markdown link an operator can click in the UI (served by
    `campaign serve`), or its path when no one serves the folder."""
    settings = get_settings()
    try:
        relative = path.resolve().relative_to(settings.reports.resolve())
    except ValueError:
        return markdown.text(path)
    if not settings.reports_url:
        return markdown.text(path)
    url = f"{settings.reports_url.rstrip('/')}/{quote(relative.as_posix())}"
    return markdown.link(path.name, url)


MAX_ROWS = 300  # what an operator scrolls through in the UI; the rest is in the workbook
MAX_BYTES = 500_000  # well under Prefect's 1.5 MB event limit, with room for the description


def bounded(rows: list[dict[str, Any]], max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> int:
    """How many of `rows` (from the first) fit both limits."""
    count = min(len(rows), max_rows)
    while count and len(json.dumps(rows[:count], ensure_ascii=False, default=str).encode()) > max_bytes:
        count = count * 3 // 4
    return count


def publish_table(
    key: str,
    table: pd.DataFrame | list[dict[str, Any]],
    description: str,
    *,
    year: int,
    title: str = "",
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    """Publish `table` as the artifact `key`, cut to its bounds; returns what was shown and where the
    whole table went (None when it all fits)."""
    rows = table.to_dict("records") if isinstance(table, pd.DataFrame) else list(table)
    shown = bounded(rows, max_rows)
    path = None
    if shown < len(rows):
        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(rows)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = get_settings().reports / str(year) / f"{key}-{stamp}.xlsx"
        write_report(path, title or key, [(key, frame)])
        description += f"（共 {len(rows)} 行，此处显示前 {shown} 行；完整表格：{report_link(path)}）"
    # The UI renders every cell as Markdown: text from outside is shown literally, never as a link.
    cells = [
        {k: markdown.text(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows[:shown]
    ]
    create_table_artifact(key=key, table=cells, description=description)
    return {"rows": len(rows), "shown": shown, "file": str(path) if path else None}
