"""三(三) The rolling incubation-pool intake: application workbooks in, every project meeting its pool's bar
admitted (应收尽收), three pools kept. Projects go up through the review's naming (flows/review.py); a year
whose config sets `pool.propose_on_admission` also proposes them here, for an operator's approval."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from config.errors import SubmissionError
from config.flows import BY_NAME
from config.settings import get_settings
from flows.approval import ApprovalForm, ask_and_wait, decision_form, decisions_of
from flows.dated import business_run, campaign_for, refuses_calmly, run_namer
from models import markdown
from models.clock import moment, now
from models.messages import run_summary
from tasks.approval import ApprovalRequest
from tasks.delivery import deliver_all
from tasks.inbox import FolderIntake, fail_if_nothing_done, tell_refusals
from tasks.intake import submitted_file
from tasks.overview import publish_overview
from tasks.pool import (
    OBLIGATION,
    POOL_INTAKE,
    decide_recommendations,
    pool_rules,
    propose_recommendations,
    publish_pools,
    take_in_workbook_task,
)
from tasks.sheets import brief, empty_summary, take_in_sheets
from tasks.sync import sync_campaign


class ProposalDecision(BaseModel):
    id: int = Field(title="编号")
    route: str = Field(title="推荐路径")
    project: str = Field(title="项目名称")
    entity: str = Field(title="申报主体")
    priority: float = Field(title="优先分")
    approve: bool = Field(default=True, title="同意推荐")
    reason: str = Field(default="", title="不同意的理由")


class RecommendationApproval(ApprovalForm):
    """逐级推荐审批：逐项确认；取消“同意推荐”即排除该项目，并请填写理由。"""


DECIDED = ("approve", "reason")  # what the operator decides per proposal; the rest is shown read-only


def _approval_request(count: int) -> ApprovalRequest:
    return ApprovalRequest(
        topic="pool",
        flow_name="pool_intake",
        what="个培育库项目等待逐级推荐审批",
        intro=f"培育库有 {count} 个项目符合上一级入库条件，拟推荐上级，等待审批",
        state="“拟推荐”",
        action="逐项确认“同意推荐”，不同意的取消勾选并填写理由",
    )


def _proposals(waiting: list[dict[str, Any]]) -> list[ProposalDecision]:
    fields = ("id", "route", "project", "entity", "priority")
    return [ProposalDecision(**{k: p[k] for k in fields}) for p in waiting]


def _approval_form(waiting: list[dict[str, Any]]) -> Any:
    rows = [(p["id"], p["route"], p["project"], p["entity"], p["priority"]) for p in waiting]
    description = (
        f"**{len(waiting)} 个培育库项目符合上一级入库条件，拟逐级推荐（应推尽推）。**\n\n"
        "请填写审批人；对不同意推荐的项目，关闭其“同意推荐”并填写理由，然后提交。\n\n"
        + markdown.table(("编号", "推荐路径", "项目名称", "申报主体", "优先分"), rows)
    )
    return decision_form(RecommendationApproval, _proposals(waiting), DECIDED, description)


@flow(
    name="pool_intake",
    flow_run_name=run_namer("pool_intake"),
    description="三(三) 培育库滚动入库：收取各地培育库申报表，逐行校验、应收尽收，将处理结果通知报送单位，"
    "发布三级培育库清单。经评审命名且符合上级入库条件的项目在基地评审命名时推荐上级（应推尽推）；"
    "年度配置为“入库即推荐”时，本流程对符合上一级入库条件的项目提请审批后推荐。",
)
@refuses_calmly
def pool_intake(
    today: dt.date | None = None,
    dry_run: bool = False,
    campaign_year: int | None = None,
    files: list[str] | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    """Take in the waiting workbooks (or `files`), propose recommendations and, if `approve`, pause for a decision.

    Files in the inbox folder are removed once taken in (the archive keeps them); `files` given
    explicitly are left where they are. A `dry_run` only lists the workbooks waiting in the inbox.
    """
    log = get_run_logger()
    cfg, today = campaign_for("pool_intake", today, campaign_year)
    rules = pool_rules(cfg)
    received_at = moment(today, cfg.campaign)
    parameters = {"files": files, "approve": approve, "dry_run": dry_run}
    with business_run("pool_intake", cfg, today, parameters) as counts:
        sync_campaign(cfg, [OBLIGATION])
        if dry_run:
            inbox = get_settings().inbox / OBLIGATION
            waiting = (
                sorted(p.name for p in inbox.iterdir() if not p.name.startswith("."))
                if inbox.is_dir()
                else []
            )
            counts["waiting_files"] = len(waiting)
            log.info(
                "预演：收件箱中有 %d 个待处理的培育库申报表，未处理：%s", len(waiting), "、".join(waiting)
            )
            return counts
        intakes: list[FolderIntake] = []
        if files is None:  # the inbox, through the one way a file leaves it (tasks/inbox.py)
            intakes.append(take_in_sheets(cfg, POOL_INTAKE, received_at))
            results = list(intakes[0].results)
        else:  # named by an operator: only files inside the inbox or upload folders, left where they are
            results = []
            for name in files:
                try:
                    path = submitted_file(name)
                except SubmissionError as exc:
                    log.error("不予受理 %s：%s", name, exc.reason)
                    results.append(empty_summary(Path(name)) | {"refused": exc.reason})
                    continue
                results.append(take_in_workbook_task(cfg, path, received_at))
        tell_refusals(cfg)
        counts["files"] = [brief(r) for r in results]  # the audit keeps counts and the first errors
        for r in results:
            if r.get("refused"):
                log.warning("退回 %s：%s", r["file"], r["refused"])
        kept = [k for i in intakes for k in i.kept]
        if kept:
            counts["kept"] = kept
        # 2022: projects go up through the review's naming (应推尽推 of the named); only a year whose
        # notice recommends on admission proposes here.
        waiting = propose_recommendations(cfg, today, received_at) if rules.propose_on_admission else []
        counts["proposals_open"] = len(waiting)
        if waiting and approve:
            form = _approval_form(waiting)
            request = _approval_request(len(waiting))
            answer = ask_and_wait(cfg, request, waiting, form, rules.approval_timeout_minutes, today)
            if answer is None:
                counts["approval"] = "timed_out"
                log.warning("%d 个推荐项目未获审批，已提醒省级经办人；项目保持“拟推荐”状态", len(waiting))
            else:
                decided = decisions_of(answer, _proposals(waiting), DECIDED)
                decisions = [(d.id, d.approve, d.reason) for d in decided]
                counts["approval"] = decide_recommendations(
                    cfg,
                    decisions,
                    decided_by=answer.approver,
                    decided_at=now(),
                    flow_run_id=str(flow_run.id) if flow_run.id else None,
                )
        counts["delivery"] = deliver_all(cfg.campaign)
        returned = [(r["file"], r["refused"]) for r in results if r.get("refused")]
        counts["pools"] = publish_pools(cfg, returned)
        counts["overview"] = publish_overview(cfg, today)
        log.info(run_summary(BY_NAME["pool_intake"].title, today, counts))
        fail_if_nothing_done(intakes)
    return counts
