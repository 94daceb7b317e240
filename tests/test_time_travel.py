"""Walk the June flows through their 2022 event days on the real hierarchy and 2022's real holidays, and
check exactly who was told what on which day. The days come from the hand-written table of
test_calendar_2022, which also proves (without Prefect) that every other day of the year decides
nothing; here a day before the campaign and two quiet days stand for those."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from config import Level, load_config
from tests.helpers import outbox

pytestmark = pytest.mark.usefixtures("prefect_harness")

ON_TIME = {
    "june_survey": ["南关区-调研材料.pdf", "长春市-调研材料.zip"],
    "standards_filing": ["220581_标准备案.pdf"],
}
LATE = {"june_survey": ["宽城区-调研材料.pdf"]}  # dropped on 07-04


def drop(inbox: Path, obligation: str, name: str) -> None:
    folder = inbox / obligation
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(f"{obligation}:{name}".encode())


# 06-01: before the notice; 06-22 and 07-04: files arrive; 06-24: a quiet day.
DAYS = [dt.date(2022, 6, d) for d in (1, 21, 22, 23, 24, 29, 30)] + [dt.date(2022, 7, d) for d in (1, 4)]
TWICE = {dt.date(2022, 6, 21), dt.date(2022, 7, 1)}  # the busiest days run again: nothing new may go out


def expected_for(day: dt.date, obligation: str, submitted_by_then: set[str]) -> Counter[tuple[str, str, str]]:
    """(unit, kind, step) expected to be decided on `day`: the steps by hand, the units from the hierarchy."""
    cfg = load_config()
    owing = [u for u in cfg.units if u.level in (Level.city, Level.county)]
    open_units = [u for u in owing if u.key not in submitted_by_then]
    out: Counter[tuple[str, str, str]] = Counter()
    step = {
        dt.date(2022, 6, 21): ("kickoff", "kickoff"),
        dt.date(2022, 6, 23): ("reminder", "D-5"),
        dt.date(2022, 6, 29): ("reminder", "D-1"),
        dt.date(2022, 6, 30): ("reminder", "D0"),
        dt.date(2022, 7, 1): ("overdue", "E1"),
    }.get(day)
    if step:
        for u in open_units:
            out[(u.key, *step)] += 1
    if step and step[1] == "E1":
        for sup in {u.reports_to for u in open_units}:
            out[(sup, "escalation", "E1")] += 1  # one per supervisor, listing its late units
    return out


def test_june_calendar_day_by_day(env: dict[str, object]) -> None:
    from flows.june import june_survey, standards_filing

    inbox = Path(str(env["home"])) / "inbox"
    cfg = load_config()
    by_name = {u.name: u.key for u in cfg.units}
    submitted: dict[str, set[str]] = {"june_survey": set(), "standards_filing": set()}
    seen = 0
    for day in DAYS:
        receipts: dict[str, set[str]] = {"june_survey": set(), "standards_filing": set()}
        drops = ON_TIME if day == dt.date(2022, 6, 22) else LATE if day == dt.date(2022, 7, 4) else {}
        for obligation, names in drops.items():
            for name in names:
                drop(inbox, obligation, name)
                key = by_name.get(name.split("-")[0]) or name.split("_")[0]
                receipts[obligation].add(key)
        for obligation, fl in (("june_survey", june_survey), ("standards_filing", standards_filing)):
            fl(today=day)
            if day in TWICE:
                fl(today=day)
            rows = [m for m in outbox() if m.id > seen]
            seen = max([seen, *(m.id for m in rows)])
            got = Counter((m.unit_key, m.kind, m.step) for m in rows if m.kind != "receipt")
            want = expected_for(day, obligation, submitted[obligation])
            assert got == want, f"{day} {obligation}: unexpected {got - want}, missing {want - got}"
            got_receipts = {m.unit_key for m in rows if m.kind == "receipt"}
            assert got_receipts == receipts[obligation], f"{day} {obligation} receipts"
            assert all(m.status == "sent" for m in rows), "the local mailbox takes every message"
            submitted[obligation] |= receipts[obligation]

    # Nothing was ever decided twice, and units that submitted on time got nothing after their receipt.
    everything = outbox()
    assert len({m.dedupe_key for m in everything}) == len(everything)
    on_time = {"220102", "220100"}
    after = [
        m
        for m in everything
        if m.unit_key in on_time
        and m.kind in ("reminder", "overdue")
        and m.step in ("D-5", "D-1", "D0", "E1")
        and "june_survey" in m.dedupe_key
    ]
    assert after == []
    # 宽城区 was late: its receipt says so; 长春市's E1 escalation listed 宽城区 but not 南关区.
    receipt = next(m for m in everything if m.unit_key == "220103" and m.kind == "receipt")
    assert "逾期 4 天" in receipt.body
    escalation = next(
        m
        for m in everything
        if m.unit_key == "220100" and m.kind == "escalation" and "june_survey" in m.dedupe_key
    )
    assert "宽城区" in escalation.body and "南关区" not in escalation.body
    # 梅河口市 answers to the province, not to 通化: its late survey is in the province's escalation.
    province = next(m for m in everything if m.unit_key == "220000" and "june_survey" in m.dedupe_key)
    assert "梅河口市" in province.body and "长白山管委会" in province.body
    tonghua = next(
        m
        for m in everything
        if m.unit_key == "220500" and m.kind == "escalation" and "june_survey" in m.dedupe_key
    )
    assert "梅河口市" not in tonghua.body
