"""Production on Prefect's own engine: the registry's deployments on a process work pool, and workers.

`campaign serve` is the embedded default (one process serves every flow from a local server). In
production a Prefect server runs on its own (on PostgreSQL), `campaign deploy` registers the same
deployments — the same registry, schedules, parameters, forms, tags, one run at a time per
deployment — to a `process` work pool, and any number of `campaign worker` processes, on any machine
with this package installed and the settings below, pick up runs.

Workers must see the same campaign folders (inbox, archive, reports: a shared path or a mounted share).
`campaign deploy` writes a marker into those folders and records it on the server; a worker checks it
sees the same marker before it starts, so a machine without the share refuses instead of taking runs
it would answer wrongly.

Nothing secret goes into a deployment: workers read the database URL, SMTP and robot secrets from
their own environment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from config import load_config
from config.settings import get_settings

MARKER_FILE = ".campaign-folders"


FLOW_RUN_LOG_FORMAT = (
    "%(asctime)s.%(msecs)03d | %(levelname)-7s | Flow run %(flow_run_name)r [%(flow_run_id)s] - %(message)s"
)
TASK_RUN_LOG_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | Task run %(task_run_name)r [flow run %(flow_run_id)s] - %(message)s"


class ProductionError(Exception):
    """A deployment or worker that cannot start, with what to do, in words."""


def work_pool_name() -> str:
    return os.environ.get("CAMPAIGN_WORK_POOL", "campaign")


def marker_variable() -> str:
    """The server-side record of the shared folders' marker, one per work pool."""
    return "folders_marker_" + re.sub(r"[^a-z0-9_]", "_", work_pool_name().lower())


def _folders() -> list[Path]:
    settings = get_settings()
    return [settings.inbox, settings.archive, settings.reports]


def ensure_work_pool(name: str) -> None:
    """A `process` work pool of that name, created once (two deploys at once both succeed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectNotFound):
            client.read_work_pool(name)
            return
        with contextlib.suppress(ObjectAlreadyExists):  # another deploy created it meanwhile
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="返乡入乡创业基地建设行动：各流程的运行由此工作池中的 worker 执行",
                )
            )


def mark_folders() -> str:
    """The shared folders' marker, recorded on the server and written into each folder the deploying
    machine sees (deploy is the authority: folders marked by an earlier server are re-marked)."""
    from prefect.variables import Variable

    paths = [folder / MARKER_FILE for folder in _folders()]
    found = [p.read_text(encoding="utf-8").strip() for p in paths if p.is_file()]
    marker = (
        str(Variable.get(marker_variable(), default="") or "") or next(iter(found), "") or uuid.uuid4().hex
    )
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(marker, encoding="utf-8")
    Variable.set(marker_variable(), marker, overwrite=True)
    return marker


def folders_seen() -> list[str]:
    """Problems with this machine's view of the shared folders, in words; empty when it sees them."""
    from prefect.variables import Variable

    marker = str(Variable.get(marker_variable(), default="") or "")
    if not marker:
        return ["服务器上没有共享文件夹标记：请先运行 campaign deploy"]
    problems = []
    for folder in _folders():
        path = folder / MARKER_FILE
        found = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if found != marker:
            problems.append(f"{folder} 不是部署时的共享文件夹（标记{'不同' if found else '缺失'}）")
    return problems


def deploy(today: dt.date) -> list[str]:
    """Register every served year's deployments to the work pool; returns their names."""
    from flows.registry import deployments, served_years  # every flow's module: not for a worker's start
    from models.db import migrate

    migrate()
    pool = work_pool_name()
    ensure_work_pool(pool)
    mark_folders()
    cfgs = [load_config(y) for y in served_years(today)]
    names = []
    for deployment in deployments(cfgs, by_module=True):
        # The engine started straight away: without a command, Prefect's process worker starts a
        # workspace supervisor (a Python process of its own, ~2 s of CPU) to fetch code the installed
        # package already has. `python` is the worker's own (run_worker puts its folder first on PATH).
        deployment.job_variables = {"command": "python -m prefect.engine"}
        deployment.apply(work_pool_name=pool)
        names.append(str(deployment.name))
    return names


def run_worker(name: str | None, limit: int | None) -> None:
    """Become `prefect worker start` on the campaign's pool (the same process, so a service manager's
    signals reach the worker), after checking this machine sees the shared folders."""
    problems = folders_seen()
    if problems:
        raise ProductionError("；".join(problems))
    command = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        work_pool_name(),
        "--type",
        "process",
    ]
    if name:
        command += ["--name", name]
    if limit:
        command += ["--limit", str(limit)]
    # The runs' `python` (the deployments' command, flows/registry.py) is this installation's.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    # Every line a run logs names the run's id (the flow runs started by the worker inherit this).
    os.environ.setdefault("PREFECT_LOGGING_FORMATTERS_STANDARD_FLOW_RUN_FMT", FLOW_RUN_LOG_FORMAT)
    os.environ.setdefault("PREFECT_LOGGING_FORMATTERS_STANDARD_TASK_RUN_FMT", TASK_RUN_LOG_FORMAT)
    sys.stdout.flush()
    os.execv(sys.executable, command)


def worker_status(pool: str) -> list[dict[str, Any]]:
    """The pool's workers as the server sees them: name, status, last heartbeat."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        workers = client.read_workers_for_work_pool(pool)
    return [
        {"name": w.name, "status": str(w.status), "last_heartbeat": w.last_heartbeat_time} for w in workers
    ]


# ------------------------------------------------------------------ health
Check = tuple[str, bool | None, str]  # (what, ok — None: a warning, not a failure, detail)


def doctor(today: dt.date) -> list[Check]:
    """Everything a running campaign needs, checked from this machine: each (what, ok, detail)."""
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from config.loader import available_years
    from models.db import alembic_config, engine_for
    from models.rollover import year_holidays

    settings = get_settings()
    checks: list[Check] = []
    try:
        cfg = load_config()
        checks.append(("配置文件", True, f"{len(cfg.units)} 个单位，{cfg.campaign.year} 年度"))
    except Exception as exc:  # a broken file: say which, stop here
        return [("配置文件", False, str(exc))]
    years = available_years()
    checks.append(
        (
            "本年度活动配置",
            today.year in years,
            f"config/campaigns/{today.year}.yaml"
            + ("" if today.year in years else " 不存在：运行 campaign new-year"),
        )
    )
    if today.year in years:
        current = load_config(today.year).campaign
        known = (
            year_holidays(today.year).source == "chinese-calendar"
            or current.working_days.makeup_workdays_known
        )
        checks.append(("本年度调休安排", known, "已知" if known else "未知：发布后填入 working_days"))

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    try:
        with engine_for(settings.db_url).connect() as conn:
            revision = conn.execute(sa.text("select version_num from alembic_version")).scalar()
        checks.append(
            (
                "活动数据库",
                revision == head,
                f"版本 {revision}，最新 {head}" + ("" if revision == head else "：运行 campaign init"),
            )
        )
    except sa.exc.SQLAlchemyError as exc:
        checks.append(("活动数据库", False, f"无法读取（{type(exc).__name__}）：运行 campaign init"))

    for folder in _folders():
        probe = folder / f".doctor-{uuid.uuid4().hex}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
            checks.append((f"文件夹 {folder.name}", True, f"{folder} 可写"))
        except OSError as exc:
            checks.append((f"文件夹 {folder.name}", False, f"{folder} 不可写（{exc.strerror}）"))

    silent = [u.name for u in cfg.units if not u.channels]
    checks.append(
        (
            "通知渠道",
            None if silent else True,
            f"{len(silent)} 个单位未配置渠道" if silent else "每个单位都已配置",
        )
    )
    emails = any(c.kind == "email" for u in cfg.units for c in u.channels)
    if emails:
        checks.append(
            (
                "邮件服务器",
                settings.smtp_url is not None,
                "已配置" if settings.smtp_url else "未设置 CAMPAIGN_SMTP_URL",
            )
        )

    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        checks.append(("Prefect 服务器", None, "未设置 PREFECT_API_URL（嵌入式 campaign serve 不需要）"))
        return checks
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    checks.append(
        (
            "Prefect 服务器",
            error is None,
            PREFECT_API_URL.value() if error is None else f"无法连接（{type(error).__name__}）",
        )
    )
    if error is not None:
        return checks
    pool = work_pool_name()
    try:
        workers = worker_status(pool)
    except Exception as exc:
        checks.append((f"工作池 {pool}", False, f"不存在（{type(exc).__name__}）：运行 campaign deploy"))
        return checks
    online = [w["name"] for w in workers if w["status"].endswith("ONLINE")]
    checks.append(
        (
            f"工作池 {pool}",
            bool(online),
            f"在线 worker {len(online)} 个"
            + (f"：{'、'.join(online)}" if online else "：运行 campaign worker"),
        )
    )
    problems = folders_seen()
    checks.append(("共享文件夹", not problems, "与部署时一致" if not problems else "；".join(problems)))
    return checks
