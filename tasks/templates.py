"""A record sheet's blank template, as bureaus download it from their page (and the CLI writes it)."""

from __future__ import annotations

from pathlib import Path

from config import CampaignConfig
from config.settings import get_settings
from tasks.catalog import SHEETS
from tasks.workbooks import write_template


def blank_template(cfg: CampaignConfig, name: str, path: Path | None = None) -> Path:
    """The year's template of the `name` sheet (tasks/catalog.SHEETS), with the pool's default bars on
    its instructions sheet; written to `path`, or once into the reports folder."""
    from tasks.pool import pool_rules, template_appendix

    intake = SHEETS[name].make(cfg)
    appendix = template_appendix(pool_rules(cfg)) if name == "pool" else None
    year = cfg.campaign.year
    target = (
        path
        or get_settings().reports / str(year) / "templates" / f"{year}年{intake.sheet.title}（模板）.xlsx"
    )
    if path is None and target.exists():
        return target
    return write_template(target, intake.sheet, year, appendix)
