"""What the adapters do around a session besides loading and saving it, shared by all three.

Lifecycle events and telemetry, remember-me, ``Clear-Site-Data`` and the
anomaly hook. An adapter asks only when ``engine.extras`` is True, so a
middleware without any of them pays one attribute check per request.
"""

from __future__ import annotations

from typing import Any

from . import _anomaly, _remember
from ._engine import Engine
from ._session import LOG_OUT, RENEW, Session
from ._steps import Pending, Steps
from .events import SessionEvent, emit_async, emit_sync

__all__ = ["aafter_open", "after_close", "after_open", "events_of", "publish_async", "publish_sync"]

CLEAR_SITE_DATA = ("Clear-Site-Data", '"cookies", "storage"')
_INTENTS = ("log_in", "log_out", "renew")  # what happens only if the session was saved


def after_open(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Pending[None] | None:
    """After an HTTP request's session is opened (and its scope set): the anomaly hook,
    then remember-me; the steps to run, or None."""
    if engine.anomaly is not None:
        dropped = _anomaly.check(engine, session)
        if dropped is not None:
            return dropped  # logged out: remember-me has nothing to do for this request
    return _remembered(engine, session, cookie_header, now, https)


async def aafter_open(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Pending[None] | None:
    """:func:`after_open` for ASGI: an async anomaly hook is awaited."""
    if engine.anomaly is not None:
        dropped = await _anomaly.acheck(engine, session)
        if dropped is not None:
            return dropped
    return _remembered(engine, session, cookie_header, now, https)


def _remembered(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Pending[None] | None:
    return None if engine.remember is None else _remember.on_open(engine, session, cookie_header, now, https)


def after_close(
    engine: Engine, session: Session, cookie_header: str | None, now: int, https: bool
) -> Pending[list[tuple[str, str]]] | list[tuple[str, str]]:
    """After the session is saved: the extra response headers (remember-me's ``Set-Cookie``,
    ``Clear-Site-Data``), or the steps that make them."""
    headers: list[tuple[str, str]] = []
    if session._action == LOG_OUT and (
        engine.clear_site_data if session._clear_site_data is None else session._clear_site_data
    ):
        headers.append(CLEAR_SITE_DATA)
    if engine.remember is None:
        return headers
    steps = _remember.on_close(engine, session, cookie_header, now, https)
    return headers if steps is None else _with_cookies(steps, headers)


def _with_cookies(steps: Steps[list[str]], headers: list[tuple[str, str]]) -> Steps[list[tuple[str, str]]]:
    cookies = yield from steps
    return [*headers, *(("Set-Cookie", cookie) for cookie in cookies)]


def events_of(
    engine: Engine,
    session: Session,
    closed: str | None,
    path: str | None,
    now: int,
    *,
    saved: bool = True,
    loaded: bool = True,
) -> list[SessionEvent]:
    """The request's events, from what the session noted; telemetry's per-request metrics.

    ``saved`` is False when the session could not be saved: a log-in, log-out
    or renewal that did not happen is not reported. ``loaded`` is False when
    the session's load was counted already (Django's engine counts it as it
    loads, and the notes of each save apart).
    """
    telemetry = engine.telemetry
    if telemetry is not None:
        _measure(telemetry, session, closed, loaded)
    notes = session._notes
    if not notes:
        return []
    session._notes = None
    batch = []
    for kind, user_id, reason, extra in notes:
        if not saved and kind in _INTENTS:
            continue
        key = session._new_key if kind != "log_out" else _key_of(session)
        batch.append(
            SessionEvent(
                kind,  # type: ignore[arg-type]
                now,
                user_id,
                None if key is None else engine.handle(key),
                reason,
                path,
                extra.get("cookie"),
                extra.get("count", 1),
            )
        )
    return batch


def _key_of(session: Session) -> str | None:
    if session._key is not None:
        return session._key
    return None if session._allow is None else session._allow[0]


def _measure(telemetry: Any, session: Session, closed: str | None, loaded: bool = True) -> None:
    origin = session._origin
    if loaded:
        telemetry.loaded("loaded" if origin is not None else ("refused" if session._had_cookie else "none"))
    if closed is not None and "; Max-Age=0;" not in closed:
        telemetry.record("sessionware.cookie.size", len(closed))
        if origin is None or session._action in (RENEW, LOG_OUT):
            telemetry.add("sessionware.sessions.created")


def _count(engine: Engine, batch: list[SessionEvent]) -> None:
    telemetry = engine.telemetry
    if telemetry is None:
        return
    for event in batch:
        kind = event.kind
        if kind == "log_in":
            telemetry.add("sessionware.log_ins", 1, {"how": event.reason or "password"})
        elif kind == "log_out":
            telemetry.add("sessionware.log_outs")
        elif kind == "revoke":
            telemetry.add("sessionware.revocations", event.count, {"scope": event.reason or "one"})
        elif kind == "remember_theft":
            telemetry.add("sessionware.revocations", event.count, {"scope": "all"})
        elif kind == "invalid_cookie":
            telemetry.add("sessionware.invalid_cookies", 1, {"reason": event.reason or "malformed"})
        elif kind == "csrf_failure":
            telemetry.add("sessionware.csrf_failures")


def publish_sync(engine: Engine, batch: list[SessionEvent]) -> None:
    """Count ``batch`` and call the app's hooks (WSGI, Flask, scripts)."""
    if batch:
        _count(engine, batch)
        emit_sync(engine.events, batch)


async def publish_async(engine: Engine, batch: list[SessionEvent]) -> None:
    """Count ``batch`` and call the app's hooks (ASGI)."""
    if batch:
        _count(engine, batch)
        await emit_async(engine.events, batch)
