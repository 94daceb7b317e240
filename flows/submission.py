"""The operator's form for a submission received outside the inbox (by e-mail, IM or on paper).

Its dropdowns (obligations, units) come from the campaign config: they are the flow's parameter schema,
which Prefect computes when the flow is defined, so this module reads the config when it is imported.
Only `campaign serve`, `campaign record` and the runner executing this form import it; every other
flow module reads the config when it runs.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from config import load_config
from config.errors import SubmissionError
from config.schema import Once, Periodic
from flows.dated import run_namer
from models.clock import local_today
from tasks.audit import audited
from tasks.delivery import deliver_all
from tasks.intake import record_operator_submission
from tasks.report import publish_status
from tasks.sync import sync_campaign


def _choices() -> tuple[dict[str, str], dict[str, str]]:
    cfg = load_config()
    obligations = {
        f"{ob.title}（{ob.key}）": ob.key
        for ob in cfg.campaign.obligations
        if ob.subject == "unit" and isinstance(ob.schedule, Once | Periodic)
    }
    units = {f"{u.name}（{u.key}）": u.key for u in cfg.units}
    return obligations, units


_OBLIGATIONS, _UNITS = _choices()
ObligationChoice = Enum("ObligationChoice", {v: k for k, v in _OBLIGATIONS.items()}, type=str)  # type: ignore[misc]
UnitChoice = Enum("UnitChoice", {v.replace("-", "_"): k for k, v in _UNITS.items()}, type=str)  # type: ignore[misc]


class SubmissionRecord(BaseModel):
    """登记一份通过邮件、即时通讯或纸质方式收到的报送材料。"""

    model_config = ConfigDict(use_enum_values=True)

    obligation: ObligationChoice = Field(title="报送事项")  # type: ignore[valid-type]
    unit: UnitChoice = Field(title="报送单位")  # type: ignore[valid-type]
    submitted_by: str = Field(title="登记人", min_length=1)
    submitted_on: dt.date | None = Field(default=None, title="收到日期（留空为今天）")
    note: str = Field(default="", title="备注（如：邮件报送、纸质材料）")
    # The CLI's way to archive a file with the record (`campaign record-submission --file`). Not in the
    # UI's form: there an operator uploads the file on the unit's page (portal/, behind the password).
    file_path: SkipJsonSchema[str | None] = None

    @classmethod
    def for_keys(cls, obligation_key: str, unit_key: str, **fields: Any) -> SubmissionRecord:
        """The form filled in by keys (the CLI's way in): labels are looked up from the config."""
        by_key = {v: k for k, v in _OBLIGATIONS.items()}
        units = {v: k for k, v in _UNITS.items()}
        if obligation_key not in by_key:
            raise SubmissionError(obligation_key, f"不可登记的事项，可选：{'、'.join(by_key)}")
        if unit_key not in units:
            raise SubmissionError(unit_key, "未知单位代码")
        return cls(obligation=by_key[obligation_key], unit=units[unit_key], **fields)


@flow(
    name="record_submission",
    flow_run_name=run_namer("record_submission"),
    description="操作员登记报送：登记各单位通过邮件、即时通讯或纸质方式报送的材料，登记后不再提醒该单位，并向其发送回执。"
    "收到的是文件时，请在该单位的报送页面“代单位上传”（全省进度一览中点击单位名称即可打开），文件与上传人一并留档。",
)
def record_submission(record: SubmissionRecord) -> dict[str, Any]:
    log = get_run_logger()
    cfg = load_config()
    obligation_key = _OBLIGATIONS[str(record.obligation)]
    unit_key = _UNITS[str(record.unit)]
    submitted_on = record.submitted_on or local_today(cfg.campaign)
    with audited("record_submission", record.model_dump(mode="json")) as counts:
        sync_campaign(cfg, [obligation_key])
        new = record_operator_submission(
            cfg,
            obligation_key=obligation_key,
            unit_key=unit_key,
            submitted_on=submitted_on,
            submitted_by=record.submitted_by,
            note=record.note,
            file_path=Path(record.file_path) if record.file_path else None,
        )
        counts["recorded"] = int(new)
        counts["delivery"] = deliver_all(cfg.campaign)
        publish_status(cfg, obligation_key, submitted_on, {"登记": int(new)})
        log.info(
            "登记 %s %s：%s", record.unit, record.obligation, "已登记" if new else "此前已登记，未重复记录"
        )
    return counts
