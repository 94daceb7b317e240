"""三(六) The October review: staged review plans filed; cities' and counties' naming lists taken in,
checked and recorded (their 评审认定 is theirs, met by 10-31); expert scores taken in, checked and
ranked; and the province's own round — naming within quota from the bases recommended to it — decided by
its operator in the Prefect UI."""

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
    naming_intake,
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
    reason: str = Field(default="", title="调整理由")


class NamingApproval(ApprovalForm):
    """省级基地命名审批：名额内逐项确认“命名”和档次；取消拟命名的项目须填写理由。"""


DECIDED = ("name", "tier", "reason")  # per project; the ranking is shown read-only


def _approval_request(proposals: list[dict[str, Any]]) -> ApprovalRequest:
    return ApprovalRequest(
        topic="review",
        flow_name="october_review",
        what="个省级基地拟命名，等待审批",
        intro=f"省级评审专家评分已齐全，按名额拟命名 {len(proposals)} 个省级基地",
        state="“拟命名”",
        action="逐项确认“命名”和档次，名额内可调整，取消命名的请填写理由",
    )


def _candidates(rows: list[dict[str, Any]]) -> list[NamingDecision]:
    fields = ("id", "route", "rank", "project", "total", "name", "tier")
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
            )
            for r in rows
        ],
    )
    description = (
        f"**省级评审专家评分已齐全，按名额拟命名 {sum(r['name'] for r in rows)} 个省级基地。**\n\n"
        f"总分 = 专家评分（{trimmed_mean_label(review)}）+ 优先分（三个助力与政策倾斜）；同分时优先分高者在前。"
        "省级评审只命名省级基地（市县两级基地由市县自行评审认定、报送命名名单）。"
        "名额内可调整命名和档次；取消拟命名的须填写理由。填写审批人后提交。\n\n" + table
    )
    tiers = tuple(dict.fromkeys(t.name for level in review.tiers.values() for t in level))
    return decision_form(NamingApproval, _candidates(rows), DECIDED, description, {"tier": ("", *tiers)})


@flow(
    name="october_review",
    flow_run_name=run_namer("october_review"),
    description="三(六) 10 月底前市县两级自行完成基地评审认定，其后省级从推荐的市级基地中评审命名省级基地："
    "收取分阶段评审方案并提醒、督办；收取市县基地命名名单，核对名额、档次、逐级（须为本级培育库项目）和"
    "应推尽推（符合上级入库条件而不推荐的须说明理由），登记命名和推荐（进入上级培育库、包保、走访），"
    "告知上级单位；收取专家评分表，核对评分是否齐全，去掉最高最低分取平均、加优先分后排名；省级基地按名额"
    "拟命名，经省级经办人审批后命名、定档，结果通知推荐单位。",
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
        sheets=[naming_intake, score_intake],
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
                    NamingChoice(d.id, d.name, d.tier, False, d.reason)
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
