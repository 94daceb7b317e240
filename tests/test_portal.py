"""A unit's page (portal/): reached from the link in its messages, showing what it owes; uploads go
through the one intake the flows have; links are capabilities; hostile uploads are refused with a
reason and the others go on. The pages in a real browser are in test_browser.py."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from models.db import session_scope
from tasks.links import insert_links
from tests.helpers import outbox
from tests.pool_data import application, write_xlsx

pytestmark = pytest.mark.usefixtures("prefect_harness")
QIANAN, CHANGLING = "220723", "220722"
LINK = re.compile(r"本单位办理页面（待办事项、模板下载、上传材料、处理结果）：(\S+)")


def _client() -> TestClient:
    from portal.app import create_app

    return TestClient(create_app(sweeping=False), base_url="http://127.0.0.1:4202")


def _as_sent(body: str, unit_key: str) -> str:
    """A message as its deliverer sends it: the outbox holds a placeholder, never a working link."""
    assert "/u/" not in body, body
    with session_scope() as session:
        return insert_links(session, body, unit_key)


def _link(unit_key: str) -> str:
    """The link in the newest message the unit got, as its path."""
    bodies = [_as_sent(m.body, m.unit_key) for m in outbox() if m.unit_key == unit_key]
    assert bodies, f"no message to {unit_key}"
    found = LINK.search(bodies[-1])
    assert found, bodies[-1]
    return found.group(1).removeprefix("http://127.0.0.1:4202")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def _upload(
    client: TestClient,
    path: str,
    html: str,
    name: str,
    data: bytes,
    folder: str = "pool_intake",
    obligation: str = "pool_intake",
    **extra: str,
) -> Any:
    return client.post(
        f"{path}/upload",
        data={"csrf": _csrf(html), "obligation": obligation, "folder": folder, **extra},
        files={"file": (name, data, "application/octet-stream")},
        headers={"Accept": "application/json"},
    )


def _xlsx(rows: list[dict[str, Any]], tmp_path: Path) -> bytes:
    path = tmp_path / "book.xlsx"
    write_xlsx(path, rows)
    return path.read_bytes()


@pytest.fixture
def started(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """2022-06-21: the June kickoff went out, every unit's message carrying its page link; the pages
    are opened within the 2022 campaign (their clock is the wall clock: set to 2022-06-28)."""
    from flows.june import june_survey

    june_survey(today=dt.date(2022, 6, 21))
    monkeypatch.setattr("portal.app._today", lambda cfg: dt.date(2022, 6, 28))
    return env


def test_a_unit_opens_its_page_from_its_message_and_its_upload_is_taken_in(
    started: dict[str, Any], tmp_path: Path
) -> None:
    from flows.pool import pool_intake

    client = _client()
    path = _link(QIANAN)
    page = client.get(path)
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "乾安县" in html and "三(一) 开展返乡入乡创业实地调研" in html and "截止 2022-06-30" in html
    assert "三(三)" in html and "常年受理" in html  # the rolling pool
    template = client.get(f"{path}/template/pool")
    assert template.status_code == 200
    assert load_workbook(io.BytesIO(template.content)).sheetnames[0]

    rows = [
        application(1),
        application(2),
        application(3, 统一社会信用代码="bad"),
        application(4, 成立日期="明天"),
    ]
    book = _xlsx(rows, tmp_path)
    sent = _upload(client, path, html, "培育库申报表.xlsx", book)
    assert sent.status_code == 200, sent.text
    receipt = sent.json()["receipt"]
    assert sent.json()["notice"].startswith("已收到“培育库申报表.xlsx”，回执号 2022-")
    status = client.get(f"{path}/status").json()
    assert [(s["receipt"], s["state"]) for s in status] == [(receipt, "waiting")]
    [stored] = (Path(str(started["home"])) / "inbox" / "pool_intake").iterdir()
    assert (
        stored.name == f"乾安县-培育库入库-{receipt}.xlsx" and oct(stored.stat().st_mode & 0o777) == "0o600"
    )
    again = _upload(client, path, html, "again.xlsx", book)  # the same file twice
    assert again.json()["receipt"] == receipt and again.json()["new"] is False

    pool_intake(today=dt.date(2022, 7, 5), approve=False)  # what the upload's trigger runs
    [result] = client.get(f"{path}/status").json()
    assert result["state"] == "accepted" and "其中 2 行有错误" in result["result"]
    assert {e["column"] for e in result["errors"]} == {"统一社会信用代码", "成立日期"}
    errors = client.get(f"{path}/errors/{result['id']}")
    assert errors.status_code == 200 and load_workbook(io.BytesIO(errors.content))
    told = [m for m in outbox() if m.unit_key == QIANAN and m.kind == "intake_result"]
    assert len(told) == 1 and path in _as_sent(
        told[0].body, QIANAN
    )  # the result message carries the same link

    # Another unit's link opens its own page only; its hand on the first unit's file finds nothing.
    other = _link(CHANGLING)
    assert "长岭县" in client.get(other).text and "培育库申报表.xlsx" not in client.get(other).text
    assert client.get(f"{other}/errors/{result['id']}").status_code == 404
    assert client.get(f"{other}/status").json() == []


def test_a_revoked_link_says_whom_to_ask_and_a_reissued_one_works(started: dict[str, Any]) -> None:
    from flows.cli import main

    client = _client()
    path = _link(QIANAN)
    assert main(["links", "revoke", "乾安县", "--year", "2022"]) == 0
    gone = client.get(path)
    assert gone.status_code == 410 and "此链接已停用" in gone.text and "省就业服务局" in gone.text
    assert main(["links", "reissue", "乾安县", "--year", "2022"]) == 0
    from tasks.links import listing

    [row] = [r for r in listing(2022) if r["unit_key"] == QIANAN]
    assert row["version"] == 2 and row["url"]
    assert client.get(str(row["url"]).removeprefix("http://127.0.0.1:4202")).status_code == 200
    assert client.get(path).status_code == 410  # the old one stays stopped


def test_hostile_uploads_are_refused_with_a_reason_and_the_others_go_on(
    started: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("CAMPAIGN_MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    client = _client()
    path = _link(QIANAN)
    html = client.get(path).text
    inbox = Path(str(started["home"])) / "inbox"
    too_big = _upload(client, path, html, "大.xlsx", b"PK\x03\x04" + b"\0" * (2 << 20))
    assert too_big.status_code == 413 and "超过 1 MB" in too_big.json()["notice"]
    program = _upload(client, path, html, "申报表.xlsx", b"MZ\x90\x00" + b"\0" * 1000)
    assert program.status_code == 400 and "按文件内容判断" in program.json()["notice"]
    wrong = _upload(client, path, html, "x.pdf", b"%PDF-1.4 a document")  # a PDF where a sheet is owed
    assert wrong.status_code == 400 and "只受理 Excel" in wrong.json()["notice"]
    csrf = client.post(
        f"{path}/upload",
        data={"csrf": "0" * 32, "obligation": "pool_intake", "folder": "pool_intake"},
        files={"file": ("a.xlsx", _xlsx([application(1)], tmp_path))},
        headers={"Accept": "application/json"},
    )
    assert csrf.status_code == 403
    # cut off halfway (the phone lost its signal; a proxy passes on what came): nothing stored
    whole = client.build_request(
        "POST",
        f"{path}/upload",
        data={"csrf": _csrf(html), "obligation": "pool_intake", "folder": "pool_intake"},
        files={"file": ("半截.xlsx", _xlsx([application(n) for n in range(1, 40)], tmp_path))},
    ).read()
    boundary = whole[2:].split(b"\r\n")[0].decode()  # the body starts with --<boundary>
    half = client.post(
        f"{path}/upload",
        content=whole[: len(whole) // 2],
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json",
        },
    )
    assert half.status_code == 400 and "上传未完成" in half.json()["notice"], half.text
    assert client.get(f"{path}/status").json() == []
    odd = _upload(client, path, html, "../../etc/申报\n表.xlsx", _xlsx([application(5)], tmp_path))
    assert odd.status_code == 200
    stored = sorted(p.name for p in (inbox / "pool_intake").iterdir())
    assert stored == [f"乾安县-培育库入库-{odd.json()['receipt']}.xlsx"]  # the server's name, in the inbox
    [item] = client.get(f"{path}/status").json()
    assert item["name"] == "申报 表.xlsx"  # shown as its last part, the line break a space
    assert not list((inbox / ".incoming").iterdir())  # no spool left behind

    bad = [client.get(f"/u/{'x' * 31}{n % 10}").status_code for n in range(1_000)]
    assert set(bad) == {404, 429} and bad[:20] == [404] * 20 and 500 not in bad


def test_an_upload_while_the_flows_server_is_down_is_kept_and_asked_for_again(
    started: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event that asks for the intake cannot be sent: the upload is stored and its request waits;
    the portal's sweep asks again once a minute has passed, and the run takes it in."""
    import sqlalchemy as sa

    from models.db import session_scope
    from models.tables import IntakeRequest
    from tasks import intake_requests

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    client = _client()
    path = _link(QIANAN)
    sent = _upload(client, path, client.get(path).text, "申报表.xlsx", _xlsx([application(1)], tmp_path))
    assert sent.status_code == 200
    with session_scope() as session:
        [request] = session.exec(sa.select(IntakeRequest)).scalars().all()
        assert (request.flow, request.year, request.taken_at) == ("pool_intake", 2022, None)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=intake_requests.RETRY_SECONDS + 1)
    asked: list[tuple[str, int]] = []
    monkeypatch.setattr(intake_requests, "ask", lambda flow, year, now: asked.append((flow, year)) or True)
    assert intake_requests.sweep(dt.datetime.now(dt.UTC)) == 0  # asked less than a minute ago
    assert intake_requests.sweep(later) == 1 and asked == [("pool_intake", 2022)]
    from flows.pool import pool_intake

    pool_intake(today=dt.date(2022, 7, 5), approve=False)
    assert client.get(f"{path}/status").json()[0]["state"] == "accepted"
    assert intake_requests.sweep(later + dt.timedelta(minutes=5)) == 0  # the run took it: nothing left
    with session_scope() as session:
        [request] = session.exec(sa.select(IntakeRequest)).scalars().all()
        assert request.taken_at is not None


def test_operators_upload_on_a_units_behalf_behind_their_password(
    started: dict[str, Any], tmp_path: Path
) -> None:
    from tasks.auth import operator_login

    client = _client()
    assert client.get("/operator").status_code == 401
    user, password = operator_login().split(":", 1)
    client.auth = (user, password)
    index = client.get("/operator?year=2022")
    assert index.status_code == 200 and "/operator/unit/220723?year=2022" in index.text
    page = client.get("/operator/unit/220723?year=2022").text
    assert "省就业服务局经办人视图" in page
    nameless = _upload(client, "/operator/unit/220723", page, "a.xlsx", _xlsx([application(1)], tmp_path))
    assert nameless.status_code == 400 and "上传人" in nameless.json()["notice"]
    sent = _upload(
        client,
        "/operator/unit/220723",
        page,
        "微信收到的申报表.xlsx",
        _xlsx([application(1)], tmp_path),
        uploaded_by="李四",
    )
    assert sent.status_code == 200
    [item] = client.get("/operator/unit/220723/status?year=2022").json()
    assert item["uploaded_by"] == "省就业服务局 李四（代乾安县上传）"


def test_a_link_reaches_no_one_elses_results_and_no_personal_numbers(
    started: dict[str, Any], tmp_path: Path
) -> None:
    """What a link holder sees of its uploads: numbers a bureau typed into any cell masked, on the page
    and in its error workbook; the same bytes from another unit are not that unit's outcome; a double
    click stores one upload; what the portal cannot serve gets a Chinese page."""
    from concurrent.futures import ThreadPoolExecutor

    from flows.pool import pool_intake

    client = _client()
    path, other = _link(QIANAN), _link(CHANGLING)
    html, other_html = client.get(path).text, client.get(other).text
    personal = "220723198501010012 13912345678"
    book = _xlsx([application(1), application(2, 成立日期=personal)], tmp_path)
    with ThreadPoolExecutor(4) as pool:  # a double (and quadruple) click
        clicks = list(
            pool.map(lambda _: _upload(_client(), path, html, "电话13812345678的申报表.xlsx", book), range(4))
        )
    assert [c.status_code for c in clicks] == [200] * 4
    assert sorted(c.json()["new"] for c in clicks) == [False, False, False, True]
    assert len({c.json()["receipt"] for c in clicks}) == 1
    assert _upload(client, other, other_html, "同一文件.xlsx", book).json()["new"] is True
    all_wrong = _xlsx([application(7, 统一社会信用代码="bad")], tmp_path)
    assert _upload(client, path, html, "全错.xlsx", all_wrong).status_code == 200

    pool_intake(today=dt.date(2022, 7, 5), approve=False)
    wrong, mine = client.get(f"{path}/status").json()  # newest first
    assert (wrong["name"], wrong["state"]) == ("全错.xlsx", "refused")
    assert wrong["result"] == "未受理：读取 1 行，全部有错误，请下载错误清单，更正后重新上传"
    [told] = [
        m for m in outbox() if m.unit_key == QIANAN and m.kind == "intake_result" and "全错.xlsx" in m.subject
    ]
    assert "有误未受理的行（本次全部有误，没有受理任何一行）" in told.body and "其余各行" not in told.body
    assert mine["name"] == "电话138****5678的申报表.xlsx"
    assert [e["value"] for e in mine["errors"]] == ["220723********0012 139****5678"]
    workbook = load_workbook(io.BytesIO(client.get(f"{path}/errors/{mine['id']}").content))
    cells = [
        str(c) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True) for c in row
    ]
    assert "220723********0012 139****5678" in cells
    assert not [c for c in cells if "19850101" in c or "13912345678" in c]
    [theirs] = client.get(f"{other}/status").json()
    assert (theirs["state"], theirs["errors"]) == ("refused", [])
    assert theirs["result"] == "未处理：与其他单位已报送的文件内容完全相同，请确认上传的是本单位的文件"
    assert client.get(f"{other}/errors/{theirs['id']}").status_code == 404

    two = client.post(
        f"{path}/upload",
        data={"csrf": _csrf(html), "obligation": "pool_intake", "folder": "pool_intake"},
        files=[("file", ("a.xlsx", book)), ("file", ("b.xlsx", book))],
        headers={"Accept": "application/json"},
    )
    assert two.status_code == 400 and "无法识别" in two.json()["notice"]
    long_name = "项" * 300 + ".xlsx"
    kept = _upload(client, path, html, long_name, _xlsx([application(3)], tmp_path)).json()
    assert kept["notice"].startswith("已收到“" + "项" * 114 + "….xlsx”")

    from tasks.auth import operator_login

    for url, status, words in [
        ("/nothing-here", 404, "没有这个页面"),
        (f"{path}/upload", 405, "请从本单位页面上的按钮操作"),
        (f"{path}/errors/99999999999999999999999", 404, "没有这个文件"),
        ("/operator?year=abc", 404, "没有这一年度"),
        ("/operator/unit/220723?year=1999", 404, "没有这一年度"),
    ]:
        answer = client.get(url, auth=tuple(operator_login().split(":", 1)))  # type: ignore[arg-type]
        assert (answer.status_code, words in answer.text) == (status, True), (url, answer.text)


def test_a_year_that_is_over_takes_no_uploads_and_says_so(
    started: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2022's campaign closed on 2023-02-16: its pages stay to be read, without upload boxes, and an
    upload is refused with whom to ask (its intake run would be refused as well)."""
    client = _client()
    path = _link(QIANAN)
    html = client.get(path).text
    monkeypatch.setattr("portal.app._today", lambda cfg: dt.date(2023, 3, 1))
    closed = client.get(path).text
    assert "2022年度报送已结束（2022-06-21 至 2023-02-16），本页仅供查阅，暂不受理上传" in closed
    assert 'type="file"' not in closed and "培育库" in closed  # still what it owed and sent
    sent = _upload(client, path, html, "申报表.xlsx", _xlsx([application(1)], tmp_path))
    assert sent.status_code == 400 and "2022年度报送已结束" in sent.json()["notice"]
    assert client.get(f"{path}/status").json() == []


def test_links_start_where_campaign_serve_serves_the_pages(
    started: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make run PORT=4700` serves the pages on 4702: a terminal's `campaign links` (or `campaign
    deliver`) in the same home writes links to 4702, unless IT set CAMPAIGN_PORTAL_URL."""
    from config.settings import get_settings
    from flows.cli import main

    monkeypatch.delenv("CAMPAIGN_PORTAL_URL", raising=False)
    get_settings.cache_clear()
    get_settings().served_portal_file.write_text("http://127.0.0.1:4702\n")  # what serve wrote
    capsys.readouterr()
    assert main(["links", "list", "--year", "2022"]) == 0
    assert "http://127.0.0.1:4702/u/" in capsys.readouterr().out
    monkeypatch.setenv("CAMPAIGN_PORTAL_URL", "https://campaign.hrss.jl.example/")
    get_settings.cache_clear()
    assert main(["links", "list", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "https://campaign.hrss.jl.example/u/" in out and "4702" not in out


def test_a_documents_receipt_names_it_as_its_sender_uploaded_it(started: dict[str, Any]) -> None:
    """The inbox holds the server's name (乾安县-实地调研-2022-000001.pdf); the unit's receipt quotes
    the name it chose and its receipt number, as the page did."""
    from flows.june import june_survey

    client = _client()
    path = _link(QIANAN)
    sent = _upload(
        client,
        path,
        client.get(path).text,
        "调研报告（定稿）.pdf",
        b"%PDF-1.4 report",
        "june_survey",
        "june_survey",
    )
    assert sent.status_code == 200, sent.text
    june_survey(today=dt.date(2022, 6, 28))
    [told] = [m for m in outbox() if m.unit_key == QIANAN and m.kind == "receipt"]
    assert f"材料：调研报告（定稿）.pdf（回执号 {sent.json()['receipt']}）。" in told.body
    assert client.get(f"{path}/status").json()[0]["state"] == "accepted"


def test_a_file_named_like_a_placeholder_gets_no_one_elses_link_and_stops_no_delivery(
    started: dict[str, Any],
) -> None:
    """乾安县 names its uploads as link placeholders of 长岭县 and of a unit that does not exist: its
    receipts quote the names as text, carry 乾安县's own link only, and every message goes out."""
    from flows.june import june_survey
    from models.tables import OutboxStatus

    client = _client()
    path = _link(QIANAN)
    html = client.get(path).text
    for n, name in enumerate(["[[unit-page:220722:2022]].pdf", "[[unit-page:999999:2022]]"]):
        sent = _upload(
            client, path, html, name, f"%PDF-1.4 report {n}".encode(), "june_survey", "june_survey"
        )
        assert sent.status_code == 200, sent.text
    june_survey(today=dt.date(2022, 6, 28))  # takes them in and delivers
    assert {m.status for m in outbox()} == {OutboxStatus.sent}
    # as delivered to 乾安县's mailbox: the names quoted as text, its own link and only that
    delivered = [
        f.read_text()
        for f in (Path(str(started["home"])) / "mailbox").glob(f"{QIANAN}-*/*.txt")
        if "【已收到】" in f.read_text()
    ]
    assert len(delivered) == 2
    for text in delivered:
        assert "[[unit-page:" in text.split("本单位办理页面")[0]
        assert re.findall(r"/u/[A-Za-z0-9_-]+", text) == [path]
    assert "长岭县" in client.get(_link(CHANGLING)).text  # 长岭县's link is still only in its own messages


def test_3_6_a_county_files_its_naming_list_on_its_page(
    started: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """三(六) 市县 decide their own 评审认定: 乾安县's page offers the 基地命名名单 under 市县评审 (its
    template too); the list it uploads is taken in by the review's run and meets the obligation."""
    from flows.pool import pool_intake
    from flows.review import october_review

    inbox = Path(str(started["home"])) / "inbox" / "pool_intake"
    write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(1)])
    pool_intake(today=dt.date(2022, 7, 5), approve=False)
    october_review(today=dt.date(2022, 9, 1), approve=False)  # the review's kickoff
    monkeypatch.setattr("portal.app._today", lambda cfg: dt.date(2022, 10, 20))
    client = _client()
    path = _link(QIANAN)
    html = client.get(path).text
    assert "上传表格（基地命名名单）" in html and f"{path}/template/namings" in html
    template = load_workbook(io.BytesIO(client.get(f"{path}/template/namings").content))
    headers = [c.value for c in template.worksheets[0][1]]
    assert headers[:6] == ["项目名称", "统一社会信用代码", "档次", "命名文件文号", "推荐上级", "不推荐理由"]
    book = tmp_path / "名单.xlsx"
    write_xlsx(
        book,
        [
            {
                "项目名称": "肉牛养殖项目1",
                "统一社会信用代码": application(1)["统一社会信用代码"],
                "档次": "一档",
                "命名文件文号": "乾人社发〔2022〕8号",
                "推荐上级": "是",
                "不推荐理由": "",
            }
        ],
        headers[:6],
    )
    sent = _upload(
        client, path, html, "命名名单.xlsx", book.read_bytes(), folder="naming_list", obligation="base_review"
    )
    assert sent.status_code == 200, sent.text
    october_review(today=dt.date(2022, 10, 20), approve=False)  # what the upload's trigger runs
    [result] = client.get(f"{path}/status").json()
    assert (result["state"], result["result"]) == ("accepted", "已受理：读取 1 行，全部通过")
    assert "已完成" in client.get(path).text.split("市县两级基地评审认定")[1].split("</li>")[0]
