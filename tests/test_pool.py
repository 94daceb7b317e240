"""The incubation-pool intake end to end: bureaus' workbooks with good and bad rows, the error workbook,
resubmissions, the three pools, and recommendation paused for an operator and resumed from code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from models.applications import COLUMNS
from models.db import session_scope
from models.privacy import mask_phone, mask_ric
from models.sheets import ERROR_COLUMN
from models.tables import IntakeFile, IntakeRejection, PoolApplication, Recommendation
from tests.helpers import edit_yaml, outbox, recommend_on_admission, run_tagged, wait_for_pause
from tests.pool_data import HEADERS, application, credit_code, id_number, write_csv, write_xlsx

pytestmark = pytest.mark.usefixtures("prefect_harness")
TODAY = dt.date(2022, 7, 5)


def inbox(env: dict[str, object]) -> Path:
    folder = Path(str(env["home"])) / "inbox" / "pool_intake"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def applications() -> dict[str, PoolApplication]:
    with session_scope() as session:
        return {a.project_name: a for a in session.exec(select(PoolApplication)).all()}


def by_row(summary: dict[str, Any]) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for e in summary["errors"]:
        out.setdefault(e["row"], []).append((e["column"], e["reason"]))
    return out


# Row 2 of each file is good; every later row has one kind of mistake, next to more good rows.
BAD = [
    ({"统一社会信用代码": "91220723MA00000001"}, "统一社会信用代码", "校验位不正确"),
    ({"统一社会信用代码": "9122"}, "统一社会信用代码", "位数不对"),
    ({"负责人身份证号": "220723198501010011"}, "负责人身份证号", "校验位不正确"),
    ({"负责人身份证号": "220723198513010011"}, "负责人身份证号", "身份证号"),
    ({"联系电话": "1391234567"}, "联系电话", "不是有效的手机号"),
    ({"所在县（市、区）": "229999"}, "所在县（市、区）", "未知的县级单位"),
    ({"所在县（市、区）": "南关区"}, "所在县（市、区）", "不属于乾安县辖区"),
    ({"带动创业人数": "-5"}, "带动创业人数", "不能为负数"),
    ({"吸纳就业人数": "十个"}, "吸纳就业人数", "不是数字"),
    ({"带动创业人数": "2.5"}, "带动创业人数", "人数应为整数"),
    ({"其中脱贫人口就业人数": "99"}, "其中脱贫人口就业人数", "大于吸纳就业人数"),
    ({"成立日期": "2023-01-01"}, "成立日期", "晚于申报日期 2022-07-05"),
    ({"成立日期": "去年"}, "成立日期", "无法识别的日期"),
    ({"项目名称": ""}, "项目名称", "必填项为空"),
    ({"主体类型": "个体户"}, "主体类型", "应为以下之一"),
    ({"是否肉牛养殖": "也许"}, "是否肉牛养殖", "应填“是”或“否”"),
    ({"三个助力方向": "乡村振兴、招商引资"}, "三个助力方向", "应为以下一项或多项"),
    ({"申报层级": "国家级"}, "申报层级", "应为以下之一"),
]


def fixture_rows() -> list[dict[str, Any]]:
    rows = [application(1)]
    for i, (change, _, _) in enumerate(BAD, start=100):
        rows.append(application(i, **change))
        rows.append(application(i + 1000))  # a good row after every bad one
    return rows


@pytest.mark.parametrize("kind", ["xlsx", "csv-gbk"])
def test_good_rows_kept_bad_rows_reported_with_row_column_reason(env: dict[str, object], kind: str) -> None:
    from config import load_config
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    rows = fixture_rows()
    folder = inbox(env)
    path = (
        write_xlsx(folder / "乾安县-培育库申报表.xlsx", rows)
        if kind == "xlsx"
        else write_csv(folder / "220723-培育库申报表.csv", rows, encoding="gbk")
    )
    original = path.read_bytes()
    received = dt.datetime(2022, 7, 5, 1, tzinfo=dt.UTC)
    summary = take_in_workbook(cfg, path, received)

    assert summary["unit"] == "220723"
    assert summary["rows_read"] == len(rows)
    assert summary["rejected"] == len(BAD)
    assert summary["admitted"] == len(rows) - len(BAD)
    errors = by_row(summary)
    for n, (_, column, reason) in enumerate(BAD):
        row = 3 + 2 * n  # header is row 1, the first good row is row 2
        assert any(c == column and reason in r for c, r in errors[row]), (row, errors.get(row))
    # Personal data is masked in the report, never shown whole.
    id_errors = [e for e in summary["errors"] if e["column"] == "负责人身份证号"]
    assert id_errors and all("********" in e["value"] for e in id_errors)
    assert "1391234567" not in json.dumps(summary, ensure_ascii=False)

    stored = applications()
    assert len(stored) == len(rows) - len(BAD)
    app = stored["肉牛养殖项目1"]
    assert app.leader_id_masked == id_number(1)[:6] + "********" + id_number(1)[-4:]
    assert app.admitted and app.level == "county" and app.pool_unit == "220723"
    assert app.beef_cattle and app.poverty_employment and app.speciality == "一村一品"

    # The received file is archived unchanged with its hash.
    with session_scope() as session:
        record = session.exec(select(IntakeFile)).one()
    assert Path(record.archived_path).read_bytes() == original
    assert record.counts["rejected"] == len(BAD)

    # The error workbook: the bad rows' original columns plus the error column, checked cell by cell.
    book = load_workbook(summary["error_workbook"])
    sheet = book["有误的行"]
    header = [c.value for c in sheet[1]]
    assert header == ["原行号", *HEADERS, ERROR_COLUMN]
    body = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(body) == len(BAD)
    for n, (change, column, reason) in enumerate(BAD):
        line = body[n]
        assert line[0] == 3 + 2 * n
        sent = application(100 + n, **change)
        for i, col in enumerate(COLUMNS, start=1):
            expected = str(sent[col.header])
            if col.kind == "ric":
                expected = mask_ric(expected)
            elif col.kind == "phone":
                expected = mask_phone(expected)
            assert (line[i] or "") == expected, (line[0], col.header)
        assert column in line[-1] and reason in line[-1]
    detail = list(book["错误明细"].iter_rows(min_row=2, values_only=True))
    assert len(detail) >= len(BAD)

    # The sender is told, with the error workbook attached.
    [message] = [m for m in outbox() if m.kind == "intake_result"]
    assert message.unit_key == "220723" and message.attachment == summary["error_workbook"]
    assert f"有误未受理 {len(BAD)} 行" in message.body
    assert id_number(103) not in message.body  # masked in the message as well


def test_reading_variants_headers_dates_booleans_blank_rows_and_former_code(env: dict[str, object]) -> None:
    from config import load_config
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    # Headers with half-width brackets and stray spaces; a title row above them; the order changed.
    headers = [h.replace("（", "(").replace("）", ")") for h in HEADERS]
    headers[0] = " 项目名称 "
    headers = headers[::-1]
    rows = [
        dict(
            zip(
                headers[::-1],
                application(1, **{"成立日期": 43000, "是否肉牛养殖": "Y"}).values(),
                strict=True,
            )
        ),
        {},  # a blank row, skipped
        dict(
            zip(
                headers[::-1],
                application(
                    2, **{"成立日期": "2019/5/31", "是否肉牛养殖": "1", "所在县（市、区）": "220381"}
                ).values(),
                strict=True,
            )
        ),
        dict(
            zip(
                headers[::-1],
                application(3, **{"成立日期": "2019年5月31日", "是否肉牛养殖": "N"}).values(),
                strict=True,
            )
        ),
        dict(
            zip(
                headers[::-1],
                application(4, **{"成立日期": dt.date(2017, 1, 2), "是否肉牛养殖": "0"}).values(),
                strict=True,
            )
        ),
    ]
    path = inbox(env) / "长春市-培育库申报表.xlsx"
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["2022年长春市培育库申报汇总表"])
    sheet.append(headers)
    for row in rows:
        sheet.append([row.get(h) for h in headers])
    book.save(path)
    # 乾安县 is not in 长春's jurisdiction: put every row in 长春's counties.
    summary = take_in_workbook(cfg, path, dt.datetime(2022, 7, 5, 1, tzinfo=dt.UTC))
    assert summary["rows_read"] == 4
    errors = by_row(summary)
    # rows 3, 6, 7 are in 乾安县, outside 长春市: refused; row 5 (公主岭's old code) is 长春's.
    assert set(errors) == {3, 6, 7}
    assert summary["warnings"] == [
        {
            "row": 5,
            "column": "所在县（市、区）",
            "value": "220381",
            "reason": "旧行政区划代码，已按现行代码 220184（公主岭市）受理",
        }
    ]
    app = applications()["肉牛养殖项目2"]
    assert app.region_key == "220184" and app.pool_unit == "220184"
    assert app.founded_on == dt.date(2019, 5, 31) and app.beef_cattle

    # Dates and booleans in every accepted spelling, read the same way.
    import pandas as pd

    from models.sheets import parse_dates

    parsed = parse_dates(
        pd.Series(["43000", "2019/5/31", "2019年5月31日", "2017-01-02", "20170102", "2017.1.2", "x"])
    )
    assert [None if pd.isna(v) else v.date() for v in parsed] == [
        dt.date(2017, 9, 22),
        dt.date(2019, 5, 31),
        dt.date(2019, 5, 31),
        dt.date(2017, 1, 2),
        dt.date(2017, 1, 2),
        dt.date(2017, 1, 2),
        None,
    ]


@pytest.mark.also_postgres
def test_same_file_twice_and_corrected_resubmission(env: dict[str, object]) -> None:
    from flows.pool import pool_intake

    folder = inbox(env)
    first = [application(1), application(2, **{"带动创业人数": "-1"}), application(3)]
    sent = write_xlsx(folder / "乾安县-培育库申报表.xlsx", first).read_bytes()
    result = pool_intake(today=TODAY, approve=False)
    [summary] = result["files"]
    assert (summary["admitted"], summary["rejected"]) == (2, 1)
    assert not (folder / "乾安县-培育库申报表.xlsx").exists(), "taken out of the inbox once stored"
    messages = len(outbox())

    # The very same file again: nothing changes, nobody is told twice.
    (folder / "乾安县-培育库申报表.xlsx").write_bytes(sent)
    result = pool_intake(today=TODAY, approve=False)
    [summary] = result["files"]
    assert summary["duplicate_file"] and summary["duplicates"] == 2
    assert len(applications()) == 2
    assert len([m for m in outbox() if m.kind == "intake_result"]) == 1
    assert len(outbox()) == messages

    # The corrected file: row 3 fixed, row 2 changed (more jobs). Updated, not duplicated.
    corrected = [application(1, **{"吸纳就业人数": "80"}), application(2), application(3)]
    write_xlsx(folder / "乾安县-培育库申报表（更正）.xlsx", corrected)
    result = pool_intake(today=dt.date(2022, 7, 6), approve=False)
    [summary] = result["files"]
    assert (summary["admitted"], summary["updated"], summary["duplicates"], summary["rejected"]) == (
        1,
        1,
        1,
        0,
    )
    stored = applications()
    assert len(stored) == 3 and stored["肉牛养殖项目1"].jobs == 80
    with session_scope() as session:
        assert len(session.exec(select(IntakeFile)).all()) == 2


@pytest.mark.also_postgres
def test_a_large_corrected_resubmission_updates_by_key_and_never_duplicates(env: dict[str, object]) -> None:
    """Over a thousand rows, past the sizes where the intake changes method: stored rows looked up in
    one parameter (json_each on SQLite, ANY on PostgreSQL), new rows inserted without a merge (COPY on
    PostgreSQL), changed ones upserted."""
    from flows.pool import pool_intake

    folder = inbox(env)
    write_csv(folder / "乾安县-培育库申报表.csv", [application(n) for n in range(1, 1501)])
    [first] = pool_intake(today=TODAY, approve=False)["files"]
    assert (first["rows_read"], first["admitted"], first["rejected"]) == (1500, 1500, 0)

    # every odd project now employs 80; 100 projects are added
    corrected = [application(n, **({"吸纳就业人数": "80"} if n % 2 else {})) for n in range(1, 1601)]
    write_csv(folder / "乾安县-培育库申报表（更正）.csv", corrected)
    [second] = pool_intake(today=dt.date(2022, 7, 6), approve=False)["files"]
    assert (second["admitted"], second["updated"], second["duplicates"], second["rejected"]) == (
        100,
        750,
        750,
        0,
    )
    stored = applications()
    assert len(stored) == 1600
    assert (stored["肉牛养殖项目1"].jobs, stored["肉牛养殖项目2"].jobs, stored["肉牛养殖项目1600"].jobs) == (
        80,
        int(application(2)["吸纳就业人数"]),
        int(application(1600)["吸纳就业人数"]),
    )

    # A writer whose lookup ran before another's rows were committed (PostgreSQL's read committed)
    # believes them new: its insert fails on the unique key, and every row goes through the merge.
    import sqlalchemy as sa

    from models.db import upsert

    table = PoolApplication.__table__  # type: ignore[attr-defined]
    unique = ["credit_code", "project_name"]  # a pool project's identity, in every year
    with session_scope() as session:
        rows = [dict(r._mapping) for r in session.execute(sa.select(*(c for c in table.c if c.key != "id")))]
        for row in rows:
            row.update(jobs=99, content_hash="raced")
        update = [k for k in rows[0] if k not in unique]
        upsert(
            session,
            PoolApplication,
            rows,
            unique=unique,
            update=update,
            unless_equal="content_hash",
            new=[True] * 1600,
        )
    stored = applications()
    assert len(stored) == 1600 and {a.jobs for a in stored.values()} == {99}


def test_unreadable_or_unknown_files_are_kept_and_the_sender_told(env: dict[str, object]) -> None:
    from flows.pool import pool_intake

    folder = inbox(env)
    write_xlsx(folder / "某某单位-培育库.xlsx", [application(1)])
    write_csv(folder / "乾安县-没有表头.csv", [application(2)], headers=["甲", "乙"])
    write_xlsx(folder / "乾安县-缺列.xlsx", [application(3)], headers=HEADERS[:5])
    broken = write_csv(folder / "乾安县-多一列.csv", [application(4), application(5)], encoding="utf-8-sig")
    with broken.open("a", encoding="utf-8") as fh:  # a row with an unquoted comma, after good rows
        fh.write(",".join(str(v) for v in application(6).values()) + ",多出的一列\n")
    state = pool_intake(today=TODAY, approve=False, return_state=True)
    result = state.result()
    refused = {r["file"]: r["refused"] for r in result["files"]}
    assert "无法从文件名识别报送单位" in refused["某某单位-培育库.xlsx"]
    # The operator sees every returned file in the run's summary, not only the bureau in its mailbox.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [summary] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["pool-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert "**本次运行退回 4 个文件**" in str(summary.data)
    assert "- 某某单位-培育库.xlsx：" in str(summary.data)
    assert "找不到表头" in refused["乾安县-没有表头.csv"]
    assert "缺少必填列：负责人身份证号、负责人类别" in refused["乾安县-缺列.xlsx"]
    assert "第 4 行有 30 列，表头只有 29 列" in refused["乾安县-多一列.csv"]
    assert not applications(), "a file refused part-way keeps none of its rows"
    with session_scope() as session:
        kept = session.exec(select(IntakeRejection)).all()
    assert len(kept) == 4 and all(Path(k.kept_at).exists() for k in kept)
    told = {m.unit_key for m in outbox() if m.kind == "rejection"}
    assert told == {"220000", "220723"}  # unknown sender: the province is told


def _pool_with_candidates(env: dict[str, object], *, on_admission: bool = True) -> None:
    """乾安县: two projects meeting the city bar, one not; 梅河口市: one meeting the province bar. With
    `on_admission`, the year recommends straight from admission (the switch these approval tests are
    about; 2022 itself recommends through the review's naming)."""
    if on_admission:
        recommend_on_admission(Path(str(env["config_dir"])))
    folder = inbox(env)
    write_xlsx(
        folder / "乾安县-培育库申报表.xlsx",
        [
            application(1, **{"是否就业帮扶车间": "是"}),  # the highest priority
            application(2),
            application(3, **{"带动创业人数": "12"}),  # county bar only: stays in the county pool
        ],
    )
    write_xlsx(
        folder / "梅河口市-培育库申报表.xlsx",
        [application(4, **{"所在县（市、区）": "梅河口市", "统一社会信用代码": credit_code(4, "220581")})],
    )


def test_3_3_only_named_projects_go_up_admission_recommends_nothing(env: dict[str, object]) -> None:
    """三(三) "对经评审命名且符合上级入库条件的项目做到应推尽推": the same candidates, admitted in 2022,
    are not proposed upward and the run does not wait for anyone."""
    from flows.pool import pool_intake

    _pool_with_candidates(env, on_admission=False)
    result = pool_intake(today=TODAY)
    assert result["proposals_open"] == 0 and "approval" not in result
    assert result["pools"] == {"province": 0, "city": 1, "county": 2}  # project 3 is below 乾安县's bar
    with session_scope() as session:
        assert session.exec(select(Recommendation)).all() == []
    assert not [m for m in outbox() if m.kind in ("approval_due", "recommendation")]


@pytest.mark.also_postgres
def test_recommendation_paused_for_approval_and_resumed_with_exclusions(env: dict[str, object]) -> None:
    from prefect.flow_runs import resume_flow_run

    from flows.pool import pool_intake

    _pool_with_candidates(env)
    result: dict[str, Any] = {}
    runner, tag = run_tagged(lambda: pool_intake(today=TODAY), result)
    paused = wait_for_pause(tag)
    # 梅河口市 goes straight to the province; 乾安县's two qualifying projects go to 松原市.
    with session_scope() as session:
        recs = session.exec(select(Recommendation)).all()
        apps = {a.id: a for a in session.exec(select(PoolApplication)).all()}
    assert sorted((apps[r.application_id].project_name, r.to_unit) for r in recs) == [
        ("肉牛养殖项目1", "220700"),
        ("肉牛养殖项目2", "220700"),
        ("肉牛养殖项目4", "220000"),
    ]
    excluded = next(r for r in recs if apps[r.application_id].project_name == "肉牛养殖项目2")
    # The form takes only the decisions (one switch and one reason per proposal), never the proposals
    from prefect.input.actions import read_flow_run_input

    keyset = paused.state.state_details.run_input_keyset
    schema = read_flow_run_input(keyset["schema"], flow_run_id=paused.id)
    schema = json.loads(schema) if isinstance(schema, str) else schema
    fields = schema["properties"]
    assert "array" not in json.dumps(schema)  # no list: no delete or "Add item" in the UI
    assert set(fields) == {"approver", *(f"{f}_{r.id}" for r in recs for f in ("approve", "reason"))}
    assert fields[f"approve_{excluded.id}"]["title"] == f"{excluded.id}号 肉牛养殖项目2：同意推荐"
    answer: dict[str, object] = {"approver": "省就业服务局 李四"}
    for r in recs:
        answer[f"approve_{r.id}"] = r.id != excluded.id
        answer[f"reason_{r.id}"] = "材料待核实" if r.id == excluded.id else ""
    resume_flow_run(paused.id, run_input=answer)
    runner.join(timeout=120)
    assert result["approval"] == {"approved": 2, "excluded": 1, "ignored": 0}

    with session_scope() as session:
        decided = {r.id: r for r in session.exec(select(Recommendation)).all()}
    assert decided[excluded.id].status == "excluded" and decided[excluded.id].reason == "材料待核实"
    approved = [r for r in decided.values() if r.status == "approved"]
    assert len(approved) == 2
    # Stamped on the run's business date (2022-07-05, 09:00 in Changchun), not the wall clock, so the
    # 包保 these approvals start is owed in 2022.
    assert all(
        r.decided_by == "省就业服务局 李四"
        and r.decided_at == dt.datetime(2022, 7, 5, 1, 0, tzinfo=dt.UTC)
        and r.flow_run_id == str(paused.id)
        for r in approved
    )
    told = {(m.unit_key, m.kind) for m in outbox() if m.kind == "recommendation"}
    assert told == {
        ("220723", "recommendation"),
        ("220700", "recommendation"),
        ("220581", "recommendation"),
        ("220000", "recommendation"),
    }
    to_county = next(m for m in outbox() if m.kind == "recommendation" and m.unit_key == "220723")
    assert "材料待核实" in to_county.body and "包保" in to_county.body

    # The approvals start 2022's 包保: 5 working days after Tue 2022-07-05 is Tue 2022-07-12.
    from flows.services import quarterly_visits
    from models.tables import ObligationInstance

    quarterly_visits(today=TODAY)
    with session_scope() as session:
        owed = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "leader_assignment")
        ).all()
    assert {(i.year, i.period, i.due_on) for i in owed} == {(2022, "2022", dt.date(2022, 7, 12))}
    assert len(owed) == 2

    # Next round: the city pool's project 1 meets the province bar → proposed one level further.
    from config import load_config
    from tasks.pool import propose_recommendations

    waiting = propose_recommendations.fn(load_config(), TODAY, dt.datetime.now(dt.UTC))
    assert [(w["project"], w["route"]) for w in waiting] == [("肉牛养殖项目1", "松原市 → 吉林省")]


def test_approval_timeout_leaves_proposals_open_and_reminds_the_operator(
    env: dict[str, object], config_dir: Path
) -> None:
    from flows.pool import pool_intake

    edit_yaml(
        config_dir / "campaigns" / "2022.yaml", lambda d: d["pool"].update(approval_timeout_minutes=0.05)
    )
    _pool_with_candidates(env)
    state = pool_intake(today=TODAY, return_state=True)
    assert state.is_completed(), state  # waiting for a decision is not a failure
    result = state.result()
    assert result["approval"] == "timed_out"
    with session_scope() as session:
        assert {r.status for r in session.exec(select(Recommendation)).all()} == {"proposed"}
    asked = {m.step: m for m in outbox() if m.kind == "approval_due"}
    assert set(asked) == {"waiting", "timed_out"}  # told when the run paused, and when it gave up
    assert asked["waiting"].unit_key == "220000" and "3 个" in asked["waiting"].subject
    assert "/flow-run/" in asked["waiting"].body  # the link to the paused run's Resume button
    assert (
        asked["timed_out"].subject.startswith("【仍待审批】")
        and "保持“拟推荐”状态" in asked["timed_out"].body
    )
    assert asked["waiting"].status == "sent"  # delivered before the run waited
    # Another run the same day does not tell the province again.
    pool_intake(today=TODAY)
    assert len([m for m in outbox() if m.kind == "approval_due"]) == 2


def test_cli_intake_prints_every_error_as_json(
    env: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    rows = [application(n, **({"联系电话": "12345"} if n % 3 == 0 else {})) for n in range(1, 61)]
    path = write_csv(tmp_path / "乾安县-培育库申报表.csv", rows, encoding="utf-8-sig")
    assert main(["intake", str(path), "--json", "--today", "2022-07-05"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_read"], summary["admitted"], summary["rejected"]) == (60, 40, 20)
    assert len(summary["errors"]) == 20  # every one, not only the first few
    assert {e["column"] for e in summary["errors"]} == {"联系电话"}
    assert path.exists(), "a file named on the command line is left where it is"
    assert [m.kind for m in outbox() if m.unit_key == "220723"] == ["intake_result"]

    # A header and nothing under it: refused, with the reason.
    empty = write_csv(tmp_path / "乾安县-空表.csv", [], encoding="utf-8-sig")
    assert main(["intake", str(empty), "--json", "--today", "2022-07-05"]) == 1
    assert "没有数据行" in json.loads(capsys.readouterr().out)["refused"]

    # A day outside the 2022 campaign is refused before the workbook is stored.
    other = write_csv(tmp_path / "乾安县-培育库申报表-补报.csv", [application(99)], encoding="utf-8-sig")
    assert main(["intake", str(other), "--json", "--today", "2023-03-01"]) == 2
    assert "不在2022年度活动期内" in capsys.readouterr().err
    assert "肉牛养殖项目99" not in applications()


def test_3_3_the_rolling_pool_measures_years_of_operation_on_the_day_a_file_arrives(
    env: dict[str, object],
) -> None:
    """三(三) the pool takes applications all year ("广泛收入"): an application's years of operation count to
    the day its file arrives. The 申请日 of 三(六) ("2022年市县两级基地评审项目申请日为2022年5月31日") is
    the review's, not the pool's. The county bar is 1 year (2022 file, 示意).

    Project A, founded 2021-06-01, arrives 2022-07-05: 399 days, admitted (on 05-31 it would have been
    364). Project B, founded 2021-07-10: 360 days on 07-05, refused; resubmitted on 2022-12-05 (513 days)
    it is admitted. B's landline keeps its area code when masked."""
    from config import load_config
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    a = application(1, **{"所在县（市、区）": "农安县", "成立日期": "2021-06-01", "项目名称": "项目A"})
    b = application(
        2,
        **{
            "所在县（市、区）": "农安县",
            "成立日期": "2021-07-10",
            "项目名称": "项目B",
            "联系电话": "0431-85123456",
        },
    )
    path = write_xlsx(inbox(env) / "农安县-培育库申报表.xlsx", [a, b])
    summary = take_in_workbook(cfg, path, dt.datetime(2022, 7, 5, 1, 0, tzinfo=dt.UTC))
    assert summary["rejected"] == 0
    stored = applications()
    assert stored["项目A"].admitted is True
    assert stored["项目B"].admitted is False and "经营年限" in stored["项目B"].admission_note
    assert stored["项目B"].phone_masked == "0431-****3456"

    again = write_xlsx(inbox(env) / "农安县-培育库申报表-12月.xlsx", [b])
    take_in_workbook(cfg, again, dt.datetime(2022, 12, 5, 1, 0, tzinfo=dt.UTC))
    assert applications()["项目B"].admitted is True


def test_3_6_the_application_date_belongs_to_the_review() -> None:
    """三(六) "2022年市县两级基地评审项目申请日为2022年5月31日，申报单位需提供2021年6月1日至2022年5月31日
    期间的相关材料": the review measures its applicants on 2022-05-31; the 2022 file sets no day for the
    pool, which judges each application on the day it arrives."""
    from config import load_config

    campaign = load_config(2022).campaign
    assert campaign.review is not None and campaign.review.application_date == dt.date(2022, 5, 31)
    assert campaign.application_date == dt.date(2022, 5, 31)
    assert (campaign.application_window.start, campaign.application_window.end) == (
        dt.date(2021, 6, 1),
        dt.date(2022, 5, 31),
    )
    assert campaign.pool is not None and campaign.pool.years_operating_on is None


def test_3_3_an_export_of_the_employment_information_system_is_read_through_the_configured_mapping(
    env: dict[str, object], config_dir: Path
) -> None:
    """三(三) "依托吉林就业信息管理系统…开展本地培育库建设": that system's export has its own headers and
    codes (not public; this fixture invents them). `imports.pool_intake` in the campaign file names its
    headers as aliases of the template's and its codes as our values; the rows are then checked as usual."""
    from config import load_config
    from config.errors import ConfigError
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy

    mapping = {
        "source": "吉林就业信息管理系统",
        "headers": {"项目名称": ["创业项目名称"], "申报主体名称": ["经营主体"], "主体类型": ["主体类别代码"]},
        "values": {"主体类型": {"02": "农民专业合作社"}},
    }
    edit_yaml(config_dir / "campaigns" / "2022.yaml", lambda d: d.update(imports={"pool_intake": mapping}))
    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    headers = [
        {"项目名称": "创业项目名称", "申报主体名称": "经营主体", "主体类型": "主体类别代码"}.get(h, h)
        for h in HEADERS
    ]
    rows = [
        {
            {"项目名称": "创业项目名称", "申报主体名称": "经营主体", "主体类型": "主体类别代码"}.get(k, k): v
            for k, v in application(n, **{"主体类型": code}).items()
        }
        for n, code in ((1, "02"), (2, "99"))
    ]
    path = write_xlsx(inbox(env) / "乾安县-就业信息系统导出.xlsx", rows, headers=headers)
    summary = take_in_workbook(cfg, path, dt.datetime(2022, 7, 5, 1, tzinfo=dt.UTC))
    assert (summary["rows_read"], summary["rejected"]) == (2, 1)
    assert [(e["row"], e["column"]) for e in summary["errors"]] == [(3, "主体类型")]  # "99" is no code
    stored = applications()
    assert stored["肉牛养殖项目1"].entity_type == "农民专业合作社"

    # A mapping naming a column the template does not have is the config's error, not the file's.
    edit_yaml(
        config_dir / "campaigns" / "2022.yaml",
        lambda d: d["imports"]["pool_intake"]["headers"].update({"项目编码": ["项目代码"]}),
    )
    with pytest.raises(
        ConfigError, match=r"campaigns/2022.yaml: imports.pool_intake: 培育库申报表没有“项目编码”列"
    ):
        take_in_workbook(load_config(), path, dt.datetime(2022, 7, 6, 1, tzinfo=dt.UTC))


STANDARD_HEADERS = ["单位", "经营年限（年）", "经营场所面积（平方米）", "种植面积（亩）", "带动创业人数"]
STANDARD_HEADERS += ["吸纳就业人数", "员工人均年工资（元）"]


def test_3_2_a_filed_standard_becomes_the_units_admission_bar(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """三(二)、四(二) "市县可在本级基地建设标准基础上降低入库条件…入库标准于 6 月底前报省厅备案": 长岭县
    files a 入库标准表 asking 5 start-ups and 5 jobs (the county default asks 10 and 10). Its project
    with 8 and 8, refused in June, is admitted once the bar is filed. 松原市 may not file 长岭县's bar."""
    from flows.cli import main
    from flows.june import standards_filing
    from tasks.pool import take_in_workbook

    changling = "220722"
    project = {
        "所在县（市、区）": "长岭县",
        "统一社会信用代码": credit_code(11, changling),
        "带动创业人数": "8",
        "吸纳就业人数": "8",
        "其中脱贫人口就业人数": "2",
    }
    from config import load_config
    from models.clock import moment
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    folder = Path(str(env["home"])) / "uploads"
    first = take_in_workbook(
        cfg,
        write_xlsx(folder / "长岭县-培育库申报表.xlsx", [application(11, **project)]),
        moment(dt.date(2022, 6, 24), cfg.campaign),
    )
    assert (first["admitted"], first["not_admitted"]) == (0, 1)
    [app] = applications().values()
    assert app.admission_note == "未达县级入库条件：带动创业8人，长岭县标准10人；吸纳就业8人，长岭县标准10人"

    sheets = Path(str(env["home"])) / "inbox" / "standards_sheet"
    own = {"经营年限（年）": "1", "经营场所面积（平方米）": "200", "种植面积（亩）": "0"}
    own |= {"带动创业人数": "5", "吸纳就业人数": "5", "员工人均年工资（元）": "3000"}
    write_xlsx(sheets / "长岭县-入库标准表.xlsx", [{"单位": "", **own}], STANDARD_HEADERS)
    write_xlsx(sheets / "松原市-入库标准表.xlsx", [{"单位": "长岭县", **own}], STANDARD_HEADERS)
    result = standards_filing(today=dt.date(2022, 6, 28))
    taken = {s["file"]: s for s in result["intake"]["standards_sheet"]}
    assert taken["长岭县-入库标准表.xlsx"]["new"] == 1
    assert taken["松原市-入库标准表.xlsx"]["errors"][0]["reason"] == "只能报送本单位的入库标准"

    again = take_in_workbook(  # corrected (another village), so not the same file: judged again
        cfg,
        write_xlsx(folder / "长岭县-培育库申报表（更正）.xlsx", [application(11, **project, 村="东村")]),
        moment(dt.date(2022, 7, 5), cfg.campaign),
    )
    assert again["updated"] == 1
    [app] = applications().values()
    assert (app.admitted, app.level, app.pool_unit) == (True, "county", changling)

    assert main(["check", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "入库标准表：已报送 1 个单位，未报送 69 个单位" in out  # 11 city-level units and 59 counties
    assert "乾安县（配置文件中有标准）" in out and "长岭县" not in out.split("未报送（")[1]


def test_an_approval_outlasts_the_engines_lease_renewal(env: dict[str, object]) -> None:
    """A deployment run paused for an operator waits as long as the campaign says, however long that is.

    The run is executed as a worker or `campaign serve` executes it (Prefect's engine in a process of its
    own). Prefect's engine renews a deployment concurrency lease at 0.75 of 300 s; a pause revokes that
    lease, so the renewal ended the run Crashed after ~225 s. The engine here renews at 0.03 of its 300 s
    (every 9 s), and the run stays paused well past that, while another run of the same flow works."""
    import os
    import subprocess
    import sys
    import time

    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from config import load_config
    from config.flows import BY_NAME
    from flows.pool import pool_intake
    from flows.registry import deployment_of

    _pool_with_candidates(env)
    deployment_id = deployment_of(BY_NAME["pool_intake"], load_config(), by_module=True).apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id, parameters={"today": str(TODAY)})
        client.set_flow_run_state(run.id, Pending())  # as a runner or worker does before it starts one
        engine = (
            "import runpy, prefect.concurrency._leases as leases; leases._RENEWAL_FRACTION = 0.03; "
            "runpy.run_module('prefect.engine', run_name='__main__')"
        )
        proc = subprocess.Popen([sys.executable, "-c", engine, str(run.id)], env=dict(os.environ))
        try:
            deadline = time.monotonic() + 90
            while client.read_flow_run(run.id).state_type.value != "PAUSED":
                assert proc.poll() is None and time.monotonic() < deadline, "the run never paused"
                time.sleep(0.5)
            paused_at = time.monotonic()
            # While it waits, it blocks no one: another run of the same flow and year works and ends.
            assert pool_intake(today=TODAY, approve=False)["proposals_open"] == 3
            time.sleep(max(0.0, paused_at + 20 - time.monotonic()))  # two renewals' worth, idle
            state = client.read_flow_run(run.id).state
            assert state is not None and state.type.value == "PAUSED", state
            with session_scope() as session:
                recs = session.exec(select(Recommendation)).all()
            answer: dict[str, object] = {"approver": "省就业服务局 李四"}
            for r in recs:
                answer |= {f"approve_{r.id}": True, f"reason_{r.id}": ""}
            client.resume_flow_run(run.id, run_input=answer)
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        final = client.read_flow_run(run.id).state
    assert final is not None and final.type.value == "COMPLETED", final
    with session_scope() as session:
        assert {r.status for r in session.exec(select(Recommendation)).all()} == {"approved"}
