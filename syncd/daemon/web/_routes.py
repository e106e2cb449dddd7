"""The review web page's routes: login, status, conflicts, dead letters, customers, activity.

Pages are rendered on the server (Jinja2, autoescaped); the only script is the activity page's
poller. Every page but ``/login`` and ``/static/*`` needs a session (see ``_sessions``); every
POST carries the session's CSRF token, and every POST but ``/logout`` needs the admin role.
Every action goes through a confirm page that lists the writes it will make, and lands in the
change log with who did it and why.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import secrets
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlencode

import jinja2
import structlog
from aiohttp import web

from syncd.errors import ConflictClosed, ConflictNotFound, HoldDecided, HoldNotFound, NotASide, RefusedValue
from syncd.runner import Runner
from syncd.settings import Settings
from syncd.store import AsyncStore, StateStore
from syncd.sync.operations import (
    decide_held_delete,
    drop_dead_letters,
    entity_view,
    held_deletes,
    replay,
    resolve_conflict,
    resolve_conflicts_bulk,
)

from ..dispatcher import Dispatcher
from ..throttle import FailedAuthThrottle
from ._activity import entry_view, recent_entries
from ._masking import mask_prose, mask_value
from ._review import (
    BULK_LIMIT,
    PAGE_SIZE,
    ConflictFilter,
    MappingEditError,
    conflict_views,
    dead_letter_groups,
    dead_letters_by_id,
    keep_parked,
    log_dead_letter_action,
    open_conflicts,
    plan_resolution,
    prefer_edit,
    write_atomically,
)
from ._sessions import READONLY, Session, Sessions, role_for

log = structlog.get_logger("syncd.daemon")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The session cookie (a random id; the session itself stays in the daemon).
COOKIE = "syncd_session"
#: The login form's CSRF cookie (double submit: the form carries the same random value).
LOGIN_COOKIE = "syncd_login"
#: First path segments the review page serves (``""`` is ``/``); the rest stays the admin API's.
SEGMENTS = frozenset(
    {
        "",
        "login",
        "logout",
        "conflicts",
        "deadletters",
        "deletes",
        "customers",
        "activity",
        "activity.json",
        "static",
    }
)
#: Where a request keeps its session (a typed key where aiohttp has them, 3.13 on).
SESSION: Any = web.RequestKey("syncd_session", Session) if hasattr(web, "RequestKey") else "syncd_session"
#: Paths served without a session.
OPEN = ("/login",)
STATIC = {"syncd.css": "text/css", "activity.js": "text/javascript"}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


def is_page(path: str) -> bool:
    """True for the paths the review page serves (its own auth applies there)."""
    return path.split("/", 2)[1] in SEGMENTS


class WebBackend(Protocol):
    """What the page needs from the daemon."""

    settings: Settings

    @property
    def store(self) -> AsyncStore: ...

    @property
    def runner(self) -> Runner: ...

    @property
    def dispatcher(self) -> Dispatcher: ...

    async def status(self) -> dict[str, Any]: ...

    async def reload(self) -> bool: ...


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _when(stamp: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` (UTC, as stored)."""
    if not stamp:
        return "—"
    return str(stamp).replace("T", " ")[:19]


def _typed(text: str) -> Any:
    """A typed-in value as ``syncd conflicts resolve --value`` reads it: JSON, else plain text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _int(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.strip().isdigit() else None


def _ids(form: Mapping[str, Any], name: str = "ids") -> list[int]:
    getall = getattr(form, "getall", None)
    raw = getall(name, []) if getall is not None else [form.get(name)]
    out: list[int] = []
    for item in raw:
        for part in str(item or "").replace(",", " ").split():
            if part.isdigit() and int(part) not in out:
                out.append(int(part))
    return out


class ReviewPage:
    """The page's handlers over a ``WebBackend`` (see the module docstring)."""

    def __init__(
        self,
        backend: WebBackend,
        *,
        body_timeout: float = 10.0,
        throttle: FailedAuthThrottle | None = None,
    ) -> None:
        self.backend = backend
        #: Wrong tokens per address, shared with the admin API (``syncd.daemon.throttle``).
        self.throttle = throttle or FailedAuthThrottle()
        daemon = backend.settings.daemon
        self.admin_token = daemon.admin_token
        self.readonly_token = daemon.readonly_token
        self.unmask_readonly = daemon.readonly_sees_personal_data
        self.sessions = Sessions(daemon.web_session_ttl)
        self.body_timeout = body_timeout
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("syncd.daemon.web", "templates"),
            autoescape=jinja2.select_autoescape(default=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["show"] = _show
        self.env.filters["when"] = _when
        self.env.filters["pv"] = self._personal
        self.env.filters["prose"] = self._prose

    # -- plumbing ------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.overview),
            web.get("/login", self.login_page),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/conflicts", self.conflicts),
            web.post("/conflicts/preview", self.conflicts_preview),
            web.post("/conflicts/resolve", self.conflicts_resolve),
            web.get("/conflicts/prefer", self.prefer_page),
            web.post("/conflicts/prefer", self.prefer),
            web.get("/deadletters", self.deadletters),
            web.post("/deadletters/preview", self.deadletters_preview),
            web.post("/deadletters/apply", self.deadletters_apply),
            web.get("/deletes", self.deletes),
            web.post("/deletes/preview", self.deletes_preview),
            web.post("/deletes/apply", self.deletes_apply),
            web.get("/customers", self.customers),
            web.get("/activity", self.activity),
            web.get("/activity.json", self.activity_json),
            web.get("/static/{name}", self.static),
        ]

    def middleware(self) -> Any:
        """Session, CSRF and role checks for the page's paths; other paths pass untouched."""

        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not is_page(request.path):
                return await handler(request)
            response = await self._checked(request, handler)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return check

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN or request.path.startswith("/static/"):
            return await handler(request)
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if request.method == "GET":
                where = request.path_qs if request.path != "/" else ""
                raise web.HTTPSeeOther("/login" + (f"?{urlencode({'next': where})}" if where else ""))
            return self._refusal(401, "no session: log in at /login first")
        request[SESSION] = session
        if request.method == "POST":
            try:
                async with asyncio.timeout(self.body_timeout):
                    form = await request.post()
            except TimeoutError:
                return self._refusal(408, f"the form did not arrive within {self.body_timeout:g}s")
            given = form.get("csrf")
            if not session.csrf_matches(given if isinstance(given, str) else None):
                log.warning("review page: POST refused, missing or wrong CSRF token", path=request.path)
                return self._refusal(403, "missing or wrong CSRF token: reload the page and try again")
            if not session.can_write and request.path != "/logout":
                return self._refusal(
                    403, "this is a read-only session: it can look at everything and change nothing"
                )
        return await handler(request)

    def _refusal(self, status: int, reason: str) -> web.Response:
        html = self.env.get_template("refused.html").render(status=status, reason=reason)
        return web.Response(status=status, text=html, content_type="text/html")

    def _masked(self, session: Session | None) -> bool:
        return session is not None and session.role == READONLY and not self.unmask_readonly

    @jinja2.pass_context
    def _personal(self, context: Any, value: Any) -> str:
        return _show(mask_value(value) if context.get("masked") else value)

    @jinja2.pass_context
    def _prose(self, context: Any, value: str | None) -> str:
        return (mask_prose(value) if context.get("masked") else value) or ""

    async def _render(
        self, request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        session: Session | None = request.get(SESSION)
        state = await self.backend.status()
        html = self.env.get_template(template).render(
            session=session,
            masked=self._masked(session),
            status_doc=state,
            strip=_strip(state),
            path=request.path,
            **context,
        )
        return web.Response(status=status, text=html, content_type="text/html")

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.backend.store.call(fn, *args)

    # -- login ---------------------------------------------------------------------------------

    async def login_page(
        self, request: web.Request, *, error: str | None = None, status: int = 200
    ) -> web.Response:
        nonce = secrets.token_urlsafe(24)
        insecure = request.scheme == "http" and not _loopback(request.url.host)
        forwarded_https = request.headers.get("X-Forwarded-Proto", "").lower() == "https"
        html = self.env.get_template("login.html").render(
            session=None,
            masked=False,
            strip=[],
            status_doc={},
            path="/login",
            nonce=nonce,
            error=error,
            next=_safe_next(request.query.get("next")),
            insecure=insecure and not forwarded_https,
            no_tokens=self.admin_token is None and self.readonly_token is None,
        )
        response = web.Response(status=status, text=html, content_type="text/html")
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=600, path="/login", secure=True, httponly=True, samesite="Strict"
        )
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(self.body_timeout):
                form = await request.post()
        except TimeoutError:
            return self._refusal(408, f"the form did not arrive within {self.body_timeout:g}s")
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("csrf")
        if not (nonce and isinstance(given, str) and hmac.compare_digest(nonce.encode(), given.encode())):
            return self._refusal(403, "missing or wrong CSRF token: open /login again and retry")
        wait = self.throttle.retry_after(request.remote)
        if wait is not None:
            log.warning("review page: login throttled", remote=request.remote)
            response = await self.login_page(
                request,
                error=f"Too many wrong tokens from your address: try again in {math.ceil(wait)} s.",
                status=429,
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        token = form.get("token")
        role = role_for(token if isinstance(token, str) else "", self.admin_token, self.readonly_token)
        if role is None:
            if token:
                self.throttle.failed(request.remote)
            log.warning("review page: login refused", remote=request.remote)
            return await self.login_page(request, error="That token opens nothing here.", status=401)
        self.throttle.succeeded(request.remote)
        name = form.get("name")
        session = self.sessions.create(role, name if isinstance(name, str) else "")
        log.info("review page: logged in", role=role, who=session.who, remote=request.remote)
        target = form.get("next")
        response = _redirect(_safe_next(target if isinstance(target, str) else None) or "/")
        response.set_cookie(
            COOKIE,
            session.id,
            max_age=int(self.sessions.ttl),
            path="/",
            secure=True,
            httponly=True,
            samesite="Strict",
        )
        response.del_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        self.sessions.drop(session.id)
        log.info("review page: logged out", who=session.who)
        response = _redirect("/login")
        response.del_cookie(COOKIE, path="/")
        return response

    # -- pages ---------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        return await self._render(request, "overview.html")

    async def conflicts(self, request: web.Request) -> web.Response:
        q = request.query
        wanted = ConflictFilter(
            sync=q.get("sync") or None,
            field=q.get("field") or None,
            app=q.get("app") or None,
            entity=_int(q.get("entity")),
        )
        page = max(_int(q.get("page")) or 1, 1)
        mappings = self.backend.runner.by_name

        def query(store: StateStore) -> tuple[list[dict[str, Any]], int, list[Any]]:
            everything = store.conflicts(status="open", limit=100_000)
            matching = [r for r in everything if wanted.matches(r)]
            shown = matching[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            return conflict_views(store, mappings, shown), len(matching), everything

        rows, total, everything = await self._call(query)
        choices = {
            "sync": sorted({r["sync"] for r in everything}),
            "field": sorted({r["field"] for r in everything}),
            "app": sorted({c["app"] for r in everything for c in r["candidates"]}),
        }
        bulk_apps = sorted({c["app"] for r in rows for c in r["candidates"]})
        prefer_sync: str | None = wanted.sync or (str(rows[0]["sync"]) if rows and wanted.field else None)
        prefer_mapping = mappings.get(prefer_sync) if prefer_sync is not None else None
        prefer_apps = list(prefer_mapping.apps) if prefer_mapping is not None else []
        return await self._render(
            request,
            "conflicts.html",
            rows=rows,
            total=total,
            page=page,
            pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            wanted=wanted,
            choices=choices,
            bulk_apps=bulk_apps,
            prefer_sync=prefer_sync,
            prefer_apps=prefer_apps,
            query=dict(q),
        )

    async def _selected(self, form: Mapping[str, Any]) -> tuple[list[int], str]:
        """The conflict ids a form names: ``scope=filter`` means every open conflict matching the
        form's filter (up to ``BULK_LIMIT``), otherwise the ``ids`` it lists."""
        if form.get("scope") == "filter":
            wanted = ConflictFilter(
                sync=form.get("sync") or None,
                field=form.get("field") or None,
                app=form.get("app") or None,
                entity=_int(form.get("entity")),
            )
            rows = await self._call(open_conflicts, wanted, BULK_LIMIT)
            return [r["id"] for r in rows], "filter"
        return _ids(form), "ids"

    @staticmethod
    def _choice(form: Mapping[str, Any]) -> tuple[str, str | None, Any, bool]:
        choice = str(form.get("choice") or "")
        allow_empty = form.get("allow_empty") == "on"
        if choice.startswith("take:"):
            return "take", choice[5:], None, allow_empty
        if choice == "park":
            return "park", None, None, allow_empty
        if choice == "edit":
            return "value", None, _typed(str(form.get("value") or "")), allow_empty
        raise web.HTTPBadRequest(text="choose take:APP, edit (with a value) or park")

    async def conflicts_preview(self, request: web.Request) -> web.Response:
        form = await request.post()
        ids, scope = await self._selected(form)
        action, take, value, allow_empty = self._choice(form)
        planned = await self._call(
            lambda s: plan_resolution(
                s, self.backend.runner.by_name, ids, action, take=take, value=value, allow_empty=allow_empty
            )
        )
        return await self._render(
            request,
            "conflicts_confirm.html",
            planned=planned,
            ok=[p.conflict["id"] for p in planned if p.error is None],
            action=action,
            take=take,
            value=value,
            allow_empty=allow_empty,
            choice=str(form.get("choice") or ""),
            raw_value=str(form.get("value") or ""),
            scope=scope,
        )

    async def conflicts_resolve(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        ids = _ids(form)
        action, take, value, allow_empty = self._choice(form)
        why = " ".join(str(form.get("why") or "").split())[:500]
        if not why:
            return self._refusal(400, "say why (it goes into the change log with your name)")
        runner = self.backend.runner
        done: list[int] = []
        failed: list[tuple[int, str]] = []
        if action == "take" and take is not None:
            done, failed = await self._take_all(ids, take, session.who, why)
        for conflict_id in ids if action != "take" else []:
            try:
                if action == "park":
                    await self._call(keep_parked, conflict_id, session.who, why)
                else:
                    await resolve_conflict(
                        runner.store,
                        runner.by_name,
                        conflict_id,
                        value=value,
                        allow_empty=allow_empty,
                        who=session.who,
                        why=why,
                    )
                done.append(conflict_id)
            except (ConflictNotFound, ConflictClosed, NotASide, RefusedValue) as exc:
                failed.append((conflict_id, str(exc)))
        if done and action != "park":
            self.backend.dispatcher.wake()
        log.info(
            "review page: conflicts settled",
            action=action,
            take=take,
            done=len(done),
            failed=len(failed),
            who=session.who,
        )
        return await self._render(
            request,
            "done.html",
            title="Conflicts",
            done=done,
            failed=failed,
            verb={
                "park": "kept parked",
                "take": f"settled with {take}'s value",
                "value": "settled with the value given",
            }[action],
            back="/conflicts",
        )

    async def _take_all(
        self, ids: list[int], take: str, who: str, why: str
    ) -> tuple[list[int], list[tuple[int, str]]]:
        """Settle ``ids`` with ``take``'s value (``resolve_conflicts_bulk``: each in its own
        transaction, logged with who and why); the ones it left, each with the reason."""
        if not ids:
            return [], []
        result = await resolve_conflicts_bulk(self.backend.store, take=take, who=who, why=why, ids=ids)
        done = [int(i) for i in result["ids"]]

        def reasons(store: StateStore) -> list[tuple[int, str]]:
            out = []
            for conflict_id in (i for i in ids if i not in done):
                row = store.conflict(conflict_id)
                if row is None:
                    out.append((conflict_id, f"no conflict {conflict_id}"))
                elif row["status"] != "open":
                    out.append((conflict_id, f"conflict {conflict_id} is already {row['status']}"))
                elif row["kind"] == "identity":
                    out.append(
                        (
                            conflict_id,
                            "an identity conflict is settled with the CLI (syncd conflicts resolve)",
                        )
                    )
                else:
                    sides = ", ".join(c["app"] for c in row["candidates"])
                    out.append(
                        (conflict_id, f"{take} is not a side of conflict {conflict_id} (its sides: {sides})")
                    )
            return out

        return done, await self._call(reasons)

    async def prefer_page(self, request: web.Request) -> web.Response:
        q = request.query
        sync, field_name, app = q.get("sync", ""), q.get("field", ""), q.get("app", "")
        session: Session = request[SESSION]
        mapping = self.backend.runner.by_name.get(sync)
        if mapping is None:
            return self._refusal(400, f"no mapping named {sync!r}")
        try:
            edit = await asyncio.to_thread(
                prefer_edit, mapping, field_name, app, who=session.who, known_apps=self.backend.settings.apps
            )
        except MappingEditError as exc:
            return self._refusal(400, str(exc))
        rows = await self._call(open_conflicts, ConflictFilter(sync=sync, field=field_name, app=app))
        return await self._render(
            request, "prefer.html", edit=edit, sync=sync, field=field_name, app=app, open_count=len(rows)
        )

    async def prefer(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        sync, field_name, app = (
            str(form.get("sync", "")),
            str(form.get("field", "")),
            str(form.get("app", "")),
        )
        why = " ".join(str(form.get("why") or "").split())[:500]
        if not why:
            return self._refusal(400, "say why (it goes into the mapping file and the change log)")
        mapping = self.backend.runner.by_name.get(sync)
        if mapping is None:
            return self._refusal(400, f"no mapping named {sync!r}")
        try:
            edit = await asyncio.to_thread(
                prefer_edit, mapping, field_name, app, who=session.who, known_apps=self.backend.settings.apps
            )
            await asyncio.to_thread(write_atomically, edit.path, edit.new, str(form.get("digest", "")))
        except MappingEditError as exc:
            return self._refusal(409, str(exc))
        if not await self.backend.reload():
            # The daemon refused the file (it checks more than this page can): put the old one back.
            await asyncio.to_thread(write_atomically, edit.path, edit.old, _digest(edit.new))
            return self._refusal(409, f"the daemon rejected the edited {edit.path}; the file was restored")
        log.info(
            "review page: conflict rule written",
            sync=sync,
            field=field_name,
            owner=app,
            file=str(edit.path),
            who=session.who,
            why=why,
        )
        done: list[int] = []
        failed: list[tuple[int, str]] = []
        if form.get("also_resolve") == "on":
            rows = await self._call(open_conflicts, ConflictFilter(sync=sync, field=field_name, app=app))
            done, failed = await self._take_all(
                [r["id"] for r in rows], app, session.who, f"{app} now preferred for {field_name}: {why}"
            )
            if done:
                self.backend.dispatcher.wake()
        return await self._render(
            request,
            "done.html",
            title="Conflict rule",
            done=done,
            failed=failed,
            verb=f"settled with {app}'s value",
            back="/conflicts",
            note=f"{edit.path}: {field_name} now prefers {app}; the mappings were reloaded.",
        )

    async def deadletters(self, request: web.Request) -> web.Response:
        groups, next_due = await self._call(lambda s: (dead_letter_groups(s), s.next_due()))
        return await self._render(request, "deadletters.html", groups=groups, next_due=next_due)

    async def deadletters_preview(self, request: web.Request) -> web.Response:
        form = await request.post()
        verb = str(form.get("choice") or "")
        if verb not in ("replay", "drop"):
            return self._refusal(400, "choose replay or drop")
        letters = await self._call(dead_letters_by_id, _ids(form))
        keys = await self._call(
            lambda s: {i: e.key for i, e in s.entities({x.entity_id for x in letters}).items()}
        )
        return await self._render(request, "deadletters_confirm.html", letters=letters, verb=verb, keys=keys)

    async def deadletters_apply(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        verb = str(form.get("choice") or "")
        why = " ".join(str(form.get("why") or "").split())[:500]
        if verb not in ("replay", "drop"):
            return self._refusal(400, "choose replay or drop")
        if not why:
            return self._refusal(400, "say why (it goes into the change log with your name)")
        ids = _ids(form)

        def apply(store: StateStore) -> list[int]:
            letters = dead_letters_by_id(store, ids)
            done = {i.id for i in letters}
            if verb == "replay":
                replay(store, done)
            else:
                drop_dead_letters(store, done)
            log_dead_letter_action(
                store, letters, "replayed" if verb == "replay" else "dropped", session.who, why
            )
            return sorted(done)

        done = await self._call(apply)
        failed = [(i, "not a dead letter (any more)") for i in ids if i not in done]
        if done and verb == "replay":
            # Plan the replayed records now rather than at the next poll, and send the writes.
            await self.backend.runner.plan()
            self.backend.dispatcher.wake()
        log.info(
            "review page: dead letters " + ("replayed" if verb == "replay" else "dropped"),
            count=len(done),
            who=session.who,
        )
        return await self._render(
            request,
            "done.html",
            title="Dead letters",
            done=done,
            failed=failed,
            verb="replayed" if verb == "replay" else "dropped",
            back="/deadletters",
        )

    # -- deletes held by the mass-delete guard ---------------------------------------------------

    async def deletes(self, request: web.Request) -> web.Response:
        rows = await self._call(held_deletes)
        show_all = request.query.get("all") == "1"
        holds = [r for r in rows if show_all or r["status"] in ("held", "approved")]
        return await self._render(request, "deletes.html", holds=holds, show_all=show_all)

    async def deletes_preview(self, request: web.Request) -> web.Response:
        form = await request.post()
        verb = str(form.get("choice") or "")
        if verb not in ("approve", "reject"):
            return self._refusal(400, "choose approve or reject")
        [hold_id, *_] = _ids(form, "id") or [0]
        hold = await self._call(lambda s: s.held_delete(hold_id))
        if hold is None:
            return self._refusal(404, f"no held deletes #{hold_id}")
        return await self._render(request, "deletes_confirm.html", hold=hold, verb=verb)

    async def deletes_apply(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        verb = str(form.get("choice") or "")
        why = " ".join(str(form.get("why") or "").split())[:500]
        if verb not in ("approve", "reject"):
            return self._refusal(400, "choose approve or reject")
        if not why:
            return self._refusal(400, "say why (it goes into the change log with your name)")
        [hold_id, *_] = _ids(form, "id") or [0]
        try:
            hold = await self._call(decide_held_delete, hold_id, verb == "approve", session.who, why)
        except HoldNotFound as exc:
            return self._refusal(404, str(exc))
        except HoldDecided as exc:  # decided meanwhile, by another admin or the CLI
            return self._refusal(409, str(exc))
        log.info("review page: held deletes " + verb + "d", hold=hold_id, app=hold["app"], who=session.who)
        note = (
            f"The next complete listing of {hold['app']} deletes, in the other apps, those of the "
            f"{hold['missing']} records that are still missing (once)."
            if verb == "approve"
            else f"The {hold['missing']} records are kept; their absence from {hold['app']} deletes "
            "nothing and raises no more alerts."
        )
        return await self._render(
            request,
            "done.html",
            title="Held deletes",
            done=[hold_id],
            failed=[],
            verb=verb + "d",
            note=note,
            back="/deletes",
        )

    async def customers(self, request: web.Request) -> web.Response:
        email = request.query.get("email", "").strip()
        view = await self._call(entity_view, email, 50) if email else None
        grid: list[dict[str, Any]] = []
        apps: list[str] = []
        history: list[dict[str, Any]] = []
        session: Session = request[SESSION]
        if view is not None:
            mapping = self.backend.runner.by_name.get(view["sync"])
            links = {link["app"]: link for link in view["links"]}
            apps = list(mapping.apps) if mapping is not None else sorted(links)
            fields = list(mapping.fields) if mapping is not None else sorted(view["values"])
            for name in fields:
                canonical = view["values"].get(name)
                grid.append(
                    {
                        "field": name,
                        "value": canonical,
                        "provenance": view["provenance"].get(name) or {},
                        "apps": {
                            app: {
                                "value": links[app]["baseline"].get(name) if app in links else None,
                                "linked": app in links,
                                "differs": app in links and links[app]["baseline"].get(name) != canonical,
                            }
                            for app in apps
                        },
                    }
                )
            connectors = self.backend.runner.connectors
            for link in view["links"]:
                link["url"] = _record_url(connectors.get(link["app"]), link["remote_id"])
            history = [entry_view(c, view["key"], masked=self._masked(session)) for c in view["changes"]]
        return await self._render(
            request, "customer.html", email=email, view=view, grid=grid, apps=apps, history=history
        )

    async def activity(self, request: web.Request) -> web.Response:
        mappings = self.backend.runner.mappings
        return await self._render(
            request,
            "activity.html",
            apps=sorted({a for m in mappings for a in m.apps}),
            fields=sorted({f for m in mappings for f in m.fields}),
        )

    async def activity_json(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        after = _int(request.query.get("after"))
        app, field_name = request.query.get("app") or None, request.query.get("field") or None
        text = (request.query.get("q") or "").strip().lower()
        found, last = await self._call(recent_entries, after)
        masked = self._masked(session)
        entries = []
        for entry, key in found:
            if (app and entry["app"] != app) or (field_name and entry["field"] != field_name):
                continue
            view = entry_view(entry, key, masked=masked)
            if text and text not in view["line"].lower():
                continue
            entries.append(view)
        return web.json_response({"entries": entries, "after": last})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = resources.files("syncd.daemon.web").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC[name], headers={"Cache-Control": "max-age=300"})


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _digest(text: str) -> str:
    from ._review import digest

    return digest(text)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (``/...``, not ``//host``) is followed after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


def _record_url(connector: Any, remote_id: str) -> str | None:
    """The app's own page for a record, where its connector can tell (``record_url``)."""
    make = getattr(connector, "record_url", None)
    if make is None:
        return None
    try:
        url = make(remote_id)
    except Exception:
        return None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _strip(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One chip per app for the status strip, from ``/api/status`` (keys it lacks are left out)."""
    chips = []
    for name, app in sorted((status.get("apps") or {}).items()):
        state = app.get("state") or ("paused" if app.get("paused") else "ok")
        facts = []
        for key, label in (
            ("lag_seconds", "lag"),
            ("webhook_age_seconds", "last webhook"),
            ("outbox_depth", "outbox"),
            ("dead_letters", "dead letters"),
            ("budget_used", "API budget"),
        ):
            value = app.get(key)
            if value is None:
                continue
            if key.endswith("_seconds") and isinstance(value, int | float):
                shown = _duration(float(value)) + (" ago" if key == "webhook_age_seconds" else "")
            elif key == "budget_used" and isinstance(value, float) and 0 <= value <= 1:
                shown = f"{value:.0%}"
            else:
                shown = _show(value)
            facts.append(f"{label} {shown}")
        chips.append({"app": name, "state": state, "reason": app.get("state_reason"), "facts": facts})
    return chips
