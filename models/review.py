"""三(六) Base review and naming: the expert score sheet, the naming list, and the pure rules of a review.

Cities and counties decide their own 评审认定 ("各地要在10月底前完成市县两级基地评审认定"): each files
its naming list (基地命名名单: the bases it named, their tier and naming document, and whether each
goes up), which the province records and checks — the quota, the tiers, 逐级 (a unit names only
projects of its own pool: admitted there, or recommended into it from below) and 应推尽推 (a named base
that meets the upper pool's bar goes up, or the list says why not). The province's operator decides only
the provincial round. Scores, where a unit files them, are ranked for it as a reference.

A reviewing unit sends its experts' scores: one row per expert, project and
criterion. The review of a unit is complete when every project it sent is scored on every criterion of
its level by exactly the configured number of experts; only then is it aggregated and ranked:

- an expert's total is the weighted sum of their criterion scores;
- a project's expert score drops the highest and lowest totals (as configured) and takes the mean;
- its total adds the pool's priority (三个助力 and the policy tilts) times `priority_points`;
  commendation is not a weight: 三(二) "同等条件下，要优先支持…受到表彰的" makes it a tie-break;
- the ranking orders by total, then the tie-breaking tilts (`tie_breakers`: the commended first among
  equal totals), then the earlier application;
- the first `quota` are proposed for naming, tiered by their rank's share of the named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from config.schema import LEVEL_LABELS, ApplicationWindow, FundingTier, Level, Quotas, ReviewRules, Unit
from models.pool import TILT_COLUMNS
from models.services import PROJECT_COLUMNS, resolve_projects
from models.sheets import CheckContext, Column, ErrorFn, Sheet

SCORE_COLUMNS = ["unit_key", "application_id", "expert_name", "criterion", "score"]


def score_sheet(review: ReviewRules, window: ApplicationWindow, unit_levels: Mapping[str, Level]) -> Sheet:
    """The 专家评分表. `unit_levels` tells which level's criteria a reviewing unit scores on."""
    low, high = review.score_range
    criteria = tuple(dict.fromkeys(c.name for cs in review.criteria.values() for c in cs))
    by_level = {level: {c.name for c in cs} for level, cs in review.criteria.items()}
    window_text = f"{window.start.isoformat()} 至 {window.end.isoformat()}"

    def rules(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
        resolve_projects(out, ctx, error, warn)
        level = unit_levels.get(ctx.sender_key)
        allowed = by_level.get(level, set()) if level else set()
        error(
            ~out["criterion"].isin(allowed),
            columns["criterion"],
            f"不是{ctx.sender_name}评审的评分项（应为：{'、'.join(sorted(allowed)) or '无'}）",
        )
        error(
            (out["score"] < low) | (out["score"] > high),
            columns["score"],
            f"得分应在 {low:g}–{high:g} 之间",
        )
        error(
            (out["materials_from"] < pd.Timestamp(window.start).date())
            | (out["materials_to"] > pd.Timestamp(window.end).date()),
            columns["materials_from"],
            f"申报材料期间须在 {window_text} 之内",
        )
        error(out["materials_from"] > out["materials_to"], columns["materials_to"], "早于材料起始日期")
        if review.forbid_own_unit:
            employer = out["expert_employer"].fillna("").str.strip()
            entity = out["application_id"].map(ctx.entities).fillna("")
            own = (employer != "") & (employer == entity)
            error(own, columns["expert_employer"], "专家为本人所在单位的申报项目评分，应回避")

    column_list = (
        Column("专家姓名", "expert_name", "text", True),
        Column("专家工作单位", "expert_employer", "text", hint="与申报主体相同的须回避"),
        *PROJECT_COLUMNS,
        Column("评分项", "criterion", "enum", True, criteria),
        Column("得分", "score", "number", True, hint=f"{low:g}–{high:g}"),
        Column("申报材料起始日期", "materials_from", "date", True, hint=f"须在 {window_text} 之内"),
        Column("申报材料截止日期", "materials_to", "date", True, hint=f"须在 {window_text} 之内"),
    )
    columns = {c.field: c for c in column_list}
    return Sheet(
        title="专家评分表",
        columns=column_list,
        identity=("expert_name", "project_name", "credit_code", "criterion"),
        example_file="乾安县-专家评分表.xlsx",
        date_label="报送日期",
        rules=(rules,),
        instructions=(
            "每位专家、每个项目、每个评分项一行；同一专家对同一项目同一评分项重报将更新原分数。",
            f"每个参评项目须由 {review.experts_per_project} 位专家对本级全部评分项评分，评分齐全后方可排名命名。",
            "参评项目须为本级培育库项目（项目名称与统一社会信用代码与申报一致）。",
        ),
    )


def incomplete(scores: pd.DataFrame, review: ReviewRules, level: Level) -> pd.DataFrame:
    """Why a unit's scoring cannot be ranked yet: application_id, reason. Empty when complete.

    `scores`: one unit's rows with application_id, expert_name, criterion.
    """
    criteria = [c.name for c in review.criteria[level]]
    need = review.experts_per_project
    problems: list[pd.DataFrame] = []
    experts = scores.groupby("application_id")["expert_name"].nunique()
    wrong = experts[experts != need]
    problems.append(
        pd.DataFrame(
            {
                "application_id": wrong.index,
                "reason": [f"评分专家 {n} 位，应为 {need} 位" for n in wrong],
            }
        )
    )
    grid = scores.drop_duplicates(["application_id", "expert_name"])[["application_id", "expert_name"]]
    expected = grid.merge(pd.DataFrame({"criterion": criteria}), how="cross")
    have = scores[["application_id", "expert_name", "criterion"]].drop_duplicates()
    missing = expected.merge(have, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if not missing.empty:
        listed = missing.groupby(["application_id", "expert_name"], sort=True)["criterion"].agg("、".join)
        problems.append(
            pd.DataFrame(
                {
                    "application_id": listed.index.get_level_values(0),
                    "reason": [f"专家{e}未对“{c}”评分" for (_, e), c in listed.items()],
                }
            )
        )
    out = pd.concat(problems, ignore_index=True)
    return out.sort_values(["application_id", "reason"], kind="stable").reset_index(drop=True)


def expert_scores(scores: pd.DataFrame, review: ReviewRules, level: Level) -> pd.Series:
    """Each project's aggregated expert score, by application_id (a complete scoring assumed)."""
    weights = {c.name: c.weight for c in review.criteria[level]}
    weighted = scores.assign(points=scores["score"] * scores["criterion"].map(weights))
    totals = weighted.groupby(["application_id", "expert_name"])["points"].sum()

    def trimmed_mean(values: pd.Series) -> float:
        ordered = values.sort_values().to_numpy()
        kept = ordered[review.drop_lowest : len(ordered) - review.drop_highest]
        return float(kept.mean())

    return totals.groupby(level="application_id").agg(trimmed_mean).round(2)


def tier_of(position: int, named: int, tiers: tuple[FundingTier, ...]) -> FundingTier:
    """The tier of the `position`-th (1-based) of `named` bases: the first whose share covers it."""
    for tier in tiers:
        if position <= math.ceil(tier.up_to_share * named - 1e-9):
            return tier
    return tiers[-1]


def rank(projects: pd.DataFrame, review: ReviewRules, level: Level, quota: int) -> pd.DataFrame:
    """Rank one unit's reviewed projects and propose the first `quota` for naming.

    `projects`: application_id, expert_score, priority and a boolean column per tie-breaking tilt
    (`commended`). Returns them with total, rank, proposed, tier and amount_yuan, best first: by total,
    then the tie-breakers (review.tie_breakers), then the application number.
    """
    out = projects.assign(
        total=(projects["expert_score"] + projects["priority"] * review.priority_points).round(2)
    )
    breakers = [TILT_COLUMNS[t] for t in review.tie_breakers]
    out = out.sort_values(
        ["total", *breakers, "application_id"],
        ascending=[False, *[False] * len(breakers), True],
        kind="stable",
    ).reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    out["proposed"] = out["rank"] <= quota
    named = int(out["proposed"].sum())
    tiers = review.tiers.get(level, ())
    labels = [
        tier_of(r, named, tiers) if tiers and p else None
        for r, p in zip(out["rank"], out["proposed"], strict=True)
    ]
    out["tier"] = [t.name if t else "" for t in labels]
    out["amount_yuan"] = [t.amount_yuan if t else 0.0 for t in labels]
    return out


def trimmed_mean_label(review: ReviewRules) -> str:
    """How the expert score is averaged, in the operator's words, from the configured rule."""
    dropped = [
        f"{n} 个{which}分" for n, which in ((review.drop_highest, "最高"), (review.drop_lowest, "最低")) if n
    ]
    return f"去掉{'、'.join(dropped)}后的平均" if dropped else "全部专家评分的平均"


def quota_of(review: ReviewRules, unit_key: str, level: Level) -> int:
    return review.unit_quota.get(unit_key, review.naming_quota.get(level, 0))


def naming_room(units: Iterable[Unit], review: ReviewRules) -> dict[Level, int]:
    """How many bases the units of each level may name in all, by their quotas."""
    room: dict[Level, int] = {}
    for unit in units:
        room[unit.level] = room.get(unit.level, 0) + quota_of(review, unit.key, unit.level)
    return room


def plan_gaps(units: Iterable[Unit], review: ReviewRules, quotas: Quotas) -> list[str]:
    """Where the naming quotas and the plan of bases (一: 120 in 2022, by level) disagree, in words;
    empty when each level may name exactly its plan, and no city's own and counties' quotas exceed its plan."""
    units = list(units)
    room = naming_room(units, review)
    gaps = []
    for level in (Level.province, Level.city, Level.county):
        planned, allowed = quotas.by_level.get(level, 0), room.get(level, 0)
        if not quotas.by_level or planned == allowed:
            continue
        if allowed < planned:
            gaps.append(
                f"{LEVEL_LABELS[level]}：计划 {planned} 个，命名名额合计只有 {allowed} 个，计划无法完成"
            )
        else:
            gaps.append(
                f"{LEVEL_LABELS[level]}：计划 {planned} 个，命名名额合计 {allowed} 个，超出计划 {allowed - planned} 个"
            )
    # Each city's plan (by_city) holds its own and its counties' bases, and the provincial ones there.
    for city in (u for u in units if u.key in quotas.by_city):
        local = quota_of(review, city.key, city.level) + sum(
            quota_of(review, u.key, u.level) for u in units if u.reports_to == city.key
        )
        if local > quotas.by_city[city.key]:
            gaps.append(
                f"{city.name}：计划 {quotas.by_city[city.key]} 个，市县两级命名名额合计 {local} 个，超出计划"
            )
    total = sum(room.values())
    if total != quotas.total:
        gaps.append(f"合计：计划 {quotas.total} 个，命名名额合计 {total} 个")
    return gaps


def plan_reach(
    units: Iterable[Unit], review: ReviewRules, quotas: Quotas, earlier_city_bases: Mapping[str, int]
) -> list[str]:
    """What the year's namings can really add to the plan (一 "年内计划建设…120个"), in words.

    A year counts each base once, at its highest level among that year's namings (models/assessment):
    a city's naming of a county base of the same year, or the province's of a city base of the same
    year, adds nothing. So the provincial quota adds to the total only by naming city bases of earlier
    years (`earlier_city_bases`: per city, those not yet provincial), and each city can reach its own
    quota plus its counties' plus what the province names from its earlier bases.
    """
    units = list(units)
    room = naming_room(units, review)
    earlier = sum(earlier_city_bases.values())
    province = min(room.get(Level.province, 0), earlier)
    reach = room.get(Level.county, 0) + room.get(Level.city, 0) + province
    lines = [
        f"建设计划 {quotas.total} 个，按命名名额最多可达 {reach} 个（县级 {room.get(Level.county, 0)}、"
        f"市级 {room.get(Level.city, 0)}、省级 {province}）"
    ]
    if province < room.get(Level.province, 0):
        lines.append(
            f"  省级名额 {room.get(Level.province, 0)} 个，其中只有 {province} 个能计入新增：同一年内逐级命名的基地只按"
            f"最高层级计一次，省级基地须从往年市级基地中命名才计入新增，登记库中可供省级评审的往年市级基地 {earlier} 个"
        )
    for city in (u for u in units if u.key in quotas.by_city):
        local = quota_of(review, city.key, city.level) + sum(
            quota_of(review, u.key, u.level) for u in units if u.reports_to == city.key
        )
        can = local + earlier_city_bases.get(city.key, 0)
        if can < quotas.by_city[city.key]:
            lines.append(
                f"  {city.name}：计划 {quotas.by_city[city.key]} 个，最多可达 {can} 个（市县两级命名名额 {local} 个，"
                f"往年市级基地 {earlier_city_bases.get(city.key, 0)} 个可供省级命名）"
            )
    return lines


# ------------------------------------------------------------------ a city's or county's own naming
NAMING_LIST = "基地命名名单"


def naming_sheet(review: ReviewRules, units: Mapping[str, Unit]) -> Sheet:
    """The 基地命名名单 a city or county files once its own 评审认定 is done: one row per base named."""
    unit_levels = {key: unit.level for key, unit in units.items()}
    tiers_by_level = {level: tuple(t.name for t in ts) for level, ts in review.tiers.items()}
    all_tiers = tuple(dict.fromkeys(name for names in tiers_by_level.values() for name in names))
    named_by = [lv for lv in (Level.city, Level.county) if lv in review.naming_quota]

    def level_quota(level: Level) -> str:
        others = "、".join(
            f"{units[k].name} {n} 个"
            for k, n in review.unit_quota.items()
            if k in units and units[k].level is level
        )
        return f"{LEVEL_LABELS[level]}每个单位 {review.naming_quota[level]} 个" + (
            f"（{others}）" if others else ""
        )

    quota_text = "；".join(level_quota(lv) for lv in named_by)
    tier_text = "；".join(
        f"{LEVEL_LABELS[lv]}"
        + "、".join(f"{t.name} {t.amount_yuan:,.0f} 元" for t in review.tiers.get(lv, ()))
        for lv in named_by
        if review.tiers.get(lv)
    )

    def rules(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
        resolve_projects(out, ctx, error, warn)
        level = unit_levels.get(ctx.sender_key)
        allowed = tiers_by_level.get(level, ()) if level else ()
        if allowed:  # a tier of another level (an unknown one is the column's own error)
            error(
                out["tier"].isin(all_tiers) & ~out["tier"].isin(allowed),
                columns["tier"],
                f"不是{ctx.sender_name}的档次（应为：{'、'.join(allowed)}）",
            )
        upper = pd.Series(
            [None if pd.isna(a) else ctx.upper_bar.get(int(a)) for a in out["application_id"]],
            index=out.index,
            dtype=object,
        )
        meets = upper.eq("")
        short = upper.notna() & ~meets
        error(
            out["recommend"] & short,
            columns["recommend"],
            "不符合"
            + ctx.upper_name
            + "入库条件（"
            + upper.where(short, "").astype(str)
            + "），不能推荐上级",
        )
        before = out["application_id"].map(lambda a: "" if pd.isna(a) else ctx.named_before.get(int(a), ""))
        # an earlier year's base is not named again; the list may still send it up (推荐上级 是)
        error(
            (before != "") & ~out["recommend"],
            columns["project_name"],
            before.astype(str) + "，同一层级不重复命名（基地跨年度延续；如需推荐上级，“推荐上级”填“是”）",
        )
        kept = out["kept_reason"].fillna("").str.strip()
        error(
            ~out["recommend"] & meets & (kept == ""),
            columns["kept_reason"],
            f"符合{ctx.upper_name}入库条件，应推尽推：不推荐上级须填写不推荐理由（将告知{ctx.upper_name}）",
        )

    column_list = (
        *PROJECT_COLUMNS,
        Column("档次", "tier", "enum", True, all_tiers, hint="本级评审办法确定的档次"),
        Column("命名文件文号", "decree_no", "text", True, hint="本级发文命名的文号"),
        Column("推荐上级", "recommend", "bool", True, hint="是/否：经评审命名且符合上级入库条件的应推尽推"),
        Column(
            "不推荐理由",
            "kept_reason",
            "text",
            hint="符合上级入库条件而不推荐的，须填写理由（将告知上级单位）",
        ),
    )
    columns = {c.field: c for c in column_list}
    return Sheet(
        title=NAMING_LIST,
        columns=column_list,
        identity=("project_name", "credit_code"),
        example_file="乾安县-基地命名名单.xlsx",
        date_label="报送日期",
        rules=(rules,),
        instructions=(
            "本级评审认定完成后，每个命名基地一行；每次报送完整名单，后报的名单替换先报的（名单有错误行时，"
            "只登记无误的行，其余原已登记的命名和推荐保持不变，更正后请重报完整名单）。",
            "命名基地须为本级培育库项目（本级入库或下级推荐进入本级培育库）；往年已在本级命名的基地不重复命名，"
            "如本年度推荐上级，可列入名单并填“推荐上级：是”（不占本年度名额）。",
            f"命名名额：{quota_text}；超过名额的名单整份退回。",
            f"档次：{tier_text}。",
            "经评审命名且符合上级入库条件的项目应推尽推；符合而不推荐的须填写不推荐理由，理由将告知上级单位。",
            "本年度无命名基地的，请告知省就业服务局登记（空名单无法受理）。",
        ),
    )


def quota_problem(review: ReviewRules, unit: Unit, named: int) -> str | None:
    """Why a naming list cannot be recorded as it is: more bases than the unit's quota (its rows with
    errors count: they name bases too)."""
    quota = quota_of(review, unit.key, unit.level)
    if named > quota:
        return f"命名 {named} 个，超过本级命名名额 {quota} 个：请按名额报送完整的命名名单"
    return None


# ------------------------------------------------------------------ the operator's decision
@dataclass(frozen=True)
class NamingChoice:
    base_id: int
    name: bool
    tier: str
    recommend: bool
    reason: str


def check_choices(
    review: ReviewRules, units: Mapping[str, Unit], rows: list[dict[str, Any]], choices: list[NamingChoice]
) -> dict[str, str]:
    """Problems with the operator's answer, by unit key: over quota, an unknown tier, a missing reason,
    a recommendation upward of a project that does not meet the upper pool's bar (三(三) 应推尽推 is for
    named projects "符合上级入库条件").

    A unit with a problem is left waiting (the next run asks again); the others are applied.
    """
    by_id = {r["id"]: r for r in rows}
    problems: dict[str, list[str]] = {}
    named: dict[str, int] = {}
    for c in choices:
        row = by_id.get(c.base_id)
        if row is None:
            continue
        unit = units[row["unit_key"]]
        tiers = {t.name for t in review.tiers.get(unit.level, ())}
        if c.name:
            named[unit.key] = named.get(unit.key, 0) + 1
            if tiers and c.tier not in tiers:
                problems.setdefault(unit.key, []).append(
                    f"{row['project']} 的档次“{c.tier}”应为 {'、'.join(sorted(tiers))}"
                )
            if c.recommend and unit.reports_to is None:
                problems.setdefault(unit.key, []).append(f"{row['project']} 已是省级，没有上级可推荐")
            elif c.recommend and not row.get("meets_upper_bar", True):
                problems.setdefault(unit.key, []).append(
                    f"{row['project']} {row.get('upper_bar', '不符合上级入库条件')}，不能推荐上级"
                )
        elif row["name"] and not c.reason.strip():
            problems.setdefault(unit.key, []).append(f"{row['project']} 取消命名须填写理由")
    for key, n in named.items():
        quota = quota_of(review, key, units[key].level)
        if n > quota:
            problems.setdefault(key, []).append(f"命名 {n} 个，超过名额 {quota} 个")
    return {key: "；".join(items) for key, items in problems.items()}
