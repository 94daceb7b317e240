"""What a unit can send, and where it goes: for each obligation, the inbox folder(s) its files are
put in, the record sheet read there (if any: its template can be downloaded), and the dated flow that
takes them in. The flows, the CLI (`campaign template`, `campaign intake`) and the bureaus' pages read
the record sheets from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from config import CampaignConfig
from config.errors import ConfigError
from config.schema import Obligation
from tasks.sheets import SheetIntake


@dataclass(frozen=True)
class SheetKind:
    name: str  # what the CLI's --sheet and the pages' template links call it
    make: Callable[[CampaignConfig], SheetIntake]
    flow: str  # the dated flow that takes it in and settles it
    documents_too: bool = False  # its obligation is also evidenced by documents (the issued standards)


def _pool(cfg: CampaignConfig) -> SheetIntake:
    from tasks.pool import POOL_INTAKE, pool_rules

    pool_rules(cfg)  # no pool section, no pool sheet
    return POOL_INTAKE


def _lazy(module: str, name: str) -> Callable[[CampaignConfig], SheetIntake]:
    def make(cfg: CampaignConfig) -> SheetIntake:
        import importlib

        maker: Callable[[CampaignConfig], SheetIntake] = getattr(importlib.import_module(module), name)
        return maker(cfg)

    return make


SHEET_KINDS: tuple[SheetKind, ...] = (
    SheetKind("pool", _pool, "pool_intake"),
    SheetKind(
        "standards", _lazy("tasks.standards", "standards_intake"), "standards_filing", documents_too=True
    ),
    SheetKind("visits", _lazy("tasks.visits", "visit_intake"), "quarterly_visits"),
    SheetKind("postings", _lazy("tasks.visits", "posting_intake"), "quarterly_visits"),
    SheetKind("trainings", _lazy("tasks.trainings", "training_intake"), "half_year_training"),
    SheetKind("funds", _lazy("tasks.funds", "fund_intake"), "funds_tracking"),
    SheetKind("scores", _lazy("tasks.review", "score_intake"), "october_review"),
    SheetKind("namings", _lazy("tasks.review", "naming_intake"), "october_review"),
    SheetKind("publicity", _lazy("tasks.publicity", "publicity_intake"), "publicity"),
    SheetKind("income", _lazy("tasks.assessment", "income_intake"), "annual_assessment"),
)
SHEETS = {kind.name: kind for kind in SHEET_KINDS}


def sheet_intakes(cfg: CampaignConfig) -> dict[str, SheetIntake]:
    """Every record sheet this year's campaign has (a year without a services section has none of
    its sheets)."""
    found = {}
    for kind in SHEET_KINDS:
        try:
            found[kind.name] = kind.make(cfg)
        except ConfigError:
            continue
    return found


@dataclass(frozen=True)
class Drop:
    """One place a unit's file for an obligation goes."""

    obligation: Obligation
    folder: str  # the inbox folder
    flow: str  # the dated flow that takes it in
    sheet: str | None = None  # the record sheet read there; None: documents (PDF, Word, ZIP …)

    @property
    def label(self) -> str:
        return "上传材料" if self.sheet is None else "上传表格"


def drops(cfg: CampaignConfig) -> dict[str, list[Drop]]:
    """Per obligation key, where its files go: its record sheet's folder, its own folder for documents
    (an obligation no sheet carries, or one evidenced by both), or nowhere (recorded by a form)."""
    intakes = sheet_intakes(cfg)
    by_obligation: dict[str, list[Drop]] = {}
    served: set[str] = set()
    for name, intake in intakes.items():
        kind = SHEETS[name]
        for key in intake.obligations:
            ob = cfg.campaign.obligation(key)
            by_obligation.setdefault(key, []).append(Drop(ob, intake.kind, kind.flow, name))
            if not kind.documents_too:
                served.add(key)
    for ob in cfg.campaign.obligations:
        if ob.key in served or ob.flow is None or not ob.how_to_submit:
            continue  # carried by a sheet, or recorded by an operator's form (包保 leaders, the meeting)
        by_obligation.setdefault(ob.key, []).insert(0, Drop(ob, ob.key, ob.flow))
    return by_obligation
