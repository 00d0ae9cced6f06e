"""Long-lived websockets and their session (SW-44): closed with 4401 once it no longer stands.

A websocket gets its session read-only at the handshake; the connection may
then outlive it -- a log-out, a revocation, the idle or absolute deadline.
:func:`watched` runs the app with a watcher that re-checks the session every
``websocket_recheck`` seconds (one store ``load``) and, when the session is
gone, closes the socket with code ``4401`` and tells the app it disconnected.
Cookie sessions with no store to ask can only be checked against their
absolute deadline (their activity elsewhere is not visible here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from . import _record
from ._engine import Engine, logger
from ._session import Session
from ._steps import Load, Then, run_async
from .errors import ConfigurationError, InvalidCookie, StoreError
from .typing import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CLOSE_CODE", "check_recheck", "watched"]

#: The close code of a websocket whose session ended ("401", in the 4000s private range).
CLOSE_CODE = 4401


def check_recheck(value: object, owner: str = "SessionMiddleware") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(
            f"{owner} expects websocket_recheck to be a number of seconds > 0 or None, got {value!r}"
        )
    return float(value)


def _same(answer: Any) -> Any:
    return answer


async def _stands(engine: Engine, session: Session, store: Any, now: int) -> bool:
    """Whether ``session`` is still alive: its record (or revocation record) there and in time."""
    origin = session._origin
    assert origin is not None
    key = session._key if session._key is not None else (session._allow[0] if session._allow else None)
    if key is None or store is None:
        absolute = engine.expiry_of(origin.meta).absolute_timeout
        return absolute is None or now < origin.created_at + absolute
    stored = await run_async(Then(Load(key), _same), store)
    if stored is None:
        return False
    try:
        record = _record.unpack(stored[0], b"{}")
    except InvalidCookie:
        return False
    return engine.expiry_of(record.meta).is_valid(record.created_at, record.touched_at, now)


async def watched(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    engine: Engine,
    session: Session,
    store: Any,
    interval: float,
    clock: Callable[[], float],
) -> None:
    """Run the websocket ``app``, closing the socket with 4401 when its session ends."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): no watcher
        await app(scope, receive, send)
        return
    ended = asyncio.Event()
    disconnect: Message = {"type": "websocket.disconnect", "code": CLOSE_CODE}

    async def app_send(message: Message) -> None:
        if not ended.is_set():
            await send(message)

    async def app_receive() -> Message:
        if ended.is_set():
            return disconnect
        getting = asyncio.ensure_future(receive())
        waiting = asyncio.ensure_future(ended.wait())
        done, _ = await asyncio.wait({getting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if getting in done:
            waiting.cancel()
            return getting.result()
        getting.cancel()
        return disconnect

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                alive = await _stands(engine, session, store, int(clock()))
            except StoreError as exc:  # a store blip does not end connections; the next check decides
                logger.warning("sessionware could not re-check a websocket's session: %s", exc)
                continue
            if not alive:
                logger.debug("sessionware closed a websocket whose session ended")
                ended.set()
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await send({"type": "websocket.close", "code": CLOSE_CODE})
                return

    watcher = asyncio.ensure_future(watch())
    try:
        await app(scope, app_receive, app_send)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
