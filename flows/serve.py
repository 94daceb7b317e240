"""Serve every deployment on its calendar schedule, with a local Prefect server if none is configured."""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import functools
import html
import http.server
import io
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from config import load_config
from config.settings import get_settings
from flows.registry import deployments, served_years
from models.clock import local_today
from models.db import migrate
from tasks.auth import operator_login
from tasks.files import write_text

log = logging.getLogger("campaign.serve")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def die_with_parent() -> None:
    """In the server's process, before it runs: the kernel ends it when the process that started it
    dies, however it dies (kill -9 included), so no server is ever left behind."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def prefect_server(port: int, *, ui: bool = True, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `prefect server start` (SQLite in PREFECT_HOME) for the life of this block and of this process."""
    url = f"http://127.0.0.1:{port}/api"
    server_env = dict(
        os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=url, **(env or {})
    )
    if not ui:
        server_env["PREFECT_UI_ENABLED"] = "false"
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.prefect_server", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        preexec_fn=die_with_parent,
        # Its own process group: a Ctrl-C in the terminal reaches `campaign serve` alone, which stops its
        # runner while the server still answers, then the server (the runner talking to a server already
        # gone retried for ~45 s before it gave up).
        start_new_session=True,
        stdout=None if ui else subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with code {proc.returncode}")
            if _healthy(url):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("prefect server did not become healthy within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def local_prefect_server(port: int = 4200, env: dict[str, str] | None = None) -> Iterator[str]:
    """The Prefect server for `campaign serve`: PREFECT_API_URL if set, one already running on the port,
    or a new one (with `env`, e.g. its API auth)."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        log.info("using the Prefect server already running at %s", url)
        yield url
        return
    with prefect_server(port, env=env) as url:
        yield url


@contextlib.contextmanager
def run_server() -> Iterator[None]:
    """For a command that runs flows (campaign run, deliver, intake …): the configured Prefect API, else a
    temporary server of its own (no UI) that ends with the command, even if the command is killed.

    Prefect's own temporary server would outlive a killed command (it is an ordinary child process).
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():  # from the environment or the active Prefect profile
        yield
        return

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with prefect_server(port, ui=False) as url, temporary_settings(updates={PREFECT_API_URL: url}):
        os.environ["PREFECT_API_URL"] = url
        try:
            yield
        finally:
            # Send the run's last logs and events while the server is still there to take them.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
            del os.environ["PREFECT_API_URL"]


UI_FILES = Path(__file__).resolve().parent / "ui"
LOGIN_PAGE = "campaign-login.html"
OVERVIEW_PAGE = "campaign-overview.html"
# Before Prefect's app starts: a browser without the password goes to the campaign's login page, so
# Prefect's UI never calls its API unsigned (each such call left an error toast after signing in).
LOGIN_GUARD = (
    "<script>if(!localStorage.getItem('prefect-password'))location.replace("
    f"'/{LOGIN_PAGE}?next='+encodeURIComponent(location.pathname+location.search))</script>"
)
DRESSED = "<!-- campaign -->"


def dress_ui(static_dir: Path) -> None:
    """Put the campaign's pages beside Prefect's V1 UI (the copy Prefect made in
    PREFECT_UI_STATIC_DIRECTORY/v1 when its server started), and at the top of its page the login guard,
    the campaign's style sheet (flows/ui/campaign.css: names whole, approval tables visible) and script
    (flows/ui/campaign.js: optional fields marked in Chinese)."""
    for page in (LOGIN_PAGE, OVERVIEW_PAGE):
        shutil.copyfile(UI_FILES / page, static_dir / page)
    index = static_dir / "index.html"
    page = index.read_text(encoding="utf-8")
    if DRESSED not in page:
        style = (UI_FILES / "campaign.css").read_text(encoding="utf-8")
        script = (UI_FILES / "campaign.js").read_text(encoding="utf-8")
        head = f"<head>{DRESSED}{LOGIN_GUARD}<style>{style}</style><script>{script}</script>"
        link = f'<body><a class="campaign-overview-link" href="/{OVERVIEW_PAGE}">全省进度一览</a>'
        write_text(index, page.replace("<head>", head, 1).replace("<body>", link, 1), mode=0o644)


class _ReportsHandler(http.server.SimpleHTTPRequestHandler):
    """GET and HEAD only, for a request that carries the UI's basic-auth password."""

    expected = ""  # "Basic <base64 user:password>", set per server

    def _allowed(self) -> bool:
        given = self.headers.get("Authorization", "")
        if secrets.compare_digest(given.encode(), self.expected.encode()):
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="campaign reports", charset="UTF-8"')
        self.end_headers()
        return False

    def do_GET(self) -> None:
        if self._allowed() and self._inside():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._allowed() and self._inside():
            super().do_HEAD()

    def _inside(self) -> bool:
        """Only regular files and folders inside the reports folder, never through a link: a link placed
        there (to /etc, say) is refused as if it were not there."""
        root = Path(self.directory).resolve()
        asked = Path(self.translate_path(self.path))
        real = asked.resolve()
        if real == asked and real.is_relative_to(root) and (real.is_file() or real.is_dir()):
            return True
        self.send_error(404)  # the status line is Latin-1: no Chinese reason there
        return False

    def send_head(self) -> io.BufferedReader | io.BytesIO | None:
        """A regular file inside the reports folder, opened without following a link (O_NOFOLLOW) and
        checked again once open (its real path, its kind), so a link swapped in after `_inside`
        looked leads nowhere either; a folder is listed (an index.html in it is never served)."""
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            if not self.path.split("?", 1)[0].endswith("/"):
                self.send_response(301)
                self.send_header("Location", self.path.split("?", 1)[0] + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self.list_directory(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            self.send_error(404)
            return None
        f = os.fdopen(fd, "rb")
        info = os.fstat(fd)
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not stat.S_ISREG(info.st_mode) or not real.is_relative_to(Path(self.directory).resolve()):
            f.close()
            self.send_error(404)
            return None
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(info.st_size))
        self.send_header("Last-Modified", self.date_time_string(int(info.st_mtime)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        return f

    def list_directory(self, path: str | os.PathLike[str]) -> io.BytesIO | None:
        """A folder as a page that says what the site is: the campaign's reports, each a link."""
        folder = Path(path)
        entries = sorted(
            (p for p in folder.iterdir() if not p.name.startswith(".") and not p.is_symlink()),
            key=lambda p: (not p.is_dir(), p.name),
        )
        here = html.escape(urllib.parse.unquote(self.path.split("?", 1)[0]))
        items = "".join(
            f'<li><a href="{urllib.parse.quote(p.name)}{"/" if p.is_dir() else ""}">'
            f"{html.escape(p.name)}{'/' if p.is_dir() else ''}</a></li>"
            for p in entries
        )
        up = '<p><a href="../">上一级</a></p>' if here != "/" else ""
        page = (
            '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>返乡入乡创业基地建设行动 · 报表下载</title></head><body>"
            f"<h1>返乡入乡创业基地建设行动 · 报表下载</h1><p>当前位置：{here}</p>{up}"
            f"<ul>{items or '<li>暂无报表</li>'}</ul>"
            "<p>各年度的进度一览、培育库清单、考核结果等报表，由各流程运行后生成，只读。</p></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        return io.BytesIO(page)

    def log_message(self, format: str, *args: object) -> None:  # no request lines on the console
        log.debug(format, *args)


def serve_reports(port: int, auth: str) -> http.server.ThreadingHTTPServer:
    """The reports folder (workbooks, charts), read-only behind `auth`, in a background thread; artifacts
    link here (CAMPAIGN_REPORTS_URL)."""
    folder = get_settings().reports.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(auth.encode()).decode()
    handler = type(
        "ReportsHandler",
        (_ReportsHandler,),
        {
            "expected": f"Basic {token}",
            "__init__": functools.partialmethod(_ReportsHandler.__init__, directory=str(folder)),
        },
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="reports", daemon=True).start()
    return server


def serve_portal(port: int) -> Any:
    """The bureaus' pages (portal/) in a background thread of `campaign serve`; in production they are
    a process of their own (`campaign portal`)."""
    import uvicorn

    from portal.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, name="portal", daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server


def serve(port: int = 4200, reports_port: int | None = None, portal_port: int | None = None) -> None:
    from prefect import serve as prefect_serve
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        PREFECT_RUNNER_POLL_FREQUENCY,
        temporary_settings,
    )

    newest = load_config()
    migrate()
    today = local_today(newest.campaign)
    years = served_years(today)
    cfgs = [load_config(y) for y in years]
    if today.year not in years:
        log.warning(
            "no campaign config for %s: serving %s for rehearsal and replay only (its runs refuse dates outside "
            "its window). Run `campaign new-year %s` and review the file for this year's campaign.",
            today.year,
            years,
            today.year,
        )
    auth = operator_login()
    reports_port = reports_port or port + 1
    reports = serve_reports(reports_port, auth)
    os.environ["CAMPAIGN_REPORTS_URL"] = f"http://127.0.0.1:{reports_port}"
    portal_port = portal_port or port + 2
    # Every message's link starts here (its runs read it from the environment): the address the
    # bureaus reach, when IT set one; else this machine's portal.
    os.environ.setdefault("CAMPAIGN_PORTAL_URL", f"http://127.0.0.1:{portal_port}")
    get_settings.cache_clear()
    # ... and in this home's other processes (`campaign links`, `campaign deliver` from a terminal).
    write_text(get_settings().served_portal_file, get_settings().portal_url + "\n")
    ui_files = (get_settings().home / "ui").resolve()
    guarded = {
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        # One UI, the one the guide shows (README, "Why the V1 UI"): Prefect 3.9 opens its V2 preview by
        # default, where a paused run has no Resume button and artifacts have no page of their own.
        "PREFECT_SERVER_UI_V2_ENABLED": "false",
        "PREFECT_UI_STATIC_DIRECTORY": str(ui_files),
    }
    # A run submitted from a form starts within seconds (Prefect's runner looks every 10 s by default).
    poll = int(os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", RUNNER_POLL_SECONDS))
    with (
        local_prefect_server(port, env=guarded) as url,
        temporary_settings(
            updates={PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: auth, PREFECT_RUNNER_POLL_FREQUENCY: poll}
        ),
    ):
        # flow runs start in subprocesses that read the environment
        os.environ["PREFECT_API_URL"] = url
        os.environ["PREFECT_API_AUTH_STRING"] = auth
        where = (
            "PREFECT_SERVER_API_AUTH_STRING"
            if os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
            else get_settings().prefect_auth_file.resolve()
        )
        ui = url.removesuffix("/api")
        if (ui_files / "v1" / "index.html").exists():  # a server of our own (not one already running)
            dress_ui(ui_files / "v1")
        portal = serve_portal(portal_port)
        print(
            f"操作界面：{ui}/{LOGIN_PAGE}  — 登录后在 Deployments 中选择流程并点击 Run\n"
            f"登录口令见 {where}（整行“operator:…”或冒号后的密码均可）\n"
            f"报表下载：{os.environ['CAMPAIGN_REPORTS_URL']}/（浏览器询问时：用户名 operator，密码同上）\n"
            f"各单位报送页面：http://127.0.0.1:{portal_port}/operator（经办人：用户名 operator，密码同上；各单位凭通知中的链接进入）\n"
            f"服务年度：{'、'.join(f'{y}年' for y in years)}"
        )
        signal.signal(signal.SIGINT, _stop_on_ctrl_c)
        threading.Thread(target=name_new_runs, name="run names", daemon=True).start()
        try:
            prefect_serve(*deployments(cfgs), pause_on_shutdown=False)  # type: ignore[arg-type]
        finally:
            reports.shutdown()
            portal.should_exit = True


NAMING_SECONDS = 0.5


def name_new_runs(every: float = NAMING_SECONDS) -> None:
    """Give every new run of a served deployment its Chinese name within a second of its creation,
    whoever created it (the scheduler, a form, Quick run): Prefect names it at random ("practical-emu")
    and the run renames itself only when it starts, so the run list, the form's pop-up and the upcoming
    runs showed English words until then. The name is the one the run will give itself (`run_name`)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    from config.flows import BY_NAME
    from flows.dated import run_name
    from models.clock import local_date

    flows: dict[Any, str] = {}  # flow id → flow name
    seen: set[Any] = set()
    waiting = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING]))
    with get_client(sync_client=True) as client:
        while True:
            time.sleep(every)
            try:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        deployment_id=FlowRunFilterDeploymentId(is_null_=False),
                        state=waiting,
                        id=FlowRunFilterId(not_any_=list(seen)) if seen else None,
                    ),
                    sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                    limit=200,
                )
                for run in runs:
                    seen.add(run.id)
                    if run.flow_id not in flows:
                        flows[run.flow_id] = client.read_flow(run.flow_id).name
                    flow_name = flows[run.flow_id]
                    if flow_name not in BY_NAME:
                        continue
                    params = run.parameters or {}
                    day = None
                    if BY_NAME[flow_name].dated and not params.get("today") and run.expected_start_time:
                        day = local_date(
                            run.expected_start_time, load_config(params.get("campaign_year")).campaign
                        )
                    name = run_name(flow_name, params, day)
                    if name != run.name:
                        client.update_flow_run(run.id, name=name)
            except Exception as exc:  # the server busy or stopping: the next round tries again
                log.debug("naming new runs: %s", exc)


STOP_WITHIN_SECONDS = 4.0
RUNNER_POLL_SECONDS = 1


def _stop_on_ctrl_c(signum: int, frame: object) -> None:
    """Ctrl-C stops like SIGTERM: Prefect's runner shuts down gracefully on SIGTERM within seconds, but on
    SIGINT its event loop waited ~45 s. Whatever still holds on after a few seconds is cut short; a run
    cut off in the middle is taken up again by the next one (its work is claimed and kept in the
    database)."""
    print("正在停止……", flush=True)
    watchdog = threading.Timer(STOP_WITHIN_SECONDS, os._exit, args=(0,))
    watchdog.daemon = True
    watchdog.start()
    os.kill(os.getpid(), signal.SIGTERM)
