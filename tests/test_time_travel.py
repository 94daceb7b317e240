"""Walk the June flows through their 2022 event days on the real hierarchy and 2022's real holidays, and
check exactly who was told what on which day. The days come from the hand-written table of
test_calendar_2022, which also proves (without Prefect) that every other day of the year decides
nothing; here two quiet days stand for those, and a day before the campaign is refused outright."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest

from config import Level, load_config
from config.errors import RunRefused
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


# 06-22 and 07-04: files arrive; 06-24: a quiet day.
DAYS = [dt.date(2022, 6, d) for d in (21, 22, 23, 24, 29, 30)] + [dt.date(2022, 7, d) for d in (1, 4)]
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
    # 06-01 is before the notice (2022-06-21): the run refuses, takes nothing in and sends nothing.
    drop(inbox, "june_survey", "南关区-早到的材料.pdf")
    with pytest.raises(RunRefused, match="2022-06-01 不在2022年度活动期内"):
        june_survey(today=dt.date(2022, 6, 1))
    assert outbox() == [] and (inbox / "june_survey" / "南关区-早到的材料.pdf").exists()
    (inbox / "june_survey" / "南关区-早到的材料.pdf").unlink()
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


def test_overview_and_dry_run_after_the_june_days(env: dict[str, object]) -> None:
    """全省进度一览 after a few June days, written by hand: 70 cities and counties owe both June filings.

    june_survey: 南关区 and 长春市 on time (06-22), 宽城区 late (07-04), the other 67 late and open.
    standards_filing: 梅河口市 (220581) on time, the other 69 late and open. A refused file shows too.
    Then a dry run for 07-08 (E2) shows the day's 70-odd notices and writes no outbox row.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.june import june_survey, standards_filing

    inbox = Path(str(env["home"])) / "inbox"
    june_survey(today=dt.date(2022, 6, 21))
    for obligation, names in ON_TIME.items():
        for name in names:
            drop(inbox, obligation, name)
    drop(inbox, "june_survey", "无名单位-旧材料.pdf")  # refused on 06-22: more than 7 days before 07-04
    june_survey(today=dt.date(2022, 6, 22))
    standards_filing(today=dt.date(2022, 6, 22))
    for name in LATE["june_survey"]:
        drop(inbox, "june_survey", name)
    drop(inbox, "june_survey", "无名单位-材料.pdf")  # no unit named: refused, with its reason
    june_survey(today=dt.date(2022, 7, 4))
    state = standards_filing(today=dt.date(2022, 7, 4), return_state=True)

    def artifact(key: str, run_id: object) -> str:
        with get_client(sync_client=True) as client:
            [found] = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])
                )
            )
        data = json.loads(found.data) if isinstance(found.data, str) and found.type == "table" else found.data
        return (
            f"{found.description}\n{json.dumps(data, ensure_ascii=False) if found.type == 'table' else data}"
        )

    overview = artifact("campaign-overview", state.state_details.flow_run_id)
    assert "2022年度全省进度一览（截至 2022-07-04）" in overview
    assert "各单位 × 各项任务：逾期未报 136，进行中 0，逾期完成 1，已完成 3" in overview
    assert "**近 7 天退回的文件**：1 个" in overview and "无名单位-材料.pdf" in overview
    assert "无名单位-旧材料.pdf" not in overview
    assert "data:image/png;base64," in overview  # the heat map
    # each unit's name opens its page as operators see it
    assert (
        "| 长春市 | [宽城区](http://127.0.0.1:4202/operator/unit/220103?year=2022) | 逾期完成 | 逾期未报 |"
        in overview
    )
    assert (
        "| 吉林省 | [长春市](http://127.0.0.1:4202/operator/unit/220100?year=2022) | 已完成 | 逾期未报 |"
        in overview
    )
    png = Path(str(env["home"])) / "reports" / "2022" / "overview" / "heat-map.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    queued = len(outbox())
    dry = june_survey(today=dt.date(2022, 7, 8), dry_run=True, return_state=True)
    assert len(outbox()) == queued  # nothing queued, nothing sent
    preview = artifact("dry-run-notices", dry.state_details.flow_run_id)
    # E2 on 07-08: an overdue notice to each of the 67 late units, an escalation to each of their supervisors
    assert "预演（2022-07-08）：本日将发出" in preview and "这是预演：未收件，未发送" in preview
    assert preview.count("第2次督办") >= 67
