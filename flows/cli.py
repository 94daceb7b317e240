"""`campaign`: set-up and operations from the command line.

campaign check                       check the config files (regions + this year's campaign)
campaign new-year 2027 [--from Y]    write next year's campaign file from the latest one, for review
campaign init                        create or upgrade the database and load the hierarchy
campaign calendar [--year 2022]      every planned kickoff, reminder and escalation date
campaign run FLOW [--today D] [--dry-run] [--year Y]
                                     run one flow now (as of a date), without a server
campaign record OBLIGATION UNIT --by NAME [--on D] [--file F] [--note N]
campaign status OBLIGATION [--today D]
campaign template [--sheet S] [PATH] write a blank workbook: pool (default), standards, visits, postings, trainings,
                                     funds, scores, namings, publicity, income, registry
campaign intake FILE [--sheet S] [--json] [--today D]
                                     take in one workbook now; --json prints the summary
campaign import-registry FILE [--today D]
                                     a first year: the province's list of earlier years' pool and bases
campaign assign PROJECT_ID LEADER --by NAME [--title T] [--unit U]
                                     name a recommended project's 包保 leader
campaign backup [--to DIR]           the database, archive and reports in one dated .tar.gz
campaign restore FILE --yes          replace them with a backup's (the replaced folders are kept aside)
campaign deliver [--retry-dead]      deliver queued notifications now (--retry-dead: send the dead ones again)
campaign demo                        the June flows through five 2022 days into var/mailbox (one server)
campaign deploy                      production: register the deployments to the work pool ($CAMPAIGN_WORK_POOL)
campaign worker [--name N]           production: a worker of that pool (any number, on any machine)
campaign doctor                      check server, database, work pool, folders, channels and this year's config
campaign serve [--port P]            local Prefect server + every deployment on its schedule, the
                                     reports (port + 1) and the bureaus' pages (port + 2)
campaign portal [--port 4202]        production: the bureaus' pages on their own (stateless)
campaign links [list|revoke|reissue UNIT] [--year Y]
                                     the units' page links (each message carries its unit's)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.errors import CampaignError
from config.flows import RUNNABLE

RUNS_FLOWS = ("run", "record", "intake", "assign", "deliver", "demo")  # these need a Prefect API to run flows
SHEETS = (
    "pool",
    "standards",
    "visits",
    "postings",
    "trainings",
    "funds",
    "scores",
    "namings",
    "publicity",
    "income",
)


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def cmd_check(args: argparse.Namespace) -> int:
    from config import load_config
    from config.schema import resolve_path
    from models.deadlines import campaign_window
    from models.review import plan_gaps, plan_reach
    from models.rollover import REVIEW_MARK, year_holidays

    cfg = load_config(args.year)
    campaign = cfg.campaign
    print(f"OK: {len(cfg.units)} 个单位，{campaign.year} 年度 {len(campaign.obligations)} 项任务")
    window = campaign_window(campaign)
    print(f"活动期：{window.opens} 至 {window.closes}（最后一次督办 {window.last_step}）")
    if campaign.quotas.illustrative:
        print(f"注意：{campaign.quotas.note}")
    if campaign.review is not None and campaign.quotas.by_level:
        gaps = plan_gaps(cfg.units, campaign.review, campaign.quotas)
        print("建设计划与命名名额：" + ("各级名额与计划一致" if not gaps else f"不一致（{len(gaps)} 处）"))
        for gap in gaps:
            print(f"  {gap}")
        for line in plan_reach(
            cfg.units, campaign.review, campaign.quotas, _earlier_city_bases(campaign.year)
        ):
            print(line)
    if campaign.pool is not None:
        _check_filed_standards(cfg)
    _check_shared_folders()
    if campaign.illustrative_values:
        print(f"示意值（通知未给出，须由省厅确认或替换）：{len(campaign.illustrative_values)} 项")
        dumped = campaign.model_dump(mode="json")
        for item in campaign.illustrative_values:
            shown = json.dumps(resolve_path(dumped, item.path), ensure_ascii=False)
            shown = shown if len(shown) <= 60 else shown[:57] + "…"
            print(f"  {item.clause}  {item.path} = {shown}\n        {item.why}")
    if campaign.draft:
        print(
            f"警告：{campaign.year} 年度配置是草稿（campaign new-year 生成）：请按当年通知核对所有标有"
            f"“{REVIEW_MARK}”的值，然后删除 draft: true。",
            file=sys.stderr,
        )
    for year in sorted({window.opens.year, window.closes.year}):
        found = year_holidays(year)
        if found.source == "chinese-calendar":
            print(f"{year} 年节假日与调休：chinese-calendar（国务院办公厅已发布）")
        elif year == campaign.year and not campaign.working_days.makeup_workdays_known:
            print(
                "!"
                * 72
                + f"\n警告：{year} 年的调休上班日未知（国务院办公厅尚未发布放假安排，维护中的日历库也未收录）。\n"
                f"提醒和督办日期暂按周末与配置文件中的法定节假日计算，可能落在调休安排变动的日子。\n"
                f"发布后请在 config/campaigns/{campaign.year}.yaml 的 working_days 中填写 holidays 与 makeup_workdays，"
                "并设 makeup_workdays_known: true。\n" + "!" * 72,
                file=sys.stderr,
            )
        elif year == campaign.year:
            print(f"{year} 年节假日与调休：配置文件（{campaign.working_days.source or '手工填写'}）")
        else:
            print(f"注意：{year} 年的节假日与调休尚无数据，该年日期按周末计算", file=sys.stderr)
    return 0


def _earlier_city_bases(year: int) -> dict[str, int]:
    """From the registry, if the database exists: per city, its earlier bases the province may name."""
    import sqlalchemy as sa

    from models.db import session_scope
    from tasks.registry import earlier_city_bases

    try:
        with session_scope() as session:
            return earlier_city_bases(session, year)
    except sa.exc.SQLAlchemyError:
        print("往年基地登记：数据库尚未建立，按无往年市级基地计算")
        return {}


def _check_filed_standards(cfg: Any) -> None:
    """三(二)、四(二): which cities and counties have filed no 入库标准表 (their pools admit on the level's
    default bar, or the campaign file's entry for them)."""
    import sqlalchemy as sa

    from models.db import session_scope
    from models.standards import units_without_a_bar
    from tasks.standards import filed_bars

    try:
        with session_scope() as session:
            filed = [str(r["unit_key"]) for r in filed_bars(session, cfg.campaign.year)]
    except sa.exc.SQLAlchemyError:
        print("入库标准表：数据库尚未建立（campaign init 后再核对）")
        return
    missing = units_without_a_bar(cfg.units, filed)
    print(f"入库标准表：已报送 {len(filed)} 个单位，未报送 {len(missing)} 个单位")
    if missing:
        configured = set(cfg.campaign.pool.unit_admission)
        names = [u.name + ("（配置文件中有标准）" if u.key in configured else "") for u in missing]
        print("  未报送（按本级默认入库条件入库）：" + "、".join(names))


def _check_shared_folders() -> None:
    """In production (a Prefect server configured), whether this machine sees the folders the
    deployment marked: each worker machine runs `campaign check` (or `doctor`) to know."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return
    from flows.production import folders_seen

    try:
        problems = folders_seen()
    except Exception as exc:  # the server unreachable: doctor says more
        print(f"共享文件夹：无法核对（{type(exc).__name__}；运行 campaign doctor）")
        return
    print("共享文件夹：与部署时一致" if not problems else "共享文件夹：" + "；".join(problems))


def cmd_new_year(args: argparse.Namespace) -> int:
    from config.loader import available_years
    from config.settings import get_settings
    from models.deadlines import calendar_for
    from models.rollover import roll_campaign, year_holidays
    from models.workdays import WorkingCalendar

    folder = get_settings().config_dir / "campaigns"
    years = [y for y in available_years() if y < args.year]
    source_year = args.source or (years[-1] if years else None)
    if source_year is None:
        print(f"没有早于 {args.year} 年的活动配置可作为底稿", file=sys.stderr)
        return 2
    target = folder / f"{args.year}.yaml"
    from config import load_config

    old = load_config(source_year).campaign
    found = year_holidays(args.year)
    new_cal = WorkingCalendar(found.holidays, found.makeup_workdays)
    text = (folder / f"{source_year}.yaml").read_text(encoding="utf-8")
    rolled = roll_campaign(text, source_year, args.year, calendar_for(old), new_cal)
    try:  # "x": two people running new-year at once cannot both write the file
        with target.open("w" if args.force else "x", encoding="utf-8") as fh:
            fh.write(rolled)
    except FileExistsError:
        print(f"{target} 已存在；如需重新生成请加 --force", file=sys.stderr)
        return 2
    load_config(args.year)  # the new file must load; a problem names the file and field
    print(
        f"已生成 {target}（底稿：{source_year}.yaml）。请核对标有“待审核”的值，然后运行 campaign check --year {args.year}"
    )
    _print_registry(args.year)
    return 0


def _print_registry(year: int) -> None:
    """What the standing registry carries into `year` (nothing is copied: every year reads it)."""
    import sqlalchemy as sa

    from models.db import session_scope
    from tasks.registry import registry_summary, summary_text

    try:
        with session_scope() as session:
            print(summary_text(registry_summary(session, year), year))
    except sa.exc.SQLAlchemyError:
        print("培育库与基地登记：数据库尚未建立（首个年度可用 campaign import-registry 导入往年名录）")


def _workbook_run(args: argparse.Namespace, command: str) -> tuple[Path, Any, dt.date] | None:
    """A command taking one workbook in: its file, the campaign of its date and the date, with the
    database ready; None (said why) when the file is missing. A date outside the campaign is refused
    before anything is stored, as the flow would refuse it."""
    from flows.dated import campaign_for
    from models.db import migrate, session_scope
    from tasks.sync import sync_hierarchy

    path = args.file.resolve()
    if not path.is_file():
        print(f"{args.file}: 文件不存在", file=sys.stderr)
        return None
    cfg, today = campaign_for(command, args.today, None)
    migrate()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    return path, cfg, today


def cmd_import_registry(args: argparse.Namespace) -> int:
    from models.clock import moment
    from tasks.registry import import_registry

    ready = _workbook_run(args, "campaign import-registry")
    if ready is None:
        return 2
    path, cfg, today = ready
    summary = import_registry(cfg, path, moment(today, cfg.campaign))
    if summary.get("refused"):
        print(f"未受理：{summary['refused']}")
        return 1
    if summary.get("duplicate_file"):
        print(f"此文件已于 {summary['first_received_at']} 导入，未重复处理")
        return 0
    print(
        f"已导入 {summary['rows_read']} 行：新登记项目 {summary['new']}，更新 {summary['updated']}，"
        f"命名基地 {summary['bases']}，逐级推荐记录 {summary['recommended']}，有误 {summary['rejected']}"
    )
    for error in summary["errors"]:
        print(f"  第 {error['row']} 行 {error['column']}：{error['reason']}（{error['value']}）")
    if summary.get("error_workbook"):
        print(f"错误清单：{summary['error_workbook']}")
    _print_registry(cfg.campaign.year)
    return 1 if summary["rejected"] else 0


def cmd_init(args: argparse.Namespace) -> int:
    from config import load_config
    from models.db import migrate, session_scope
    from tasks.sync import sync_hierarchy, sync_obligations

    cfg = load_config(args.year)
    migrate()
    with session_scope() as session:
        n = sync_hierarchy(session, cfg)
        m = sync_obligations(session, cfg)
    print(f"数据库已就绪：{n} 个单位，{m} 条任务实例")
    return 0


def cmd_calendar(args: argparse.Namespace) -> int:
    from config import load_config
    from config.schema import LEVEL_LABELS
    from models.calendar_preview import preview_rows

    cfg = load_config(args.year)
    rows = preview_rows(cfg)
    if args.json:
        print(json.dumps([{**r, "date": r["date"].isoformat()} for r in rows], ensure_ascii=False, indent=1))
        return 0
    print(f"{cfg.campaign.title}（{cfg.campaign.notice}）日程预览")
    days = cfg.campaign.working_days
    if days.holidays or days.makeup_workdays:
        known = "调休上班日已知" if days.makeup_workdays_known else "调休上班日未知，日期待调整"
        print(f"节假日：配置文件（{days.source or '手工填写'}，{known}）")
        for day in days.holidays:
            print(f"   {day:%Y-%m-%d} 休息日（配置文件）")
        for day in days.makeup_workdays:
            print(f"   {day:%Y-%m-%d} 调休上班（配置文件）")
    current = None
    for r in rows:
        head = (r["obligation"], r["period"])
        if head != current:
            current = head
            ob = cfg.campaign.obligation(r["obligation"])
            who = "、".join(LEVEL_LABELS[level] for level in ob.owed_by)
            print(f"\n■ {ob.title}  [{ob.key}] {r['period']}  {ob.source}  责任：{who}")
        print(f"   {r['date']:%Y-%m-%d} {'一二三四五六日'[r['date'].weekday()]}  {r['label']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from config.flows import BY_NAME
    from flows.registry import flow_of
    from models.db import migrate

    migrate()
    spec = BY_NAME[args.flow]
    kwargs: dict[str, Any] = {"today": args.today} if spec.takes_today else {}
    if spec.dated:
        kwargs |= {"dry_run": args.dry_run, "campaign_year": args.year}
    if spec.approval:
        kwargs["approve"] = False  # nobody can answer an approval form here: it waits for a served run
    if args.flow == "deliver_notifications":
        kwargs["retry_dead"] = getattr(args, "retry_dead", False)
    result = flow_of(spec)(**kwargs)
    print(json.dumps(result, ensure_ascii=False, default=str, indent=1))
    return 0


DEMO_DAYS = ("2022-06-21", "2022-06-23", "2022-06-29", "2022-06-30", "2022-07-01")


def cmd_demo(args: argparse.Namespace) -> int:
    """The June flows walked through the 2022 event days into the local mailbox: one process, one server."""
    from config.flows import BY_NAME
    from config.settings import get_settings
    from flows.june import june_survey, standards_filing
    from models.db import migrate
    from models.messages import counts_text

    migrate()
    for text in DEMO_DAYS:
        day = dt.date.fromisoformat(text)
        for fl in (june_survey, standards_filing):
            counts = fl(today=day, campaign_year=2022)
            print(f"{text} {BY_NAME[fl.name].title}：{counts_text(counts['notifications'])}")
    print(f"通知已写入 {get_settings().mailbox.resolve()}（每个单位一个文件夹）")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from flows.submission import SubmissionRecord, record_submission
    from models.db import migrate

    migrate()
    record = SubmissionRecord.for_keys(
        args.obligation,
        args.unit,
        submitted_by=args.by,
        submitted_on=args.on,
        note=args.note,
        file_path=str(args.file.resolve()) if args.file else None,
    )
    counts = record_submission(record)
    print("已登记" if counts["recorded"] else "此前已登记，未重复记录")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from config import load_config
    from models.clock import local_today
    from tasks.report import status_frame

    cfg = load_config()
    df = status_frame(cfg, args.obligation, args.today or local_today(cfg.campaign))
    print(df.to_string(index=False))
    return 0


def _record_sheet(name: str) -> tuple[object, Callable[..., Any]]:
    """A record sheet's intake and the flow that settles it."""
    from config import load_config
    from flows.assessment import annual_assessment
    from flows.june import standards_filing
    from flows.publicity import publicity
    from flows.review import october_review
    from flows.services import funds_tracking, half_year_training, quarterly_visits
    from tasks.assessment import income_intake
    from tasks.funds import fund_intake
    from tasks.publicity import publicity_intake
    from tasks.review import naming_intake, score_intake
    from tasks.standards import standards_intake
    from tasks.trainings import training_intake
    from tasks.visits import posting_intake, visit_intake

    cfg = load_config()
    make, fl = {
        "standards": (standards_intake, standards_filing),
        "visits": (visit_intake, quarterly_visits),
        "postings": (posting_intake, quarterly_visits),
        "trainings": (training_intake, half_year_training),
        "funds": (fund_intake, funds_tracking),
        "scores": (score_intake, lambda **run: october_review(**run, approve=False)),
        "namings": (naming_intake, lambda **run: october_review(**run, approve=False)),
        "publicity": (publicity_intake, publicity),
        "income": (income_intake, annual_assessment),
    }[name]
    return make(cfg), fl


def cmd_template(args: argparse.Namespace) -> int:
    from config import load_config
    from config.settings import get_settings
    from tasks.catalog import SHEETS
    from tasks.templates import blank_template

    cfg = load_config()
    year = cfg.campaign.year
    if args.sheet == "registry":  # the province's own, once: not a sheet bureaus send
        from tasks.registry import registry_intake
        from tasks.workbooks import write_template

        sheet = registry_intake(cfg).sheet
        target = args.path or get_settings().reports / str(year) / f"{year}年{sheet.title}（模板）.xlsx"
        print(f"模板已生成：{write_template(target, sheet, year, None)}")
        return 0
    title = SHEETS[args.sheet].make(cfg).sheet.title
    path = blank_template(
        cfg, args.sheet, args.path or get_settings().reports / str(year) / f"{year}年{title}（模板）.xlsx"
    )
    print(f"模板已生成：{path}")
    return 0


def cmd_intake(args: argparse.Namespace) -> int:
    from flows.pool import pool_intake
    from models.clock import moment
    from tasks.pool import take_in_workbook

    ready = _workbook_run(args, "campaign intake")
    if ready is None:
        return 2
    path, cfg, today = ready
    # The workbook is taken in here, so the summary keeps every error (a run's record keeps the first
    # ones); the flow then settles progress (or proposes recommendations), delivers and publishes.
    if args.sheet == "pool":
        summary = take_in_workbook(cfg, path, moment(today, cfg.campaign))
        pool_intake(today=today, campaign_year=cfg.campaign.year, files=[], approve=False)
    else:
        from tasks.sheets import take_in_sheet

        intake, settle_flow = _record_sheet(args.sheet)
        summary = take_in_sheet(cfg, intake, path, moment(today, cfg.campaign))  # type: ignore[arg-type]
        settle_flow(today=today, campaign_year=cfg.campaign.year)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=1))
    else:
        if summary.get("refused"):
            print(f"未受理：{summary['refused']}")
        elif summary.get("duplicate_file"):
            print(f"此文件已于 {summary['first_received_at']} 受理，未重复处理")
        else:
            counted = "，".join(
                f"{label} {summary[key]}"
                for key, label in (
                    ("admitted", "新入库"),
                    ("not_admitted", "未达入库条件"),
                    ("new", "新登记"),
                    ("updated", "更新"),
                    ("duplicates", "重复"),
                )
                if key in summary
            )
            print(f"读取 {summary['rows_read']} 行：{counted}，有误 {summary['rejected']}")
            for e in summary["errors"]:
                print(f"  第 {e['row']} 行【{e['column']}】{e['value']}：{e['reason']}")
            if summary["error_workbook"]:
                print(f"错误清单：{summary['error_workbook']}")
    return 0 if not summary.get("refused") else 1


def cmd_assign(args: argparse.Namespace) -> int:
    from flows.services import LeaderChoice, assign_leaders
    from models.db import migrate

    migrate()
    choice = LeaderChoice(
        project_id=args.project_id, leader_name=args.leader, leader_title=args.title, unit_key=args.unit
    )
    result = assign_leaders([choice], operator=args.by)
    print(json.dumps(result, ensure_ascii=False, default=str, indent=1))
    return 0 if not result.get("refused") else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from config.settings import get_settings
    from tasks.backup import BackupError, backup

    try:
        path = backup(args.to or get_settings().home / "backups", dt.datetime.now(dt.UTC))
    except BackupError as exc:
        print(f"备份失败：{exc}", file=sys.stderr)
        return 2
    print(f"备份已写入：{path}（{path.stat().st_size / 1e6:.1f} MB）")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from tasks.backup import BackupError, read_manifest, restore

    try:
        manifest = read_manifest(args.file)
        if not args.yes:
            print(
                f"{args.file.name}：{manifest['created_at']} 的 {manifest['database']} 备份"
                f"（含 {'、'.join(manifest['folders']) or '无'} 文件夹）。恢复将替换当前数据库和这些文件夹；"
                "确认请加 --yes",
                file=sys.stderr,
            )
            return 2
        result = restore(args.file)
    except BackupError as exc:
        print(f"恢复失败：{exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if result["requeued"]:
        print(
            f"备份之后受理的 {len(result['requeued'])} 个文件已放回收件箱，下次运行时重新受理：",
            *result["requeued"],
            sep="\n",
            file=sys.stderr,
        )
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from config import load_config
    from flows.production import deploy, work_pool_name
    from models.clock import local_today

    names = deploy(local_today(load_config().campaign))
    print(f"已部署到工作池 {work_pool_name()}：{len(names)} 个\n  " + "\n  ".join(names))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from flows.production import ProductionError, run_worker

    try:
        run_worker(args.name, args.limit)  # does not return: the process becomes the worker
    except ProductionError as exc:
        print(f"worker 未启动：{exc}", file=sys.stderr)
    return 2


def cmd_doctor(args: argparse.Namespace) -> int:
    from config import load_config
    from flows.production import doctor
    from models.clock import local_today

    checks = doctor(args.today or local_today(load_config().campaign))
    for what, ok, detail in checks:
        print(f"{'✓' if ok else '✗' if ok is False else '!'} {what}：{detail}")
    return 1 if any(ok is False for _, ok, _ in checks) else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve

    serve(port=args.port, reports_port=args.reports_port, portal_port=args.portal_port)
    return 0


def cmd_portal(args: argparse.Namespace) -> int:
    import uvicorn

    from models.db import migrate
    from portal.app import create_app

    migrate()
    print(f"各单位报送页面：http://{args.host}:{args.port}/  （链接前缀 CAMPAIGN_PORTAL_URL）", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", proxy_headers=True)
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    from config import load_config
    from models.db import migrate, session_scope
    from tasks.links import listing, reissue, revoke, token_for
    from tasks.sync import sync_hierarchy

    cfg = load_config(args.year)
    year = cfg.campaign.year
    migrate()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    units = {u.key: u for u in cfg.units}
    if args.action in ("revoke", "reissue"):
        if not args.unit:
            print("请指定单位（名称或代码）", file=sys.stderr)
            return 2
        unit = next((u for u in cfg.units if args.unit in (u.key, u.name)), None)
        if unit is None:
            print(f"未知单位：{args.unit}", file=sys.stderr)
            return 2
        if args.action == "revoke":
            done = revoke(unit.key, year, by=args.by or "operator")
            print(
                f"{unit.name} {year} 年度链接{'已停用' if done else '本已停用'}；停用的链接打开后提示向省就业服务局索取新链接"
            )
        else:
            print(f"{unit.name} {year} 年度新链接（旧链接已停用）：{reissue(unit.key, year)}")
        return 0
    with session_scope() as session:  # every unit has its link once listed
        for key in units:
            if key != cfg.province.key:
                token_for(session, key, year)
    for row in listing(year):
        key = str(row["unit_key"])
        if key == cfg.province.key:
            continue
        state = row["url"] or f"已停用（{row['revoked_at']:%Y-%m-%d}）"
        print(f"{units[key].name}\t{key}\t第{row['version']}版\t{state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    parser = argparse.ArgumentParser(
        prog="campaign", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="check the config files")
    p.add_argument("--year", type=int)
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("new-year", help="write next year's campaign file from the latest one, for review")
    p.add_argument("year", type=int)
    p.add_argument("--from", dest="source", type=int, help="the year to copy (default: the latest before it)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(fn=cmd_new_year)
    p = sub.add_parser("init", help="create/upgrade the database and load the hierarchy")
    p.add_argument("--year", type=int)
    p.set_defaults(fn=cmd_init)
    p = sub.add_parser("calendar", help="preview every planned notification date")
    p.add_argument("--year", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_calendar)
    p = sub.add_parser("run", help="run one flow now")
    p.add_argument("flow", choices=RUNNABLE)
    p.add_argument("--today", type=_date, help="as-of date, YYYY-MM-DD (default: today in Asia/Shanghai)")
    p.add_argument("--dry-run", action="store_true", help="show the day's notices; take in and send nothing")
    p.add_argument(
        "--year", type=int, help="the campaign year (default: the one whose window holds the date)"
    )
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("demo", help="walk the June flows through five 2022 days into the local mailbox")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("record", help="record a submission received outside the inbox")
    p.add_argument("obligation")
    p.add_argument("unit", help="unit key, e.g. 220102")
    p.add_argument("--by", required=True, help="who records it")
    p.add_argument("--on", type=_date, help="date received (default: today)")
    p.add_argument("--file", type=Path)
    p.add_argument("--note", default="")
    p.set_defaults(fn=cmd_record)
    p = sub.add_parser("status", help="print an obligation's status table")
    p.add_argument("obligation")
    p.add_argument("--today", type=_date)
    p.set_defaults(fn=cmd_status)
    p = sub.add_parser("template", help="write a blank workbook for bureaus to fill in")
    p.add_argument("path", nargs="?", type=Path)
    p.add_argument("--sheet", choices=(*SHEETS, "registry"), default="pool")
    p.set_defaults(fn=cmd_template)
    p = sub.add_parser("intake", help="take in one workbook now")
    p.add_argument(
        "file", type=Path, help="XLSX or CSV, named after the sending unit (e.g. 乾安县-申报表.xlsx)"
    )
    p.add_argument("--sheet", choices=SHEETS, default="pool")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--today", type=_date)
    p.set_defaults(fn=cmd_intake)
    p = sub.add_parser("import-registry", help="a first year: import earlier years' pool and bases")
    p.add_argument("file", type=Path, help="XLSX or CSV of the 往年培育库及基地名录 template")
    p.add_argument("--today", type=_date)
    p.set_defaults(fn=cmd_import_registry)
    p = sub.add_parser("assign", help="name a recommended project's 包保 leader")
    p.add_argument("project_id", type=int, help="the project's 编号 (see the leaders-pending artifact)")
    p.add_argument("leader")
    p.add_argument("--by", required=True, help="the operator")
    p.add_argument("--title", default="", help="the leader's title")
    p.add_argument("--unit", help="the recommending unit, if two levels recommended the project")
    p.set_defaults(fn=cmd_assign)
    p = sub.add_parser("deploy", help="register every deployment to the campaign's work pool")
    p.set_defaults(fn=cmd_deploy)
    p = sub.add_parser("worker", help="start a worker of the campaign's work pool")
    p.add_argument("--name", help="the worker's name (default: Prefect's)")
    p.add_argument("--limit", type=int, help="runs at once on this worker")
    p.set_defaults(fn=cmd_worker)
    p = sub.add_parser("doctor", help="check what a running campaign needs")
    p.add_argument("--today", type=_date)
    p.set_defaults(fn=cmd_doctor)
    p = sub.add_parser("backup", help="back up the database, archive and reports into one dated file")
    p.add_argument("--to", type=Path, help="folder for the backup file (default: <home>/backups)")
    p.set_defaults(fn=cmd_backup)
    p = sub.add_parser("restore", help="replace the database, archive and reports with a backup's")
    p.add_argument("file", type=Path)
    p.add_argument("--yes", action="store_true", help="confirm: the current data are replaced")
    p.set_defaults(fn=cmd_restore)
    p = sub.add_parser("deliver", help="deliver queued notifications now")
    p.add_argument("--retry-dead", action="store_true", help="send every message given up once more")
    p.set_defaults(
        fn=lambda a: cmd_run(
            argparse.Namespace(
                flow="deliver_notifications", today=None, retry_dead=a.retry_dead, dry_run=False, year=None
            )
        )
    )
    p = sub.add_parser("serve", help="serve every deployment with a local Prefect server")
    p.add_argument("--port", type=int, default=4200, help="the Prefect UI and API")
    p.add_argument("--reports-port", type=int, help="the reports download (default: port + 1)")
    p.add_argument("--portal-port", type=int, help="the bureaus' pages (default: port + 2)")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("portal", help="production: serve the bureaus' pages (any number, behind a proxy)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4202)
    p.set_defaults(fn=cmd_portal)
    p = sub.add_parser("links", help="the units' page links: list, revoke or reissue one")
    p.add_argument("action", nargs="?", choices=("list", "revoke", "reissue"), default="list")
    p.add_argument("unit", nargs="?", help="the unit (name or code) to revoke or reissue")
    p.add_argument("--year", type=int)
    p.add_argument("--by", help="who revokes it (recorded)")
    p.set_defaults(fn=cmd_links)
    args = parser.parse_args(argv)
    # Archives, reports and the SQLite file hold personal data: only the service's account reads them.
    os.umask(0o077)
    try:
        if args.command in RUNS_FLOWS:
            from flows.serve import run_server

            with run_server():
                return args.fn(args)
        return args.fn(args)
    except CampaignError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
