"""Submissions through the inbox folder and the operator's form: accepted, refused with a reason the
sender reads, kept in either case, and never counted twice."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlmodel import select

from models.db import session_scope
from models.tables import IntakeRejection, ObligationInstance, Submission
from tests.helpers import outbox

pytestmark = pytest.mark.usefixtures("prefect_harness")


def drop(home: Path, obligation: str, name: str, content: bytes = b"%PDF-1.4 test") -> Path:
    folder = home / "inbox" / obligation
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def instances(obligation: str) -> dict[str, ObligationInstance]:
    with session_scope() as session:
        rows = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == obligation)
        ).all()
    return {r.unit_key: r for r in rows}


@pytest.mark.also_postgres
def test_good_file_accepted_archived_and_receipted(env: dict[str, object]) -> None:
    from flows.june import june_survey

    home = Path(str(env["home"]))
    path = drop(home, "june_survey", "南关区-调研材料.pdf")
    result = june_survey(today=dt.date(2022, 6, 24))
    assert result["intake"] == {"accepted": 1, "duplicates": 0, "rejected": 0}
    assert not path.exists(), "taken out of the inbox once stored"
    inst = instances("june_survey")["220102"]
    assert inst.status == "submitted" and inst.submitted_at is not None
    with session_scope() as session:
        sub = session.exec(select(Submission)).one()
    assert Path(sub.archived_path or "").read_bytes() == b"%PDF-1.4 test"
    receipt = next(m for m in outbox() if m.kind == "receipt")
    assert receipt.unit_key == "220102" and "已按期报送" in receipt.body

    # The same file again (a bureau sends twice): nothing new, no second receipt.
    drop(home, "june_survey", "南关区-调研材料.pdf")
    result = june_survey(today=dt.date(2022, 6, 27))
    assert result["intake"] == {"accepted": 0, "duplicates": 1, "rejected": 0}
    with session_scope() as session:
        assert len(session.exec(select(Submission)).all()) == 1
    assert len([m for m in outbox() if m.kind == "receipt"]) == 1


@pytest.mark.parametrize(
    ("name", "content", "unit", "reason"),
    [
        ("调研材料.pdf", b"x", None, "无法从文件名识别报送单位"),
        ("南关区-调研材料.exe", b"x", "220102", "文件类型“.exe”不予受理"),
        ("南关区-调研材料.pdf", b"", "220102", "文件为空"),
        ("吉林省-调研材料.pdf", b"x", "220000", "由市级、县级单位报送，吉林省无需报送此项"),
        ("229999-调研材料.pdf", b"x", None, "无法从文件名识别报送单位"),
    ],
)
def test_broken_submission_file_is_refused_kept_and_reported(
    env: dict[str, object], name: str, content: bytes, unit: str | None, reason: str
) -> None:
    from flows.june import june_survey

    home = Path(str(env["home"]))
    drop(home, "june_survey", name, content)
    drop(home, "june_survey", "宽城区-调研材料.pdf")  # a good file in the same batch is still taken
    result = june_survey(today=dt.date(2022, 6, 24))
    assert result["intake"] == {"accepted": 1, "duplicates": 0, "rejected": 1}
    with session_scope() as session:
        rejection = session.exec(select(IntakeRejection)).one()
        submissions = session.exec(select(Submission)).all()
    assert rejection.file_name == name and reason in rejection.reason and rejection.unit_key == unit
    assert Path(rejection.kept_at).read_bytes() == content, "the refused file is kept unchanged"
    assert [s.file_name for s in submissions] == ["宽城区-调研材料.pdf"]
    states = {k: v.status for k, v in instances("june_survey").items()}
    assert states["220103"] == "submitted"
    assert list(states.values()).count("submitted") == 1, "a refused file satisfies nothing"
    notice = next(m for m in outbox() if m.kind == "rejection")
    assert notice.unit_key == (unit or "220000"), (
        "the sender is told, or the province if the sender is unknown"
    )
    assert name in notice.body and reason in notice.body

    june_survey(today=dt.date(2022, 6, 24))  # a rerun neither re-records nor re-sends the refusal
    assert len([m for m in outbox() if m.kind == "rejection"]) == 1


def test_former_code_of_gongzhuling_is_recognised(env: dict[str, object]) -> None:
    from flows.june import standards_filing

    drop(Path(str(env["home"])), "standards_filing", "220381-公主岭标准备案.pdf")
    result = standards_filing(today=dt.date(2022, 6, 24))
    assert result["intake"]["files"]["accepted"] == 1  # documents; the 入库标准表 sheets beside them
    assert instances("standards_filing")["220184"].status == "submitted"


def test_operator_records_a_submission_from_the_form(env: dict[str, object]) -> None:
    from flows.submission import SubmissionRecord, record_submission

    record = SubmissionRecord(
        obligation="开展返乡入乡创业实地调研（june_survey）",
        unit="梅河口市（220581）",
        submitted_by="省就业服务局 王磊",
        submitted_on=dt.date(2022, 6, 28),
        note="邮件报送",
    )
    assert record_submission(record)["recorded"] == 1
    assert record_submission(record)["recorded"] == 0, "recording the same thing twice changes nothing"
    inst = instances("june_survey")["220581"]
    assert inst.status == "submitted"
    with session_scope() as session:
        sub = session.exec(select(Submission)).one()
    assert (sub.source, sub.submitted_by, sub.note) == ("operator", "省就业服务局 王磊", "邮件报送")
    assert len([m for m in outbox() if m.kind == "receipt"]) == 1


def test_form_refuses_unknown_choices() -> None:
    from pydantic import ValidationError

    from flows.submission import SubmissionRecord

    with pytest.raises(ValidationError):
        SubmissionRecord(obligation="june_survey", unit="不存在的县（000000）", submitted_by="x")
    schema = SubmissionRecord.model_json_schema()
    assert "南关区（220102）" in schema["$defs"]["UnitChoice"]["enum"]


def test_status_artifact_matches_the_tables(env: dict[str, object]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.june import june_survey

    drop(Path(str(env["home"])), "june_survey", "南关区-调研材料.pdf")
    june_survey(today=dt.date(2022, 6, 28))
    drop(Path(str(env["home"])), "june_survey", "宽城区-调研材料.pdf")
    state = june_survey(today=dt.date(2022, 7, 4), return_state=True)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(  # this run's: other tests run june_survey on the same server
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["june-survey-status"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            ),
        )
    table = artifacts[0].data
    rows = {r["代码"]: r for r in (json.loads(table) if isinstance(table, str) else table)}
    db = instances("june_survey")
    assert set(rows) == set(db)
    for key, inst in db.items():
        row = rows[key]
        assert row["截止日期"] == inst.due_on.isoformat()
        assert (row["状态"] in ("已报送", "逾期报送")) == (inst.status == "submitted")
    assert (rows["220102"]["状态"], rows["220102"]["逾期天数"]) == ("已报送", 0)
    assert (rows["220103"]["状态"], rows["220103"]["逾期天数"]) == ("逾期报送", 4)
    assert (rows["220104"]["状态"], rows["220104"]["逾期天数"]) == ("逾期未报", 4)
    assert rows["220104"]["最近提醒"] == "第1次督办"
