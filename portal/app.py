"""The bureaus' pages: a unit's page, reached from the link in every message it gets, where it sees what
it owes, downloads its templates, uploads its files and reads what became of them; the same pages for
operators, behind their password, with uploads on a unit's behalf.

Starlette (installed with Prefect) and the Jinja2 the messages use; no JavaScript needed, a little to
show an upload's result without a reload. Stateless over the campaign's database and folders: any
number of `campaign portal` processes can serve behind a proxy (rate limits are per process).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hmac
import inspect
import logging
import re
import secrets
import threading
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from config import CampaignConfig, load_config
from config.errors import ConfigError, SubmissionError
from config.loader import available_years
from config.schema import Unit
from config.settings import get_settings
from models import links
from models.clock import local_today
from models.privacy import mask_personal_data
from portal import pages
from tasks.auth import operator_login
from tasks.catalog import SHEETS, Drop, sheet_intakes
from tasks.intake_requests import request_intake, sweep
from tasks.links import Holder, holder_of, secret_key
from tasks.uploads import Spool, TooLarge, receipt, store_upload

log = logging.getLogger("campaign.portal")
HERE = Path(__file__).resolve().parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)
MAX_NAME = 120  # characters of a sender's file name shown back


# ------------------------------------------------------------------ rate limits
class Window:
    """At most `limit` hits per `seconds` per key (a link, an address), in this process."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            hits = self.hits[key]
            while hits and now - hits[0] > self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self.hits) > 50_000:  # forget the idle ones
                for stale in [k for k, v in self.hits.items() if not v or now - v[-1] > self.seconds]:
                    del self.hits[stale]
            return True


class Limits:
    """One app's rate limits (a process's: `campaign portal` processes behind a proxy each keep theirs)."""

    def __init__(self) -> None:
        # Many bureaus may share one exit address (a government network): the address's limit is wide,
        # each link's (one page open polls its status every 3 s) narrower.
        self.per_address = Window(1200, 60)  # pages and polls from one address
        self.per_link = Window(120, 60)  # pages and polls of one link
        self.bad_links = Window(20, 60)  # links that open nothing, wrong passwords, from one address
        self.uploads = Window(30, 60)  # uploads per link


def _limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**context), status_code=status)


def too_many() -> HTMLResponse:
    return page("message.html", 429, title="请求过于频繁", text="请求过于频繁，请一分钟后再试。")


# ------------------------------------------------------------------ who is asking
class Viewer:
    """A unit's page as its link opens it, or as an operator opens it for the unit."""

    def __init__(self, cfg: CampaignConfig, unit: Unit, base: str, form_key: str, operator: bool) -> None:
        self.cfg, self.unit, self.base, self.operator = cfg, unit, base, operator
        self.form_token = links.form_token(secret_key(), form_key)


def _cfg(year: int) -> CampaignConfig:
    return load_config(year)


def _unit_viewer(request: Request) -> Viewer | Response:
    token = request.path_params["token"]
    holder: Holder | None = holder_of(token)
    if holder is None:
        if not _limits(request).bad_links.allow(_address(request)):
            return too_many()
        return page(
            "message.html",
            404,
            title="链接无效",
            text="此链接无效。请使用省就业服务局通知中的链接打开本单位页面。",
        )
    try:
        cfg = _cfg(holder.year)
        unit = cfg.unit(holder.unit_key)
    except (ConfigError, KeyError):  # a year (or unit) no longer in the configuration
        return page(
            "message.html",
            404,
            title="链接无效",
            text="此链接对应的年度工作已不在系统中，请联系省就业服务局。",
        )
    if holder.revoked:
        return page("revoked.html", 410, unit=unit, province=cfg.province, year=holder.year)
    return Viewer(cfg, unit, f"/u/{token}", holder.link_hash, operator=False)


def _operator(request: Request) -> str | None:
    """The operator's name if the request carries the operators' password (basic auth), else None."""
    given = request.headers.get("authorization", "")
    expected = "Basic " + base64.b64encode(operator_login().encode()).decode()
    return "省就业服务局" if hmac.compare_digest(given.encode(), expected.encode()) else None


def _operator_refused(request: Request) -> Response | None:
    """None for an operator; else the password challenge (wrong passwords limited per address)."""
    if _operator(request) is not None:
        return None
    if request.headers.get("authorization") and not _limits(request).bad_links.allow(_address(request)):
        return too_many()
    return _challenge()


def _challenge() -> Response:
    return Response(
        "需要省就业服务局经办人口令",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="campaign operators", charset="UTF-8"'},
        media_type="text/plain; charset=utf-8",
    )


def _operator_config(request: Request) -> CampaignConfig | Response:
    """The year an operator's page asks for (`?year=`), else the newest; a year without a campaign
    file gets a page saying so."""
    given = request.query_params.get("year", "")
    if given and given not in {str(y) for y in available_years(get_settings().config_dir)}:
        return page("message.html", 404, title="没有这一年度", text="没有这一年度的工作安排。")
    return load_config(int(given) if given else None)


def _operator_viewer(request: Request) -> Viewer | Response:
    if (refused := _operator_refused(request)) is not None:
        return refused
    cfg = _operator_config(request)
    if isinstance(cfg, Response):
        return cfg
    try:
        unit = cfg.unit(request.path_params["unit_key"])
    except KeyError:
        return page("message.html", 404, title="未知单位", text="没有这个单位。")
    return Viewer(cfg, unit, f"/operator/unit/{unit.key}", f"operator|{unit.key}", operator=True)


Handler = Callable[[Request, Viewer], Awaitable[Response]] | Callable[[Request, Viewer], Response]


def viewer_route(handler: Handler, *, operator: bool) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint for a unit's page (by its link) or an operator's view of it: who asks is settled
    first; a plain handler (reading the database) runs in the thread pool, an async one (an upload's
    stream) on the loop."""

    async def endpoint(request: Request) -> Response:
        if not _limits(request).per_address.allow(_address(request)):
            return too_many()
        found = await run_in_threadpool(_operator_viewer if operator else _unit_viewer, request)
        if isinstance(found, Response):
            return found
        if not _limits(request).per_link.allow(found.base):
            return too_many()
        if inspect.iscoroutinefunction(handler):
            return await handler(request, found)  # type: ignore[no-any-return]
        return await run_in_threadpool(handler, request, found)  # type: ignore[arg-type]

    return endpoint


# ------------------------------------------------------------------ pages
def _today(cfg: CampaignConfig) -> dt.date:
    return local_today(cfg.campaign)


def unit_page(request: Request, viewer: Viewer) -> Response:
    cfg, unit = viewer.cfg, viewer.unit
    today = _today(cfg)
    notice = request.query_params.get("notice", "")
    return page(
        "unit.html",
        viewer=viewer,
        unit=unit,
        year=cfg.campaign.year,
        today=today,
        owed=pages.owed(cfg, unit, today),
        sent=pages.sent(cfg, unit),
        counties=pages.counties(cfg, unit, today),
        sheets={name: intake.sheet.title for name, intake in sheet_intakes(cfg).items()},
        notice=notice[:200],
        closed=pages.closed_text(cfg, today),
        max_mb=get_settings().max_upload_mb,
        province=cfg.province,
    )


def unit_status(request: Request, viewer: Viewer) -> Response:
    """The unit's uploads and their results, for the page's script to show without a reload."""
    return JSONResponse([s.as_json() for s in pages.sent(viewer.cfg, viewer.unit)])


def template_download(request: Request, viewer: Viewer) -> Response:
    name = request.path_params["sheet"]
    if name not in SHEETS:
        return page("message.html", 404, title="没有这个模板", text="没有这个模板。")
    path = published_template(viewer.cfg, name)
    return FileResponse(path, filename=path.name, media_type=XLSX)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def published_template(cfg: CampaignConfig, name: str) -> Path:
    """The year's blank template of a record sheet, written once into the reports folder."""
    from tasks.templates import blank_template

    return blank_template(cfg, name)


def error_download(request: Request, viewer: Viewer) -> Response:
    path = pages.error_workbook(viewer.cfg, viewer.unit, int(request.path_params["upload_id"]))
    if path is None:
        return page("message.html", 404, title="没有这个文件", text="没有这个文件。")
    # Kept as "<hash>-<name>-错误清单.xlsx" (one per file received); downloaded without the hash.
    shown = re.sub(r"^[0-9a-f]{12}-", "", path.name)
    return FileResponse(path, filename=shown, media_type=XLSX)


# ------------------------------------------------------------------ uploads
class Form:
    """A multipart form read as it streams: small fields kept, the one file spooled (tasks/uploads)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename = ""
        self.spool: Spool | None = None
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._name = ""
        self._data = bytearray()
        self._is_file = False
        self.error: SubmissionError | None = None
        self.complete = False  # the closing boundary came: the body was not cut off

    def callbacks(self) -> dict[str, Any]:
        def on_part_begin() -> None:
            self._headers, self._data, self._is_file = {}, bytearray(), False

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self._field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self._value += data[start:end]

        def on_header_end() -> None:
            self._headers[self._field.decode("latin-1").lower()] = self._value
            self._field, self._value = b"", b""

        def on_headers_finished() -> None:
            _, options = parse_options_header(self._headers.get("content-disposition", b""))
            self._name = options.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in options:
                if self.spool is not None:  # one file per upload: a second part is not ours
                    raise ValueError("a form with two files")
                self._is_file = True
                self.filename = _shown_name(options[b"filename"].decode("utf-8", "replace"))
                self.spool = Spool(self.filename)

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if self._is_file:
                if self.spool is not None and self.error is None:
                    try:
                        self.spool.write(data[start:end])
                    except TooLarge as exc:
                        self.error = exc
            else:
                self._data += data[start:end]
                if len(self._data) > 4096:
                    raise ValueError("a form field that long is not ours")

        def on_part_end() -> None:
            if not self._is_file and self._name:
                self.fields[self._name] = self._data.decode("utf-8", "replace")

        def on_end() -> None:
            self.complete = True

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        }


def _shown_name(raw: str) -> str:
    """A file name as the sender's device gave it, for showing only (never a path): its last part,
    control characters and line breaks made spaces, cut to a readable length."""
    # Browsers send a name's line breaks and quotes percent-encoded (the HTML standard's multipart form).
    for coded, char in (("%0A", "\n"), ("%0D", "\r"), ("%22", '"')):
        raw = raw.replace(coded, char).replace(coded.lower(), char)
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if unicodedata.category(c).startswith("C") else c for c in name).strip()
    name = mask_personal_data(name) or "未命名文件"
    if len(name) > MAX_NAME:  # cut the stem, keep the extension the sender sees
        _, dot, extension = name.rpartition(".")
        keep = f"{dot}{extension}" if dot and len(extension) <= 8 else ""
        name = name[: MAX_NAME - len(keep) - 1] + "…" + keep
    return name


async def read_form(request: Request) -> Form:
    """Stream the request body through the multipart parser; the size limit is checked on the
    declared length first and on the bytes as they come, so an oversized body is never read whole."""
    form = Form()
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise SubmissionError("", "请通过页面上的上传按钮选择文件")
    limit = int(get_settings().max_upload_mb * (1 << 20)) + (64 << 10)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge("", f"文件超过 {get_settings().max_upload_mb:g} MB 的上限，请压缩或拆分后上传")
    parser = MultipartParser(options[b"boundary"], form.callbacks(), max_size=limit)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit or form.error is not None:
                raise form.error or TooLarge(
                    "", f"文件超过 {get_settings().max_upload_mb:g} MB 的上限，请压缩或拆分后上传"
                )
            parser.write(chunk)
        parser.finalize()
    except Exception:
        if form.spool is not None:
            form.spool.discard()
        raise
    if form.error is None and not form.complete:  # python-multipart's finalize() accepts a cut-off body
        form.error = SubmissionError(form.filename, "上传未完成（连接中断），文件未保存，请重新上传")
    if form.error is not None:
        if form.spool is not None:
            form.spool.discard()
        raise form.error
    return form


def _answer(request: Request, viewer: Viewer, status: int, notice: str, extra: dict[str, Any]) -> Response:
    """JSON for the page's script; a redirect back to the page (with the notice) for a plain form."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"notice": notice, **extra}, status_code=status)
    query = f"notice={quote(notice)}" + (f"&year={viewer.cfg.campaign.year}" if viewer.operator else "")
    return RedirectResponse(f"{viewer.base}?{query}#sent", status_code=303)


async def upload(request: Request, viewer: Viewer) -> Response:
    cfg, unit = viewer.cfg, viewer.unit
    if not _limits(request).uploads.allow(viewer.base):
        return too_many()
    if (closed := pages.closed_text(cfg, _today(cfg))) is not None:
        return _answer(request, viewer, 400, f"未受理：{closed}", {})
    origin = request.headers.get("origin")
    if origin and origin.split("//", 1)[-1] != request.headers.get("host", ""):
        return _answer(request, viewer, 403, "页面来源不符，请从本单位页面上传", {})
    try:
        form = await read_form(request)
    except SubmissionError as exc:
        return _answer(
            request, viewer, 413 if isinstance(exc, TooLarge) else 400, f"未受理：{exc.reason}", {}
        )
    except ValueError:
        return _answer(request, viewer, 400, "未受理：上传内容无法识别，请重新选择文件上传", {})
    except ClientDisconnect:  # the sender went away mid-body: its spool is gone, nobody to answer
        log.info("upload for %s cut off by the sender", unit.key)
        return _answer(request, viewer, 400, "未受理：上传未完成（连接中断）", {})
    spool = form.spool
    try:
        if not secrets.compare_digest(form.fields.get("csrf", ""), viewer.form_token):
            return _answer(request, viewer, 403, "页面已过期，请刷新后重新上传", {})
        drop = await run_in_threadpool(
            _drop, cfg, unit, form.fields.get("obligation", ""), form.fields.get("folder", "")
        )
        if drop is None:
            return _answer(request, viewer, 400, "未受理：本单位没有这项报送任务", {})
        if spool is None or not form.filename:
            return _answer(request, viewer, 400, "未受理：请选择要上传的文件", {})
        by = unit.name
        if viewer.operator:
            who = " ".join(form.fields.get("uploaded_by", "").split())[:40]
            if not who:
                return _answer(request, viewer, 400, "未受理：代为上传须填写上传人（经办人姓名）", {})
            by = f"省就业服务局 {who}（代{unit.name}上传）"
        now = dt.datetime.now(dt.UTC)
        flow = drop.flow
        received = await run_in_threadpool(
            store_upload,
            cfg,
            unit=unit,
            ob=drop.obligation,
            folder=drop.folder,
            sheet=drop.sheet is not None,
            original_name=form.filename,
            spool=spool,
            uploaded_by=by,
            address=_address(request),
            now=now,
        )
        spool = None
    except SubmissionError as exc:
        return _answer(request, viewer, 400, f"未受理：{exc.reason}", {})
    finally:
        if spool is not None:
            spool.discard()
    number = receipt(received.upload)
    log.info(
        "upload %s: unit %s, %s bytes, sha256 %s, from %s, by %s",
        number,
        unit.key,
        received.upload.size,
        received.upload.sha256[:16],
        _address(request),
        received.upload.uploaded_by,
    )
    if received.new:
        await run_in_threadpool(request_intake, flow, cfg.campaign.year, now)
        notice = f"已收到“{form.filename}”，回执号 {number}。处理结果将显示在下方，并通知本单位。"
    else:
        first = received.upload.received_at.astimezone(ZoneInfo(cfg.campaign.timezone))
        notice = f"此文件已于 {first:%Y-%m-%d %H:%M} 收到（回执号 {number}），未重复处理。"
    return _answer(request, viewer, 200, notice, {"receipt": number, "new": received.new})


def _drop(cfg: CampaignConfig, unit: Unit, obligation: str, folder: str) -> Drop | None:
    """The place the form's obligation and folder name, if the unit owes that obligation."""
    for owed in pages.owed(cfg, unit, _today(cfg)):
        if owed.key == obligation:
            return next((d for d in owed.drops if d.folder == folder), None)
    return None


# ------------------------------------------------------------------ operators
def operator_index(request: Request) -> Response:
    if not _limits(request).per_address.allow(_address(request)):
        return too_many()
    if (refused := _operator_refused(request)) is not None:
        return refused
    cfg = _operator_config(request)
    if isinstance(cfg, Response):
        return cfg
    return page("operator.html", cfg=cfg, units=[u for u in cfg.units if u.key != cfg.province.key])


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


# ------------------------------------------------------------------ the app
async def not_found(request: Request, exc: Exception) -> Response:
    return page(
        "message.html",
        404,
        title="页面不存在",
        text="没有这个页面。请使用省就业服务局通知中的链接打开本单位页面。",
    )


async def not_allowed(request: Request, exc: Exception) -> Response:
    return page("message.html", 405, title="无法这样打开", text="请从本单位页面上的按钮操作。")


async def server_error(request: Request, exc: Exception) -> Response:
    path = re.sub(r"/u/[^/]+", "/u/…", request.url.path)  # a link's token is never logged
    log.error("portal error on %s: %s", path, type(exc).__name__)
    return page(
        "message.html",
        500,
        title="系统暂时出错",
        text="系统暂时出错（不是贵单位的问题），请稍后再试；已上传并显示回执号的文件不受影响。",
    )


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'"
        )
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _routes(prefix: str, operator: bool) -> list[Route]:
    return [
        Route(prefix, viewer_route(unit_page, operator=operator)),
        Route(f"{prefix}/status", viewer_route(unit_status, operator=operator)),
        Route(f"{prefix}/upload", viewer_route(upload, operator=operator), methods=["POST"]),
        Route(f"{prefix}/template/{{sheet}}", viewer_route(template_download, operator=operator)),
        Route(f"{prefix}/errors/{{upload_id:int}}", viewer_route(error_download, operator=operator)),
    ]


SWEEP_SECONDS = 20.0


def _sweeper(stop: threading.Event) -> None:
    """Ask again for intakes no run took (an event lost, the flows' server down a while)."""
    while not stop.wait(SWEEP_SECONDS):
        try:
            sweep(dt.datetime.now(dt.UTC))
        except Exception as exc:  # the database away: the next round tries again
            log.warning("sweep: %s", type(exc).__name__)


def create_app(*, sweeping: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        if sweeping:
            threading.Thread(target=_sweeper, args=(stop,), name="intake sweep", daemon=True).start()
        try:
            yield
        finally:
            stop.set()

    app = Starlette(
        routes=[
            *_routes("/u/{token}", operator=False),
            *_routes("/operator/unit/{unit_key}", operator=True),
            Route("/operator", operator_index),
            Route("/healthz", health),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={404: not_found, 405: not_allowed, 500: server_error},
        lifespan=lifespan,
    )
    app.state.limits = Limits()
    return app
