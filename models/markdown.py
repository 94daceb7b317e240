"""Markdown for what operators read in the Prefect UI (artifacts render as Markdown): the product's
own structure and links around text from outside, which is shown as written and never interpreted.

A bureau writes cells, file names and reasons; written into Markdown as they are, `[省厅通知](https://…)`
would become a live link in front of operators, `**` bold, `<https://…>` or a bare address a link.
`text` escapes every character that makes markup in running text (CommonMark lets any ASCII
punctuation be escaped with a backslash), and breaks what autolinking would turn into a link (`://`,
`www.`, `@`). Only `link` makes links, and only the product calls it, with addresses it made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from models.privacy import mask_personal_data

# What Markdown (CommonMark with GitHub's extensions, as Prefect's UI renders it) reads as markup in
# running text: links and images, raw HTML and <autolinks>, emphasis, code, table cells, strikes.
_SPECIAL = re.compile(r"([\\`*_\[\]()<>!|~])")
# What its autolinking turns into a link without any markup: an address, www., an e-mail address.
_AUTOLINK = re.compile(r"(?i)(?<=:)(//)|(?<=www)(\.)|(@)")


def text(value: object) -> str:
    """`value` as literal text on one line of Markdown (also inside a table cell), its ID-card and
    phone numbers masked (what a bureau typed may hold them in any column)."""
    flat = mask_personal_data(" ".join(str(value).split()))
    escaped = _SPECIAL.sub(r"\\\1", flat)
    return _AUTOLINK.sub(lambda m: "\\" + "\\".join(m.group(0)), escaped)


def link(label: object, url: str) -> str:
    """A link the product made: `url` is ours (the reports site, the UI); the label is escaped."""
    return f"[{text(label)}]({url})"


def table(columns: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table whose header and cells are literal text. A cell that is already Markdown
    (a link `link` made) is passed as `Raw`."""

    def cell(value: object) -> str:
        return value.markdown if isinstance(value, Raw) else text(value)

    lines = ["| " + " | ".join(map(cell, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


class Raw:
    """Markdown the product wrote itself (a `link`), to be put in a table as it is."""

    __slots__ = ("markdown",)

    def __init__(self, markdown: str) -> None:
        self.markdown = markdown
