"""三(六) The October review: staged review plans filed, expert scores taken in and checked, projects
ranked, and naming within quota (with recommendation upward) decided by an operator in the Prefect UI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from config.schema import ReviewRules
from flows.approval import ApprovalForm, ask_and_wait, decision_form, decisions_of
from flows.dated import business_run, campaign_for, refuses_calmly, run_namer
from flows.deadlines import deadline_cycle
from models import markdown
from models.clock import now
from models.review import NamingChoice, trimmed_mean_label
from tasks.approval import ApprovalRequest
from tasks.delivery import deliver_all
from tasks.review import (
    decide_namings,
    publish_review,
    review_of,
    review_progress,
    score_intake,
    waiting,
)


class NamingDecision(BaseModel):
    id: int = Field(title="编号")
    route: str = Field(title="评审单位")
    rank: int = Field(title="排名")
    project: str = Field(title="项目名称")
    total: float = Field(title="总分")
    name: bool = Field(default=False, title="命名")
    tier: str = Field(default="", title="档次")
    upper_bar: str = Field(default="", title="上级入库条件")
    recommend: bool = Field(default=False, title="推荐上级")
    reason: str = Field(default="", title="调整理由")


class NamingApproval(ApprovalForm):
    """基地命名审批：名额内逐项确认“命名”、档次和“推荐上级”；取消拟命名的项目须填写理由。"""


DECIDED = ("name", "tier", "recommend", "reason")  # per project; the ranking is shown read-only


def _approval_request(proposals: list[dict[str, Any]]) -> ApprovalRequest:
    units = len({r["unit_key"] for r in proposals})
    return ApprovalRequest(
        topic="review",
        flow_name="october_review",
        what="个基地拟命名，等待审批",
        intro=f"{units} 个单位的专家评分已齐全，按名额拟命名 {len(proposals)} 个基地",
        state="“拟命名”",
        action="逐项确认“命名”、档次和“推荐上级”，名额内可调整，取消命名的请填写理由",
    )


def _candidates(rows: list[dict[str, Any]]) -> list[NamingDecision]:
    fields = ("id", "route", "rank", "project", "total", "name", "tier", "upper_bar", "recommend")
    return [NamingDecision(**{k: r[k] for k in fields}) for r in rows]


def _naming_form(rows: list[dict[str, Any]], review: ReviewRules) -> Any:
    table = markdown.table(
        (
            "编号",
            "评审单位",
            "排名",
            "项目名称",
            "专家评分",
            "优先分",
            "总分",
            "拟定",
            "上级入库条件",
            "推荐",
        ),
        [
            (
                r["id"],
                r["route"],
                r["rank"],
                r["project"],
                r["expert_score"],
                r["priority"],
                r["total"],
                f"{'拟命名' if r['name'] else ''} {r['tier']}".strip(),
                r["upper_bar"],
                "拟推荐" if r["recommend"] else "",
            )
            for r in rows
        ],
    )
    description = (
        f"**{len({r['unit_key'] for r in rows})} 个单位的专家评分已齐全，按名额拟命名 "
        f"{sum(r['name'] for r in rows)} 个基地。**\n\n"
        f"总分 = 专家评分（{trimmed_mean_label(review)}）+ 优先分（三个助力与政策倾斜）；同分时优先分高者在前。"
        "经评审命名且符合上级入库条件的基地推荐上级（应推尽推），进入上级培育库，由本级明确主要领导包保、"
        "每季度走访。名额内可调整命名、档次和是否推荐上级；取消拟命名的须填写理由。填写审批人后提交。\n\n"
        + table
    )
    tiers = tuple(dict.fromkeys(t.name for level in review.tiers.values() for t in level))
    return decision_form(NamingApproval, _candidates(rows), DECIDED, description, {"tier": ("", *tiers)})


@flow(
    name="october_review",
    flow_run_name=run_namer("october_review"),
    description="三(六) 10 月底前完成市县两级基地评审认定，其后省级从市州推荐的项目中评审命名省级基地："
    "收取分阶段评审方案并提醒、督办；收取专家评分表，核对评分是否齐全（专家人数、评分项、分值范围、回避、"
    "材料期间），去掉最高最低分取平均、加优先分后排名，按名额拟命名，经省级经办人审批后命名、定档，"
    "符合上级入库条件的推荐上级（进入上级培育库、包保、走访），结果通知各单位。",
)
@refuses_calmly
def october_review(
    today: dt.date | None = None,
    dry_run: bool = False,
    campaign_year: int | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    """One day of the review; with `approve`, pause for the operator when namings are proposed."""
    log = get_run_logger()
    cfg, today = campaign_for("october_review", today, campaign_year)
    review = review_of(cfg)
    counts = deadline_cycle(
        "october_review",
        today,
        dry_run=dry_run,
        campaign_year=cfg.campaign.year,
        sheets=[score_intake],
        file_obligations=[review.plan_obligation],
        progress=review_progress,
        publish=publish_review,
    )
    rows = waiting(cfg)
    counts["namings_open"] = sum(r["name"] for r in rows)
    if rows and approve and not dry_run:
        with business_run(
            "october_review_naming", cfg, today, {"proposed": counts["namings_open"]}
        ) as decided:
            proposals = [r for r in rows if r["name"]]
            form = _naming_form(rows, review)
            request = _approval_request(proposals)
            answer = ask_and_wait(cfg, request, proposals, form, review.approval_timeout_minutes, today)
            if answer is None:
                decided["approval"] = "timed_out"
                log.warning("基地命名未获审批，已提醒省级经办人；拟命名保持不变")
            else:
                choices = [
                    NamingChoice(d.id, d.name, d.tier, d.recommend, d.reason)
                    for d in decisions_of(answer, _candidates(rows), DECIDED)
                ]
                decided["approval"] = decide_namings(
                    cfg,
                    rows,
                    choices,
                    decided_by=answer.approver,
                    decided_at=now(),
                    flow_run_id=str(flow_run.id) if flow_run.id else None,
                )
                for unit, problem in decided["approval"]["refused"].items():
                    log.error("%s 的命名审批未生效：%s（下次运行将再次提请审批）", unit, problem)
            decided["delivery"] = deliver_all(cfg.campaign)
            decided["published"] = publish_review(cfg, today)
        counts["naming"] = decided
    return counts
