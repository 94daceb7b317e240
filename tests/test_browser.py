"""What an operator sees, in a real browser: Playwright driving Debian's Chromium against `campaign serve`.

Logs in with the served password, opens the deployments, runs june_survey for a date chosen in the run
form, reads the campaign overview artifact, then drops a pool workbook, runs pool_intake, answers its
approval form and sees the decision stored. Screenshots go to `var/screenshots/` in the repository (the
README shows some of them). Outside CI a machine without Chromium skips this test; under CI=true it fails.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import answer, authenticated, campaign_served, config_copy, recommend_on_admission
from tests.pool_data import application, write_xlsx

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
# Chromium as root on a machine without a network: no sandbox, nothing fetched in the background.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _chromium_or_skip() -> None:
    if Path(CHROMIUM).exists():
        return
    message = "Chromium is not installed (apt-get install chromium fonts-noto-cjk; .ci/run does it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _wait_for_state(client: httpx.Client, api: str, run_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run: dict[str, Any] = answer(client, "GET", f"{api}/flow_runs/{run_id}")  # type: ignore[assignment]
        if run["state"]["type"] in states:
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} never reached {states}")


def _runs_of(client: httpx.Client, api: str, deployment_id: str) -> set[str]:
    filter_ = {"deployments": {"id": {"any_": [deployment_id]}}}
    return {r["id"] for r in answer(client, "POST", f"{api}/flow_runs/filter", json=filter_)}  # type: ignore[union-attr]


def _run_from_form(
    page: Any, client: httpx.Client, api: str, base: str, deployment_id: str, day: str, shot: str
) -> str:
    """Fill the run form as an operator does (the date through the picker) and submit; the new run's id
    (the UI goes back to the deployment, its pop-up naming the run before the run renames itself)."""
    before = _runs_of(client, api, deployment_id)
    page.goto(f"{base}/deployments/deployment/{deployment_id}/run")
    page.get_by_text("业务日期（默认今天，北京时间）").wait_for()
    page.get_by_text("Select date").click()
    page.locator("input[type=date]").fill(day)
    page.get_by_role("button", name="Apply").click()
    page.screenshot(path=SCREENSHOTS / shot, full_page=True)
    # The served Prefect server keeps its state in SQLite and answers 503 while busy; the UI then shows
    # an error toast and stays on the form, and an operator presses Submit again. So does the test.
    for _ in range(3):
        if page.url.rstrip("/").endswith("/run"):
            page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            new = _runs_of(client, api, deployment_id) - before
            if new:
                return new.pop()
            time.sleep(0.5)
    page.screenshot(path=SCREENSHOTS / f"failed-{shot}", full_page=True)
    raise AssertionError("submitting the form created no run")


def test_an_operator_runs_the_june_survey_and_approves_a_recommendation(tmp_path: Path) -> None:
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The pool's approval form, in a year that recommends on admission (a config switch, off in 2022,
    # whose approval is the review's naming form, built by the same flows/approval.py).
    config = str(recommend_on_admission(config_copy(tmp_path / "operator-config")))
    with campaign_served(tmp_path, CAMPAIGN_CONFIG_DIR=config) as (proc, port, _):
        _operate_in_browser(tmp_path, proc, port, sync_playwright)


def _operate_in_browser(
    tmp_path: Path, proc: subprocess.Popen[bytes], port: int, sync_playwright: Any
) -> None:
    base, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    auth_file = tmp_path / "var" / "prefect-auth"
    deployments: list[dict[str, Any]] = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and len(deployments) < 14:
        assert proc.poll() is None, "campaign serve exited"
        try:
            client = authenticated(api, auth_file)
            deployments = client.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    by_name = {d["name"]: d for d in deployments}

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(
            viewport={"width": 1400, "height": 1000}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        page.set_default_timeout(30_000)
        # The UI asks for the served password (user:password) once.
        page.goto(f"{base}/deployments")
        page.get_by_placeholder("admin:pass").fill(auth_file.read_text().strip())
        page.get_by_role("button", name="Login").click()
        page.get_by_text("2022年·三(一)实地调研").wait_for()
        assert page.get_by_text("2022年·三(三)培育库入库").is_visible()
        page.screenshot(path=SCREENSHOTS / "01-deployments.png")

        # Run june_survey for 2022-06-21 from the form; the run is named for its flow and date.
        run_id = _run_from_form(
            page,
            client,
            api,
            base,
            by_name["2022年·三(一)实地调研"]["id"],
            "2022-06-21",
            "02-run-form.png",
        )
        run = _wait_for_state(client, api, run_id, ("COMPLETED", "FAILED", "CRASHED"))
        assert run["state"]["type"] == "COMPLETED" and run["name"] == "三(一)实地调研·2022-06-21"
        assert len(list((tmp_path / "var" / "mailbox").glob("*/*.txt"))) == 70  # a kickoff each

        # The overview, in Chinese, with its heat map.
        overview_filter = {
            "artifacts": {"key": {"any_": ["campaign-overview"]}, "flow_run_id": {"any_": [run_id]}}
        }
        [artifact] = answer(client, "POST", f"{api}/artifacts/filter", json=overview_filter)  # type: ignore[misc]
        page.goto(f"{base}/artifacts/artifact/{artifact['id']}")
        page.get_by_text("2022年度全省进度一览（截至 2022-06-21）").first.wait_for()
        assert page.get_by_text(
            "各单位 × 各项任务：逾期未报 0，进行中 70，逾期完成 0，已完成 0"
        ).first.is_visible()
        assert page.locator("img[alt=全省进度一览热力图]").first.is_visible()
        page.screenshot(path=SCREENSHOTS / "03-overview.png", full_page=True)

        # A county's pool workbook arrives; pool_intake proposes its project and waits for the operator.
        inbox = tmp_path / "var" / "inbox" / "pool_intake"
        write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(1)])
        run_id = _run_from_form(
            page,
            client,
            api,
            base,
            by_name["2022年·三(三)培育库入库"]["id"],
            "2022-07-05",
            "04-pool-form.png",
        )
        _wait_for_state(client, api, run_id, ("PAUSED",))
        page.goto(f"{base}/runs/flow-run/{run_id}")
        page.get_by_role("button", name="Resume").click()
        page.get_by_text("拟逐级推荐（应推尽推）").first.wait_for()
        page.screenshot(path=SCREENSHOTS / "05-approval.png", full_page=True)
        dialog = page.get_by_role("dialog")
        assert dialog.get_by_text("1号 肉牛养殖项目1：同意推荐").is_visible()
        dialog.locator("textarea").first.fill("省就业服务局 王五")  # 审批人, the form's first field
        page.screenshot(path=SCREENSHOTS / "05-approval.png", full_page=True)
        assert page.get_by_role("button", name="Add item").count() == 0  # proposals are read-only
        dialog.get_by_role("button", name="Submit").click()
        run = _wait_for_state(client, api, run_id, ("COMPLETED", "FAILED", "CRASHED"))
        assert run["state"]["type"] == "COMPLETED"
        browser.close()
    with sqlite3.connect(tmp_path / "var" / "campaign.db") as db:
        [(status, decided_by, decided_at)] = db.execute(
            "select status, decided_by, decided_at from recommendation"
        ).fetchall()
    # the approval is stamped with the run's business date: 2022-07-05 09:00 in Changchun, in UTC
    assert (status, decided_by, decided_at[:19]) == (
        "approved",
        "省就业服务局 王五",
        "2022-07-05 01:00:00",
    )
