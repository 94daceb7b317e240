"""Delivery under concurrency, crashes, outages and poison messages, with a real SMTP server (aiosmtpd)
and a real local HTTP server in the robots' shapes; on SQLite and PostgreSQL.

Every expectation here is written from the issue's promise: each queued message arrives once (a crash
may repeat only the one in flight, with the same Message-ID); one bad message or endpoint never holds
back another; an outage shorter than the configured age loses nothing.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.settings import get_settings
from tests.helpers import free_port, fresh_cli_env, outbox, set_delivery

REPO = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2022, 6, 23, 1, 0, tzinfo=dt.UTC)  # Thursday 09:00 in Shanghai, a working day


class Mailbox:
    """What the SMTP server received: Message-IDs in arrival order; optionally slow per message."""

    def __init__(self, delay: float = 0.0) -> None:
        self.message_ids: list[str] = []
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[attr-defined]
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.message_ids.append(str(msg["Message-ID"]))
        return "250 OK"


@pytest.fixture
def smtp_port(monkeypatch: pytest.MonkeyPatch) -> int:
    port = free_port()
    monkeypatch.setenv("CAMPAIGN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    return port


@pytest.fixture
def mailbox(smtp_port: int) -> Iterator[Mailbox]:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield handler
    controller.stop()


def queue(count: int, *, kind: str = "email", recipient: str | None = None, **extra: object) -> list[int]:
    """`count` messages straight into the outbox, spread over the units, as a flow would have queued them."""
    from config import load_config
    from models.db import insert_new, session_scope
    from models.tables import OutboxMessage
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    units = [u.key for u in cfg.units]
    with session_scope() as session:
        sync_hierarchy(session, cfg)
        rows = [
            {
                "dedupe_key": f"fault:{kind}:{recipient}:{extra.get('subject', '')}:{n}",
                "unit_key": units[n % len(units)],
                "kind": "reminder",
                "step": "R1",
                "channel_kind": kind,
                "recipient": recipient or f"hr{n}@bureau{n % 70}.example.cn",
                "subject": f"【催报提醒】测试消息 {n}",
                "body": "请按时报送。\n",
                "status": "pending",
                "attempts": 0,
                "created_at": T0,
            }
            | extra
            for n in range(count)
        ]
        return insert_new(session, OutboxMessage, rows, unique=["dedupe_key"])


def deliverer(code: str) -> subprocess.Popen[bytes]:
    """A separate deliverer process with this test's settings (the environment carries them)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from config import load_config\nfrom tasks.deliverer import deliver_kind\n" + code,
        ],
        cwd=REPO,
        env=dict(os.environ, PREFECT_LOGGING_LEVEL="WARNING"),
    )


DELIVER_EMAIL = "print(deliver_kind('email', load_config().campaign))"


# ------------------------------------------------------------------ exactly once
@pytest.mark.also_postgres
def test_four_deliverers_at_once_send_each_message_once(env: dict[str, object], mailbox: Mailbox) -> None:
    ids = queue(300)
    procs = [deliverer(DELIVER_EMAIL) for _ in range(4)]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0, 0]

    assert len(mailbox.message_ids) == 300
    assert len(set(mailbox.message_ids)) == 300
    rows = outbox()
    assert sorted(r.id for r in rows if r.status == "sent") == sorted(ids)
    assert {r.attempts for r in rows} == {1}
    assert all(r.claimed_by is None for r in rows)


def test_kill_9_mid_batch_repeats_only_the_message_in_flight_with_its_message_id(
    env: dict[str, object], smtp_port: int
) -> None:
    # A short lease so the killed deliverer's claim comes back within the test.
    set_delivery(
        env["config_dir"],  # type: ignore[arg-type]
        retry_delays_seconds=[],
        lease_seconds=2,
        channels={"email": {"timeout_seconds": 1, "budget_seconds": 120, "breaker_failures": 3}},
    )
    handler = Mailbox(delay=0.03)
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        queue(100)
        first = deliverer(DELIVER_EMAIL)
        deadline = time.monotonic() + 60
        while len(handler.message_ids) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        time.sleep(2.5)  # the dead deliverer's claim expires
        second = deliverer(DELIVER_EMAIL)
        assert second.wait(timeout=120) == 0
    finally:
        controller.stop()

    received = handler.message_ids
    assert len(set(received)) == 100  # nothing lost
    assert len(received) - len(set(received)) <= 1  # at most the one in flight again …
    repeats = {m for m in received if received.count(m) > 1}
    assert len(repeats) <= 1  # … and then with its own Message-ID, which a mail system drops
    assert {r.status for r in outbox()} == {"sent"}


def test_message_id_is_stable_per_outbox_row() -> None:
    from models.outbox import message_id

    assert message_id(7, "reminder:1:R1:email:a@b.cn", "jl.gov.cn") == message_id(
        7, "reminder:1:R1:email:a@b.cn", "jl.gov.cn"
    )
    assert message_id(7, "x", "jl.gov.cn").startswith("<outbox-7.") and message_id(
        7, "x", "jl.gov.cn"
    ).endswith("@jl.gov.cn>")
    assert message_id(7, "x", "jl.gov.cn") != message_id(8, "x", "jl.gov.cn")


# ------------------------------------------------------------------ poison and broken endpoints
@pytest.fixture
def robots(env: dict[str, object], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    base = httpserver.url_for("").rstrip("/")
    for name in ("DINGTALK", "WECOM", "FEISHU"):
        monkeypatch.setenv(f"CAMPAIGN_{name}_BASE_URL", base)
    monkeypatch.setenv("CAMPAIGN_SECRET_DT_GOOD", "good-token-0001")
    monkeypatch.setenv("CAMPAIGN_SECRET_DT_NULL", "null-token-0002")
    monkeypatch.setenv("CAMPAIGN_SECRET_DT_SLOW", "slow-token-0003")
    monkeypatch.setenv("CAMPAIGN_SECRET_WECOM_HTML", "html-key-0004")
    monkeypatch.setenv("CAMPAIGN_PACE_ROBOT_SECONDS", "0")
    get_settings.cache_clear()
    return httpserver


def test_poison_messages_fail_alone_and_everything_else_is_delivered(
    env: dict[str, object], mailbox: Mailbox, robots: HTTPServer
) -> None:
    from config import load_config
    from tasks.deliverer import deliver_kind

    answers = {"good-token-0001": {"errcode": 0, "errmsg": "ok"}, "null-token-0002": None}
    robots.expect_request("/robot/send").respond_with_handler(
        lambda request: Response(
            json.dumps(answers[request.args["access_token"]]), content_type="application/json"
        )
    )
    robots.expect_request("/cgi-bin/webhook/send").respond_with_data(
        "<html><body>502 Bad Gateway</body></html>", content_type="text/html"
    )
    good_mail = queue(20)
    [newline_subject] = queue(1, subject="【退回】报送文件未能受理：南关区\n调研.pdf")
    [lost_attachment] = queue(1, subject="附件", attachment="/nonexistent/错误清单.xlsx")
    good_robot = queue(3, kind="dingtalk", recipient="DT_GOOD", subject="dt")
    [null_answer] = queue(1, kind="dingtalk", recipient="DT_NULL", subject="null")
    [html_answer] = queue(1, kind="wecom", recipient="WECOM_HTML", subject="html")

    campaign = load_config().campaign
    assert deliver_kind("email", campaign, now=T0) == {"sent": 20, "dead": 2}
    assert deliver_kind("dingtalk", campaign, now=T0) == {"sent": 3, "dead": 1}
    assert deliver_kind("wecom", campaign, now=T0) == {"dead": 1}

    rows = {r.id: r for r in outbox()}
    assert all(rows[i].status == "sent" for i in good_mail + good_robot)
    assert len(mailbox.message_ids) == 20
    reasons = {
        newline_subject: "邮件头无法生成",
        lost_attachment: "附件已不存在：错误清单.xlsx",
        null_answer: "应答格式无法识别（null）",
        html_answer: "应答不是 JSON",
    }
    for outbox_id, reason in reasons.items():
        assert rows[outbox_id].status == "dead", rows[outbox_id]
        assert reason in (rows[outbox_id].last_error or "")
        assert rows[outbox_id].attempts == 1  # permanent: given up at once, never sent again
    assert deliver_kind("dingtalk", campaign, now=T0 + dt.timedelta(days=1)) == {}


def test_a_robot_that_never_answers_is_cut_off_and_email_goes_on(
    env: dict[str, object], mailbox: Mailbox, robots: HTTPServer
) -> None:
    from tasks.delivery import deliver_all

    set_delivery(
        env["config_dir"],  # type: ignore[arg-type]
        retry_delays_seconds=[],
        channels={"dingtalk": {"timeout_seconds": 0.5, "budget_seconds": 60, "breaker_failures": 3}},
    )

    served: list[str] = []

    def hang(request: Request) -> Response:
        time.sleep(1.5)  # longer than the robot's timeout: every request times out
        served.append(request.args["access_token"])
        return Response("{}", content_type="application/json")

    robots.expect_request("/robot/send").respond_with_handler(hang)
    robot = queue(30, kind="dingtalk", recipient="DT_SLOW", subject="slow")
    mails = queue(40)

    from config import load_config

    totals = deliver_all(load_config().campaign)

    rows = {r.id: r for r in outbox()}
    assert all(rows[i].status == "sent" for i in mails) and len(mailbox.message_ids) == 40
    tried = [rows[i] for i in robot if rows[i].attempts]
    assert len(tried) == 3 and all("ReadTimeout" in (r.last_error or "") for r in tried)
    # the breaker opened after three failures in a row: the other 27 wait, untried, for the next run
    assert all(rows[i].status == "pending" for i in robot)
    assert totals == {"sent": 40, "retrying": 3, "left": 27}
    # The test server answers one request at a time: let it finish the abandoned ones, so that none
    # reaches the next test's handler.
    deadline = time.monotonic() + 15
    while len(served) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served == ["slow-token-0003"] * 3


@pytest.mark.also_postgres
def test_pacing_per_robot_holds_across_deliverers(
    env: dict[str, object], robots: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliverers at once, one robot allowed a message every 2 s: never two closer than that (less
    the jitter of one request; two deliverers pacing on their own would send two within 1 s)."""
    monkeypatch.setenv("CAMPAIGN_PACE_ROBOT_SECONDS", "2")
    arrivals: list[float] = []

    def answer(request: Request) -> Response:
        if request.args["access_token"] == "good-token-0001":  # not a late request of an earlier test
            arrivals.append(time.monotonic())
        return Response(json.dumps({"errcode": 0, "errmsg": "ok"}), content_type="application/json")

    robots.expect_request("/robot/send").respond_with_handler(answer)
    queue(4, kind="dingtalk", recipient="DT_GOOD", subject="paced")
    procs = [deliverer("print(deliver_kind('dingtalk', load_config().campaign))") for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]

    assert len(arrivals) == 4 and {r.status for r in outbox()} == {"sent"}
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 1.5, gaps


# ------------------------------------------------------------------ outages
def test_an_outage_loses_nothing_and_the_backoff_is_what_happens(
    env: dict[str, object], smtp_port: int
) -> None:
    from config import load_config
    from tasks.deliverer import deliver_kind

    set_delivery(
        env["config_dir"],  # type: ignore[arg-type]
        retry_delays_seconds=[0],
        max_attempts=3,
        backoff_minutes=[10, 30, 120],
        dead_after_working_days=3,
        channels={"email": {"timeout_seconds": 1, "budget_seconds": 60, "breaker_failures": 50}},
    )
    queue(5)
    campaign = load_config().campaign
    minutes = dt.timedelta(minutes=1)

    # SMTP down (nothing listens): each run is one attempt, however many immediate retries it made.
    assert deliver_kind("email", campaign, now=T0) == {"retrying": 5}
    assert {(r.attempts, r.next_attempt_at) for r in outbox()} == {(1, T0 + 10 * minutes)}
    assert deliver_kind("email", campaign, now=T0 + 5 * minutes) == {}  # inside its back-off: left alone
    assert deliver_kind("email", campaign, now=T0 + 10 * minutes) == {"retrying": 5}
    assert {(r.attempts, r.next_attempt_at) for r in outbox()} == {(2, T0 + 40 * minutes)}
    assert deliver_kind("email", campaign, now=T0 + 40 * minutes) == {"retrying": 5}
    assert {(r.attempts, r.next_attempt_at) for r in outbox()} == {(3, T0 + 160 * minutes)}
    # Past max_attempts but younger than 3 working days (Fri, Mon): still pending, every 120 min.
    friday = T0 + dt.timedelta(days=1)
    assert deliver_kind("email", campaign, now=friday) == {"retrying": 5}
    assert {(r.status, r.attempts) for r in outbox()} == {("pending", 4)}

    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        monday = T0 + dt.timedelta(days=4)
        assert deliver_kind("email", campaign, now=monday) == {"sent": 5}
    finally:
        controller.stop()
    assert len(handler.message_ids) == len(set(handler.message_ids)) == 5
    assert {r.status for r in outbox()} == {"sent"}


def test_dead_only_past_attempts_and_age_listed_digested_and_sent_again(
    env: dict[str, object], smtp_port: int, prefect_harness: None
) -> None:
    from config import load_config
    from flows.operations import deliver_notifications
    from tasks.deliverer import deliver_kind
    from tasks.delivery import dead_messages

    set_delivery(
        env["config_dir"],  # type: ignore[arg-type]
        retry_delays_seconds=[],
        max_attempts=2,
        backoff_minutes=[10],
        dead_after_working_days=3,
        channels={"email": {"timeout_seconds": 1, "budget_seconds": 60, "breaker_failures": 50}},
    )
    queue(3)
    campaign = load_config().campaign
    deliver_kind("email", campaign, now=T0)
    deliver_kind("email", campaign, now=T0 + dt.timedelta(hours=1))
    assert {(r.status, r.attempts) for r in outbox()} == {("pending", 2)}  # past attempts, not yet old
    # 2022-06-28 (Tue) is the third working day after Thursday 06-23 (Fri, Mon, Tue).
    deliver_kind("email", campaign, now=dt.datetime(2022, 6, 28, 1, tzinfo=dt.UTC))
    assert {(r.status, r.attempts) for r in outbox()} == {("dead", 3)}
    listed = dead_messages()
    assert len(listed) == 3 and all("无法连接发信服务器" in str(m["失败原因"]) for m in listed)

    # The daily run tells the province once, and lists them in the UI.
    deliver_notifications()
    deliver_notifications()
    digests = [r for r in outbox() if r.kind == "dead_digest"]
    assert len(digests) == 1 and digests[0].unit_key == "220000"
    assert "3 条通知未能送达" in digests[0].subject
    # Every flow's status summary says so too, where operators look first.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.june import june_survey

    state = june_survey(today=dt.date(2022, 6, 28), return_state=True)
    with get_client(sync_client=True) as client:
        [summary] = client.read_artifacts(  # this run's, not another test's in the same server
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["june-survey-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert "3 条通知投递失败，已停止自动重试" in str(summary.data)

    # The mail server is back; the operator asks for the dead ones again (the UI's checkbox, the CLI's
    # --retry-dead): each arrives once.
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        counts = deliver_notifications(retry_dead=True)
    finally:
        controller.stop()
    assert counts["revived"] == 3 and counts["delivery"]["sent"] == 3
    assert len(handler.message_ids) == 3
    assert {r.status for r in outbox() if r.channel_kind == "email"} == {"sent"}


# ------------------------------------------------------------------ hostile files
def _sparse_xlsx(path: Path, *, declared: str | None, far_cell: str | None) -> Path:
    """A tiny workbook whose sheet claims (or really has) a huge extent: what crashed the reader."""
    import zipfile

    from tests.pool_data import write_xlsx

    plain = write_xlsx(path.with_suffix(".plain.xlsx"), [])
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                if declared:
                    text = text.replace("<sheetData>", f'<dimension ref="{declared}"/><sheetData>', 1)
                if far_cell:
                    row = far_cell.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
                    text = text.replace(
                        "</sheetData>",
                        f'<row r="{row}"><c r="{far_cell}" t="inlineStr"><is><t>x</t></is></c></row></sheetData>',
                    )
                data = text.encode()
            dst.writestr(item, data)
    plain.unlink()
    return path


def _zip_bomb(path: Path, unzipped_mb: int) -> Path:
    """A small XLSX whose worksheet inflates to `unzipped_mb` MB of blank rows."""
    import zipfile

    from tests.pool_data import write_xlsx

    plain = write_xlsx(path.with_suffix(".plain.xlsx"), [])
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with dst.open(item.filename, "w", force_zip64=True) as out:
                    block = b" " * (1 << 20)
                    for _ in range(unzipped_mb):
                        out.write(block)
            else:
                dst.writestr(item, src.read(item))
    plain.unlink()
    return path


@pytest.mark.usefixtures("prefect_harness")
def test_hostile_files_each_refused_with_a_reason_good_ones_beside_them_taken_in(
    env: dict[str, object], tmp_path: Path
) -> None:
    """The whole intake as a bureau and an operator meet it: files in the inbox, `campaign run` (against
    the configured Prefect API, here the test harness's)."""
    import resource
    import sqlite3

    from prefect.settings import PREFECT_API_URL

    from tests.pool_data import application, write_csv, write_xlsx

    home = Path(str(env["home"]))
    inbox = home / "inbox" / "pool_intake"
    inbox.mkdir(parents=True)
    write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(1)])
    gbk_name = os.fsdecode("乾安县-第二批申报表.xlsx".encode("gb18030"))  # as unzip leaves a Windows name
    write_xlsx(inbox / gbk_name, [application(2)])
    write_xlsx(inbox / "乾安县\n第三批申报表.xlsx", [application(3)])  # a line break in the name
    _sparse_xlsx(inbox / "长岭县-声明范围.xlsx", declared="A1:XFD1048576", far_cell=None)
    _sparse_xlsx(inbox / "长岭县-实际范围.xlsx", declared=None, far_cell="XFD1048576")
    _zip_bomb(inbox / "扶余市-压缩炸弹.xlsx", unzipped_mb=400)
    (inbox / "宁江区-百万列.csv").write_text(",".join(["列"] * 1_000_000) + "\n", encoding="utf-8")
    write_csv(inbox / "长岭县-超长单元格.csv", [application(4, 项目名称="长" * 50_000_000)], encoding="utf-8")
    (inbox / "南关区-培育库申报表.xlsx").symlink_to("/etc/passwd")
    (inbox / os.fsdecode("绿园区-链接.xlsx".encode("gb18030"))).symlink_to("/etc/passwd")  # both at once
    os.mkfifo(inbox / "宽城区-管道.xlsx")

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "pool_intake", "--today", "2022-07-05"],
        cwd=REPO,
        env=dict(os.environ, PREFECT_LOGGING_LEVEL="WARNING", PREFECT_API_URL=str(PREFECT_API_URL.value())),
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    assert peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"

    result = json.loads(done.stdout.decode()[done.stdout.decode().index("{") :])
    by_file = {f["file"]: f for f in result["files"]}
    accepted = {"乾安县-培育库申报表.xlsx", "乾安县-第二批申报表.xlsx", "乾安县 第三批申报表.xlsx"}
    for name in accepted:
        assert by_file[name].get("refused") is None and by_file[name]["admitted"] == 1, by_file[name]
    refused = {
        "长岭县-声明范围.xlsx": "工作表范围过大（声明范围 1048576 行 × 16384 列",
        "长岭县-实际范围.xlsx": "工作表范围过大（实际范围 1048576 行 × 16384 列",
        "扶余市-压缩炸弹.xlsx": "表格解压后过大（400 MB，上限 300 MB）",
        "宁江区-百万列.csv": "CSV 首行超过 1 MB",
        "长岭县-超长单元格.csv": "第 2 行【项目名称】内容长达 50000000 字，超过上限 10000 字",
        "南关区-培育库申报表.xlsx": "是符号链接",
        "绿园区-链接.xlsx": "是符号链接",
        "宽城区-管道.xlsx": "不是普通文件",
    }
    for name, reason in refused.items():
        assert reason in (by_file[name].get("refused") or ""), by_file[name]

    database = Path(str(env["db_url"]).removeprefix("sqlite:///"))
    with sqlite3.connect(database) as db:
        names = {n for (n,) in db.execute("select project_name from pool_application")}
        rejected = dict(db.execute("select file_name, reason from intake_rejection").fetchall())
        bodies = [b for (b,) in db.execute("select body from outbox where kind = 'rejection'")]
    assert names == {"肉牛养殖项目1", "肉牛养殖项目2", "肉牛养殖项目3"}
    assert set(rejected) == set(refused)
    assert all(len(b) < 2000 for b in bodies)  # a 50 MB cell is never echoed into a message
    # Never followed, never copied: nothing of /etc/passwd anywhere we keep files.
    kept = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    assert not [p for p in kept if b"root:x:0:0" in p.read_bytes()[: 1 << 16]]
    assert sorted(p.name for p in inbox.iterdir()) == []  # everything answered, nothing stuck
    # Private: archived originals and the database are the service's alone.
    archived = [p for p in (home / "archive").rglob("*") if p.is_file()]
    assert archived and {oct(p.stat().st_mode & 0o777) for p in archived} == {"0o600"}
    folders = [p for p in (home / "archive").rglob("*") if p.is_dir()]
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {"0o700"}
    assert oct(database.stat().st_mode & 0o777) == "0o600"


# ------------------------------------------------------------------ what we send back
def _formulas(path: Path) -> list[str]:
    """Every formula in a workbook, as a person's Excel would see it: openpyxl's view and the raw XML."""
    import zipfile

    from openpyxl import load_workbook

    found = [
        f"{sheet.title}!{cell.coordinate}"
        for sheet in load_workbook(path).worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f"
    ]
    with zipfile.ZipFile(path) as book:
        found += [n for n in book.namelist() if n.startswith("xl/worksheets/") and b"<f>" in book.read(n)]
    return found


def test_nothing_we_write_back_is_a_formula(env: dict[str, object], tmp_path: Path) -> None:
    import pandas as pd

    from config import load_config
    from models.applications import APPLICATION_SHEET
    from models.clock import moment
    from models.db import session_scope
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy
    from tasks.workbooks import write_report, write_template
    from tests.pool_data import application, write_csv

    hostile = [
        '=HYPERLINK("http://evil.example/","click")',
        "=cmd|' /C calc'!A0",
        "+1+cmd|' /C calc'!A0",
        "@SUM(1+1)",
    ]
    rows = [
        application(n, 项目名称=value, 联系电话="12345")  # a bad phone: the row comes back to the sender
        for n, value in enumerate(hostile, start=1)
    ]
    rows.append(application(9, 成立日期="9" * 300))  # a long bad value: echoed cut
    # A CSV holds these as the text a bureau typed (an XLSX would hold them as formulas, read as values).
    path = write_csv(tmp_path / "乾安县-申报表.csv", rows, encoding="utf-8")
    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    summary = take_in_workbook(cfg, path, moment(dt.date(2022, 7, 5), cfg.campaign))
    assert summary["rejected"] == 5 and summary["error_workbook"]
    error_book = Path(summary["error_workbook"])
    assert _formulas(error_book) == []
    from openpyxl import load_workbook

    sheet = load_workbook(error_book)["有误的行"]
    sent_back = {cell.value for row in sheet.iter_rows(min_row=2) for cell in row}
    assert set(hostile) <= sent_back  # as text, exactly as sent
    long_echo = next(e["value"] for e in summary["errors"] if e["column"] == "成立日期")
    assert long_echo == "9" * 200 + "…（共 300 字，已截断）"
    assert oct(error_book.stat().st_mode & 0o777) == "0o600"

    report = write_report(
        tmp_path / "report.xlsx",
        "考核",
        [("汇总", pd.DataFrame({"单位": ["=1+1", "长春市"], "得分": [1.0, 2.0]}))],
    )
    assert _formulas(report) == []
    template = write_template(tmp_path / "template.xlsx", APPLICATION_SHEET, 2022)
    assert _formulas(template) == []


# ------------------------------------------------------------------ only the service reads what it keeps
def test_file_parameters_outside_the_inbox_are_refused_and_nothing_archived(
    env: dict[str, object], tmp_path: Path, prefect_harness: None
) -> None:
    from config.errors import SubmissionError
    from flows.pool import pool_intake
    from flows.submission import SubmissionRecord, record_submission
    from tests.pool_data import application, write_xlsx

    home = Path(str(env["home"]))
    outside = write_xlsx(tmp_path / "乾安县-培育库申报表.xlsx", [application(1)])
    uploads = home / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "链接.xlsx").symlink_to(outside)
    counts = pool_intake(
        today=dt.date(2022, 7, 5),
        files=["/etc/passwd", str(outside), str(uploads / "链接.xlsx"), "uploads/相对路径.xlsx"],
        approve=False,
    )
    reasons = [f["refused"] for f in counts["files"]]
    assert reasons == [
        "只受理收件箱或上传目录内的文件（{}、{}）".format(home / "inbox", home / "uploads"),
        "只受理收件箱或上传目录内的文件（{}、{}）".format(home / "inbox", home / "uploads"),
        "路径含符号链接，不予受理",
        "请填写文件在服务器上的完整路径（收件箱或上传目录内）",
    ]
    assert not (home / "archive").exists() or not any((home / "archive").rglob("*.*"))

    record = SubmissionRecord.for_keys("june_survey", "220102", submitted_by="王五", file_path="/etc/passwd")
    with pytest.raises(SubmissionError, match="只受理收件箱或上传目录内的文件"):
        record_submission(record)
    assert not (home / "archive").exists() or not any((home / "archive").rglob("*.*"))

    inside = write_xlsx(uploads / "乾安县-培育库申报表.xlsx", [application(2)])
    counts = pool_intake(today=dt.date(2022, 7, 5), files=[str(inside)], approve=False)
    assert counts["files"][0]["admitted"] == 1 and inside.exists()  # named files stay where they are


def test_a_killed_cli_run_leaves_no_prefect_server_behind(tmp_path: Path) -> None:
    env = fresh_cli_env(tmp_path, PREFECT_LOGGING_LEVEL="WARNING")
    cli = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "june_survey", "--today", "2022-06-21"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def children(pid: int) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
        return found

    deadline = time.monotonic() + 60
    servers: list[int] = []
    while not servers and time.monotonic() < deadline:
        servers = children(cli.pid)
        time.sleep(0.2)
    assert servers, "the run never started its server"
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in servers):
        time.sleep(0.2)
    alive = [pid for pid in servers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


@pytest.mark.also_postgres
@pytest.mark.empty_database
def test_two_first_runs_at_once_both_migrate(db_url: str, tmp_path: Path) -> None:
    """The schedule and an operator starting on an empty database: one migrates, the other waits."""
    env = dict(os.environ, CAMPAIGN_DATABASE_URL=db_url, CAMPAIGN_HOME=str(tmp_path / "var"))
    code = "from models.db import migrate\nmigrate()\nprint('migrated')"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], [err.decode()[-2000:] for _, err in outcomes]
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from models.db import alembic_config, engine_for

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine_for(db_url).connect() as connection:
        assert connection.execute(sa.text("select version_num from alembic_version")).scalar_one() == head


def test_sheet_extent_is_measured_not_guessed(tmp_path: Path) -> None:
    """Three columns (A … C) by eleven rows is 33 cells: refused under a limit of 32, taken at 33."""
    import re
    import zipfile

    from openpyxl import Workbook

    from config.errors import SubmissionError
    from config.schema import IntakeLimits
    from models.workbook import check_table_limits, column_number

    book = Workbook()
    for n in range(11):
        book.active.append([f"a{n}", f"b{n}", f"c{n}"])
    declared = tmp_path / "南关区-表.xlsx"
    book.save(declared)
    actual = tmp_path / "南关区-无声明范围.xlsx"  # the same sheet without its <dimension>: scanned
    with zipfile.ZipFile(declared) as src, zipfile.ZipFile(actual, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<dimension[^>]*/>", b"", data)
            dst.writestr(item, data)
    for path, how in ((declared, "声明范围"), (actual, "实际范围")):
        with pytest.raises(SubmissionError, match=rf"{how} 11 行 × 3 列"):
            check_table_limits(path, IntakeLimits(max_cells=32, max_columns=300))
        check_table_limits(path, IntakeLimits(max_cells=33, max_columns=300))
    assert (column_number("A"), column_number("Z"), column_number("AA"), column_number("XFD")) == (
        1,
        26,
        27,
        16384,
    )


def test_odd_documents_never_stop_the_days_reminders(env: dict[str, object], prefect_harness: None) -> None:
    """The June inbox as unzipping a Windows archive leaves it: the run still reminds all 70 units."""
    from flows.june import june_survey
    from models.db import session_scope
    from models.tables import IntakeRejection, Submission

    inbox = Path(str(env["home"])) / "inbox" / "june_survey"
    inbox.mkdir(parents=True)
    (inbox / "南关区-调研材料.pdf").write_bytes(b"%PDF-1.4 good")
    (inbox / os.fsdecode("宽城区-调研材料.pdf".encode("gb18030"))).write_bytes(b"%PDF-1.4 gbk name")
    (inbox / "朝阳区-调研\n材料.pdf").write_bytes(b"%PDF-1.4 newline name")
    (inbox / "二道区-调研材料.pdf").symlink_to("/etc/passwd")
    os.mkfifo(inbox / "绿园区-调研材料.pdf")

    counts = june_survey(today=dt.date(2022, 6, 23))

    assert counts["intake"] == {"accepted": 3, "duplicates": 0, "rejected": 2}
    assert counts["notifications"]["reminder"] == 67  # the 70 units less the three that have sent theirs
    with session_scope() as session:
        files = sorted(s.file_name for s in session.query(Submission))
        refused = sorted((r.file_name, r.reason[:6]) for r in session.query(IntakeRejection))
    assert files == ["南关区-调研材料.pdf", "宽城区-调研材料.pdf", "朝阳区-调研 材料.pdf"]
    assert refused == [("二道区-调研材料.pdf", "是符号链接（"), ("绿园区-调研材料.pdf", "不是普通文件")]
    subjects = [m.subject for m in outbox() if m.kind in ("receipt", "rejection")]
    assert "\n" not in "".join(subjects) and len(subjects) == 5
    assert list(inbox.iterdir()) == []


# ------------------------------------------------------------------ what operators read
def _links_and_html(source: str) -> tuple[list[str], list[str]]:
    """What a CommonMark renderer makes of `source`: its links' targets and its raw HTML."""
    from markdown_it import MarkdownIt

    links, html = [], []
    stack = MarkdownIt("commonmark").enable("table").parse(source)
    while stack:
        token = stack.pop()
        stack += token.children or []
        if token.type in ("link_open", "image"):
            links.append(str(token.attrGet("href") or token.attrGet("src")))
        if token.type in ("html_inline", "html_block"):
            html.append(token.content)
    return links, html


def test_nothing_a_bureau_types_is_a_link_in_the_ui(env: dict[str, object], prefect_harness: None) -> None:
    """A workbook's cells and a file's name are shown to operators as written: in the pool's tables and
    summary and in the overview (Prefect renders artifacts, tables' cells included, as Markdown), no
    link, no HTML, no bare address turned into a link. The product's own links (reports) stay links."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.pool import pool_intake
    from tests.pool_data import application, write_xlsx

    inbox = Path(str(env["home"])) / "inbox" / "pool_intake"
    inbox.mkdir(parents=True)
    phishing = "[省厅通知：点此重新登录](https://evil.example/login)"
    markup = "<a href='https://evil.example/a'>点此</a> https://evil.example/bare www.evil.example **加急**"
    write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(1, 项目名称=phishing, 申报主体名称=markup)])
    (inbox / "乾安县-[点此下载省厅整改通知](https:evil.example).xlsx").write_bytes(b"not a workbook")

    state = pool_intake(today=dt.date(2022, 7, 5), approve=False, return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    shown = {a.key: a for a in found}
    assert {"pool-summary", "pool-county", "campaign-overview"} <= set(shown)
    sources = []
    for artifact in found:
        sources.append(artifact.description or "")
        data = (
            json.loads(artifact.data)
            if artifact.type == "table" and isinstance(artifact.data, str)
            else artifact.data
        )
        if artifact.type == "table":
            sources += [str(v) for row in data for v in row.values()]  # each cell is rendered as Markdown
        else:
            sources.append(str(data))
    everything = "\n".join(sources)
    assert "省厅通知：点此重新登录" in everything and "点此下载省厅整改通知" in everything  # shown, as text
    for source in sources:
        links, html = _links_and_html(source)
        assert html == [], source
        assert all(
            not link.startswith(("https://evil", "http://www.evil", "https:evil")) for link in links
        ), source
        assert "://evil" not in source and "www.evil" not in source, source  # autolinking finds none
