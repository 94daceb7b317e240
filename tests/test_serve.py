"""Operations: the calendar schedules come from config, and `campaign serve` gives operators deployments
they can run from the UI (here: through the same API the UI's Run button calls)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from config import load_config
from flows.cli import main as cli
from flows.schedules import daily_schedule, flow_windows
from tests.helpers import answer, authenticated, campaign_served, config_copy, recommend_on_admission
from tests.pool_data import application, write_xlsx


def test_schedules_are_calendar_rrules_in_shanghai_time() -> None:
    cfg = load_config(2022)
    windows = flow_windows(cfg)
    assert (windows["june_survey"].first, windows["june_survey"].last) == (
        dt.date(2022, 6, 21),
        dt.date(2022, 7, 15),
    )
    schedule = daily_schedule(cfg, "june_survey")
    assert schedule is not None and schedule.timezone == "Asia/Shanghai"
    assert schedule.rrule == "DTSTART:20220621T090000\nRRULE:FREQ=DAILY;UNTIL=20220715T090000"
    assert schedule.interval is None


def test_the_registry_names_each_flow_once_and_every_obligation_has_its_flow() -> None:
    from config.flows import DATED, FLOWS, obligations_for
    from flows.registry import flow_of

    assert [flow_of(spec).name for spec in FLOWS] == [spec.name for spec in FLOWS]
    cfg = load_config(2022)
    assert {ob.key: ob.flow for ob in cfg.campaign.obligations if ob.flow not in DATED} == {}
    assert obligations_for(cfg.campaign, "quarterly_visits") == ["leader_assignment", "leader_visits"]
    assert obligations_for(cfg.campaign, "publicity") == [
        "typical_bases",
        "experience_article",
        "exchange_meeting",
    ]
    assert obligations_for(cfg.campaign, "pool_intake") == []  # rolling: taken in, never reminded


def test_calendar_preview_prints_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["calendar", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "■ 开展返乡入乡创业实地调研  [june_survey] 2022" in out
    assert "2022-07-01 五  第1次逾期督办" in out
    assert (
        "2022-10-28 五  提醒：截止前1个工作日" in out
    )  # base review, October — beyond the server's 100 days
    assert "2022-10-08 六  第1次逾期督办" in out  # Q3 visits: a make-up Saturday after 国庆


def test_serve_gives_operators_runnable_deployments(tmp_path: Path) -> None:
    # the pool's approval step runs in a year that recommends on admission (off in 2022)
    config = str(recommend_on_admission(config_copy(tmp_path / "operator-config")))
    with campaign_served(tmp_path, CAMPAIGN_CONFIG_DIR=config) as (proc, port, reports_port):
        _operate(tmp_path, proc, port, reports_port)


def _operate(tmp_path: Path, proc: subprocess.Popen[bytes], port: int, reports_port: int) -> None:
    api = f"http://127.0.0.1:{port}/api"
    deployments: list[dict[str, object]] = []
    deadline = time.monotonic() + 150
    auth_file = tmp_path / "var" / "prefect-auth"
    while time.monotonic() < deadline and len(deployments) < 14:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        with contextlib.suppress(httpx.HTTPError, OSError):
            # Without the password the API refuses (a write also wants a CSRF token); with it, as
            # the UI sends it, it serves.
            assert httpx.get(f"{api}/admin/version", timeout=5).status_code == 401
            unsigned = httpx.post(f"{api}/deployments/filter", json={}, timeout=5)
            assert unsigned.status_code in (401, 403), unsigned.text
            client = authenticated(api, auth_file)
            deployments = client.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        time.sleep(1)
    assert oct(auth_file.stat().st_mode & 0o777) == "0o600"
    user, _ = auth_file.read_text().strip().split(":", 1)
    assert user == "operator"
    flows = {f["id"]: f["name"] for f in answer(client, "POST", f"{api}/flows/filter", json={})}  # type: ignore[attr-defined]
    by_flow = {flows[d["flow_id"]]: d for d in deployments}  # type: ignore[index]
    assert set(by_flow) == {
        "june_survey",
        "standards_filing",
        "deliver_notifications",
        "record_submission",
        "pool_intake",
        "quarterly_visits",
        "half_year_training",
        "funds_tracking",
        "assign_leaders",
        "record_services",
        "october_review",
        "publicity",
        "exchange_meeting",
        "annual_assessment",
    }
    leaders_form = str(by_flow["assign_leaders"]["parameter_openapi_schema"])
    assert "包保领导姓名" in leaders_form and "项目编号" in leaders_form
    meeting_form = str(by_flow["exchange_meeting"]["parameter_openapi_schema"])
    assert "发言单位" in meeting_form and "会议日期" in meeting_form
    june = by_flow["june_survey"]
    assert june["schedules"][0]["schedule"]["timezone"] == "Asia/Shanghai"  # type: ignore[index]
    # Named for what they are, with the form an operator fills in: a plain date, in Chinese
    assert june["name"] == "2022年·三(一)实地调研"
    assert by_flow["record_submission"]["name"] == "登记线下报送"
    assert june["parameters"] == {"campaign_year": 2022}
    fields = june["parameter_openapi_schema"]["properties"]  # type: ignore[index]
    assert fields["today"]["title"] == "业务日期（默认今天，北京时间）"
    assert (fields["today"]["type"], fields["today"]["format"], "anyOf" in fields["today"]) == (
        "string",
        "date",
        False,
    )
    assert fields["dry_run"]["title"] == "预演" and fields["campaign_year"]["title"] == "活动年度"
    assert "自动运行：2022-06-21 至 2022-07-15 每天 09:00（北京时间）" in june["description"]  # type: ignore[operator]

    # Quick run (no date): today is years after the 2022 campaign, so the run refuses and sends nothing.
    quick: dict = answer(client, "POST", f"{api}/deployments/{june['id']}/create_flow_run", json={})  # type: ignore[assignment]
    refused = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (
        refused is None or refused["type"] not in ("COMPLETED", "FAILED", "CRASHED")
    ):
        time.sleep(1)
        refused = answer(client, "GET", f"{api}/flow_runs/{quick['id']}")["state"]  # type: ignore[index]
    assert refused["type"] == "FAILED" and "不在2022年度活动期内" in refused["message"], refused  # type: ignore[index]
    assert not (tmp_path / "var" / "mailbox").exists() or not list(
        (tmp_path / "var" / "mailbox").glob("*/*.txt")
    )
    form = by_flow["record_submission"]["parameter_openapi_schema"]
    assert "南关区（220102）" in str(form)

    # An operator presses Run on june_survey with a date in the form.
    run: dict = answer(  # type: ignore[assignment]
        client,
        "POST",
        f"{api}/deployments/{june['id']}/create_flow_run",
        json={"parameters": {"today": "2022-06-21"}},
    )
    state = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and state not in ("COMPLETED", "FAILED", "CRASHED"):
        time.sleep(1)
        state = answer(client, "GET", f"{api}/flow_runs/{run['id']}")["state"]["type"]  # type: ignore[index]
    assert state == "COMPLETED"
    named = answer(client, "GET", f"{api}/flow_runs/{run['id']}")["name"]  # type: ignore[index]
    assert named == "三(一)实地调研·2022-06-21"
    mailbox = tmp_path / "var" / "mailbox"
    assert len(list(mailbox.glob("*/*.txt"))) == 70  # one kickoff per city and county
    with sqlite3.connect(tmp_path / "var" / "campaign.db") as db:
        # the half-hourly delivery may also have run on its schedule meanwhile: only the operator's run counts
        assert db.execute(
            "select trigger, outcome from flow_run_audit where flow_name = 'june_survey'"
        ).fetchall() == [("operator", "completed")]

    # The pool intake on working days only; an operator approves its recommendations in the UI.
    rule = by_flow["pool_intake"]["schedules"][0]["schedule"]["rrule"]  # type: ignore[index]
    assert "BYDAY=MO,TU,WE,TH,FR" in rule and "20221003T090000" in rule and "20221008T090000" in rule
    write_xlsx(tmp_path / "var" / "inbox" / "pool_intake" / "乾安县-培育库申报表.xlsx", [application(1)])
    pool = by_flow["pool_intake"]
    run = answer(  # type: ignore[assignment]
        client,
        "POST",
        f"{api}/deployments/{pool['id']}/create_flow_run",
        json={"parameters": {"today": "2022-07-05"}},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and state != "PAUSED":
        time.sleep(1)
        state = answer(client, "GET", f"{api}/flow_runs/{run['id']}")["state"]["type"]  # type: ignore[index]
    assert state == "PAUSED"
    with sqlite3.connect(tmp_path / "var" / "campaign.db") as db:
        [(rec_id,)] = db.execute("select id from recommendation").fetchall()
    decision = {"approver": "王五", f"approve_{rec_id}": True, f"reason_{rec_id}": ""}
    # as the UI's Resume does; a busy server's 503 is asked again (a fresh-clone CI run met one here)
    answer(client, "POST", f"{api}/flow_runs/{run['id']}/resume", json={"run_input": decision})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and state not in ("COMPLETED", "FAILED", "CRASHED"):
        time.sleep(1)
        state = answer(client, "GET", f"{api}/flow_runs/{run['id']}")["state"]["type"]  # type: ignore[index]
    assert state == "COMPLETED"
    with sqlite3.connect(tmp_path / "var" / "campaign.db") as db:
        assert db.execute("select status, decided_by from recommendation").fetchall() == [
            ("approved", "王五")
        ]
    artifacts: list[dict] = answer(client, "POST", f"{api}/artifacts/filter", json={})  # type: ignore[assignment]
    assert {"pool-county", "pool-city", "pool-province", "pool-summary"} <= {a["key"] for a in artifacts}

    # Reports are downloadable from the browser behind the same password, read-only; the overview
    # artifact links to them.
    overview = next(a for a in artifacts if a["key"] == "campaign-overview")
    reports = f"http://127.0.0.1:{reports_port}"
    link = f"{reports}/2022/overview/heat-map.png"
    assert f"[heat-map.png]({link})" in overview["data"]
    assert httpx.get(link, timeout=5).status_code == 401
    user, password = auth_file.read_text().strip().split(":", 1)
    png = httpx.get(link, auth=(user, password), timeout=5)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert httpx.put(link, auth=(user, password), content=b"x", timeout=5).status_code == 501
