"""The console's web app (Starlette): server-rendered pages, forms, and live updates (SSE).

Pages are plain HTML that work without JavaScript (forms post, the server redirects);
``static/console.js`` adds live updates: it follows ``/events`` (server-sent events whose
data are the same HTML fragments the page is made of) and swaps them in by id.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from lanesight.console.hub import ActionError, ConsoleHub, Evidence, LaneView, rank
from lanesight.console.sessions import Session, SessionStore, SignInError
from lanesight.console.wording import (
    DISPOSITION_LABELS,
    DISPOSITIONS,
    LANE_STATUSES,
    SEVERITIES,
    STATES,
    is_open,
    lane_name,
    money,
    needs_attendant,
    title,
)
from lanesight.v1 import alerts_pb2
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "lanesight_session"
SIGNIN_COOKIE = "lanesight_signin"
#: Idle SSE streams send a comment this often so proxies keep them open.
PING_S = 15.0

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _ms(stamp: Any) -> int:
    return int(stamp.seconds) * 1000 + int(stamp.nanos) // 1_000_000


def _lane_time(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return time.strftime("%H:%M:%S", time.gmtime(stamp.seconds))


class SecurityHeaders(BaseHTTPMiddleware):
    """No caching of pages, a strict CSP, no framing, no referrer."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


class ConsoleWeb:
    """Routes of the console; holds the hub and the sessions."""

    def __init__(self, hub: ConsoleHub, sessions: SessionStore, secure_cookies: bool) -> None:
        self.hub = hub
        self.sessions = sessions
        self.secure = secure_cookies
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.globals.update(
            title=title,
            lane_name=lane_name,
            money=money,
            first_seen=hub.first_seen,
            SEVERITIES=SEVERITIES,
            STATES=STATES,
            LANE_STATUSES=LANE_STATUSES,
            DISPOSITIONS=DISPOSITIONS,
            DISPOSITION_LABELS=DISPOSITION_LABELS,
            needs_attendant=needs_attendant,
            is_open=is_open,
            lane_time=_lane_time,
            ms=_ms,
            rank=rank,
            alerts_pb2=alerts_pb2,
        )

    def app(self) -> Starlette:
        routes = [
            Route("/healthz", self.healthz),
            Route("/signin", self.signin_form, methods=["GET"]),
            Route("/signin", self.signin, methods=["POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/", self.store_view),
            Route("/alerts/{alert_id}", self.alert_detail),
            Route("/alerts/{alert_id}/evidence/{index:int}", self.evidence_frame),
            Route("/alerts/{alert_id}/acknowledge", self.acknowledge, methods=["POST"]),
            Route("/alerts/{alert_id}/resolve", self.resolve, methods=["POST"]),
            Route("/lanes/{store_id}/{lane_id}/{action}", self.lane_action, methods=["POST"]),
            Route("/events", self.events),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])

    # --- helpers ----------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def _to_signin(self) -> Response:
        return RedirectResponse("/signin", status_code=303)

    async def _form(self, request: Request, session: Session) -> dict[str, str] | Response:
        """The posted form once its CSRF token is the session's; otherwise a 403 page."""
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        if not session.csrf_ok(fields.get("csrf_token", "")):
            log.warning("console: refused a form without a valid CSRF token from %s",
                        session.identity.name)
            return self._page(
                request, "error.html", 403, session=session,
                message="This form has expired. Go back, reload the page and try again.",
            )
        return fields

    def _alert_for(self, session: Session, alert_id: str) -> alerts_pb2.Alert | None:
        alert = self.hub.alerts.get(alert_id)
        if alert is None or not session.identity.may_access_store(alert.store_id):
            return None
        return alert

    def _tile_html(self, lane: LaneView) -> str:
        return self.templates.get_template("_tile.html").render(
            lane=lane, alerts=self.hub.lane_alerts(lane.key)
        )

    def _row_html(self, alert: alerts_pb2.Alert) -> str:
        return self.templates.get_template("_alert_row.html").render(alert=alert)

    # --- routes -----------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "serving", "fusion_connected": self.hub.fusion_connected},
            headers={"Cache-Control": "no-store"},
        )

    async def signin_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = self._page(request, "signin.html", status, nonce=nonce, error=error)
        response.set_cookie(
            SIGNIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict",
            secure=self.secure, path="/signin",
        )
        return response

    async def signin(self, request: Request) -> Response:
        form = await request.form()
        nonce = str(form.get("nonce", ""))
        cookie = request.cookies.get(SIGNIN_COOKIE, "")
        if not nonce or not cookie or not hmac.compare_digest(nonce, cookie):
            return await self.signin_form(
                request, "The sign-in page expired; please try again.", 403
            )
        try:
            session_id, _ = self.sessions.sign_in(str(form.get("token", "")))
        except SignInError as exc:
            return await self.signin_form(request, str(exc), 401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session_id, max_age=int(self.sessions.max_age_s), httponly=True,
            samesite="strict", secure=self.secure, path="/",
        )
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    async def signout(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_signin()
        form = await self._form(request, session)
        if isinstance(form, Response):
            return form
        self.sessions.sign_out(request.cookies.get(SESSION_COOKIE))
        response = self._to_signin()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def store_view(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_signin()
        stores = session.stores(self.hub.stores)
        return self._page(
            request,
            "index.html",
            session=session,
            stores=stores,
            lanes=self.hub.lanes_of(stores),
            alerts=self.hub.open_alerts(stores),
            lane_alerts=self.hub.lane_alerts,
            cursor=self.hub.cursor(),
            wall=request.query_params.get("display") == "wall",
            fusion_connected=self.hub.fusion_connected,
            resolved=await self.hub.recently_resolved(stores),
        )

    async def alert_detail(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_signin()
        alert = self._alert_for(session, request.path_params["alert_id"])
        if alert is None:
            return self._page(
                request, "error.html", 404, session=session,
                message="That alert is not in this console's list (it may have been closed).",
            )
        evidence = await self.hub.evidence(alert, session.token)
        return await self._alert_page(request, session, alert, evidence=evidence)

    async def evidence_frame(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return Response("sign in first", status_code=401)
        alert = self._alert_for(session, request.path_params["alert_id"])
        if alert is None:
            return Response("not found", status_code=404)
        evidence = await self.hub.evidence(alert, session.token)
        index = request.path_params["index"]
        if not 0 <= index < len(evidence.frames):
            return Response("not found", status_code=404)
        return Response(
            evidence.frames[index].jpeg,
            media_type="image/jpeg",
            headers={"Cache-Control": "private, no-store"},
        )

    async def _alert_page(
        self, request: Request, session: Session, alert: alerts_pb2.Alert,
        error: str = "", status: int = 200, evidence: Evidence | None = None,
    ) -> Response:
        if evidence is None:
            evidence = await self.hub.evidence(alert, session.token)
        key = (alert.store_id, alert.lane_id)
        lane = self.hub.lanes.get(key)
        same_transaction = (
            lane is not None and bool(alert.transaction_id)
            and lane.transaction_id == alert.transaction_id
        )
        commands = [
            command for command in self.hub.commands.get(key, ())
            if command.alert_id == alert.alert_id or not command.alert_id
        ]
        return self._page(
            request, "alert.html", status,
            session=session, alert=alert, lane=lane, same_transaction=same_transaction,
            commands=commands, error=error, evidence=evidence,
            done=request.query_params.get("done", ""),
        )

    async def _alert_action(self, request: Request):
        """(session, form, alert) for a form posted on an alert, or the response to send
        instead (sign in, a refused form, an alert not in the list)."""
        session = self._session(request)
        if session is None:
            return self._to_signin()
        form = await self._form(request, session)
        if isinstance(form, Response):
            return form
        alert = self._alert_for(session, request.path_params["alert_id"])
        if alert is None:
            return self._page(request, "error.html", 404, session=session,
                              message="That alert is not in this console's list.")
        return session, form, alert

    async def acknowledge(self, request: Request) -> Response:
        found = await self._alert_action(request)
        if isinstance(found, Response):
            return found
        session, _, alert = found
        try:
            await self.hub.acknowledge(alert.alert_id, session.identity.name, session.token)
        except ActionError as exc:
            return await self._alert_page(request, session, alert, str(exc), exc.status)
        return RedirectResponse(f"/alerts/{alert.alert_id}?done=acknowledged", status_code=303)

    async def resolve(self, request: Request) -> Response:
        found = await self._alert_action(request)
        if isinstance(found, Response):
            return found
        session, form, alert = found
        choice = DISPOSITIONS.get(form.get("disposition", ""))
        if choice is None:
            return await self._alert_page(
                request, session, alert, "Pick how it turned out (disposition).", 400
            )
        note = form.get("note", "")[:500]
        recovered = None
        if choice[0] in (alerts_pb2.DISPOSITION_RECOVERED, alerts_pb2.DISPOSITION_SHOPPER_CORRECTED):
            if alert.amount_at_risk.currency_code:
                recovered = alert.amount_at_risk
        try:
            await self.hub.resolve(
                alert.alert_id, choice[0], session.identity.name, session.token, note, recovered
            )
        except ActionError as exc:
            return await self._alert_page(request, session, alert, str(exc), exc.status)
        return RedirectResponse(f"/alerts/{alert.alert_id}?done=resolved", status_code=303)

    async def lane_action(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return self._to_signin()
        form = await self._form(request, session)
        if isinstance(form, Response):
            return form
        store_id = request.path_params["store_id"]
        lane_id = request.path_params["lane_id"]
        action = request.path_params["action"]
        lane = self.hub.lanes.get((store_id, lane_id))
        if (
            action not in ("pause", "resume")
            or lane is None
            or not session.identity.may_access_store(store_id)
        ):
            return self._page(request, "error.html", 404, session=session,
                              message="That lane is not in this console's list.")
        # A pause issued from an alert's page names the alert (the lane keeps evidence).
        alert_id = form.get("alert_id", "")
        alert = self._alert_for(session, alert_id) if alert_id else None
        if alert is not None and (alert.store_id, alert.lane_id) != (store_id, lane_id):
            alert = None
        back = form.get("back", "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        try:
            await self.hub.lane_command(
                (store_id, lane_id), action, session.identity.name, session.token,
                alert_id=alert.alert_id if alert is not None else "",
            )
        except ActionError as exc:
            return self._page(request, "error.html", exc.status, session=session,
                              message=str(exc))
        return RedirectResponse(back, status_code=303)

    async def events(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return Response("sign in first", status_code=401)
        stores = session.stores(self.hub.stores)
        cursor = request.headers.get("last-event-id") or request.query_params.get("since", "")
        return EventSourceResponse(
            self._stream(request, session, stores, cursor), ping=PING_S, send_timeout=30
        )

    async def _stream(
        self, request: Request, session: Session, stores: list[str], cursor: str
    ) -> AsyncIterator[ServerSentEvent]:
        hub = self.hub
        seq = hub.parse_cursor(cursor) if cursor else None
        if seq is None:
            seq = hub.seq
            yield ServerSentEvent(json.dumps(self._snapshot(stores)), event="snapshot",
                                  id=hub.cursor(), retry=1000)
        while not hub.closing.is_set():
            if self.sessions.get(request.cookies.get(SESSION_COOKIE)) is not session:
                yield ServerSentEvent("{}", event="signedout")
                return
            upto = hub.seq
            for change in hub.changes_after(seq, stores, upto):
                yield ServerSentEvent(
                    json.dumps(self._change(change.kind, change.key)),
                    event="change",
                    id=f"{hub.epoch}-{change.seq}",
                )
            # Changes of other stores move the cursor too, unseen.
            seq = upto
            await hub.wait_for_change(seq, PING_S)
        await asyncio.sleep(0)

    def _snapshot(self, stores: list[str]) -> dict[str, Any]:
        lanes = self.hub.lanes_of(stores)
        alerts = self.hub.open_alerts(stores)
        return {
            "tiles": "".join(self._tile_html(lane) for lane in lanes),
            "queue": "".join(self._row_html(alert) for alert in alerts),
            "connected": self.hub.fusion_connected,
        }

    def _change(self, kind: str, key: str) -> dict[str, Any]:
        if kind == "status":
            return {"kind": "status", "connected": key == "up"}
        if kind == "lane":
            store_id, _, lane_id = key.partition("/")
            lane = self.hub.lanes[(store_id, lane_id)]
            return {"kind": "lane", "id": lane.dom_id, "html": self._tile_html(lane)}
        alert = self.hub.alerts.get(key)
        if alert is None or not is_open(alert):
            return {"kind": "alert", "id": f"alert-{key}", "remove": True}
        return {
            "kind": "alert",
            "id": f"alert-{key}",
            "html": self._row_html(alert),
            "attention": needs_attendant(alert),
        }
