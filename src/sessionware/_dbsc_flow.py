"""DBSC's per-request work, sans-IO: the bound-cookie check, the offer, the endpoints' entry.

The adapters call :class:`Runtime` (one per engine, ``engine.dbsc``):

- :meth:`Runtime.endpoint` for a request to ``register_path`` or
  ``refresh_path`` (:mod:`._dbsc_endpoints`): an :class:`Answer`, or steps
  producing one. The app does not run.
- :meth:`Runtime.refusal` for any other request: None to let it through, or
  the :class:`Answer` refusing a bound session without a valid bound cookie
  (pure: the binding came with the session's record, so no store call).
- :meth:`Runtime.offer` after the session closed: steps producing the
  ``Secure-Session-Registration`` header when the response gave a logged-in
  session a new ID; :meth:`Runtime.ended`, the ``Set-Cookie`` expiring the
  bound cookie when a bound session ends or is renewed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from . import _record
from ._codec import IdCodec
from ._cookies import find_cookie
from ._dbsc_endpoints import Answer, Endpoints, Request, plain, record_key
from ._dbsc_sf import inner_list
from ._dbsc_state import FIELD, Binding, BoundCookies, load_binding
from ._engine import Engine
from ._loading import allow_key
from ._session import DROP, LOG_OUT, RENEW, Session
from ._steps import Steps
from ._verified import VerifiedCache
from .dbsc import DBSC
from .errors import InvalidCookie

__all__ = ["REGISTRATION_GRACE", "Answer", "Request", "Runtime"]

logger = logging.getLogger("sessionware")

#: Seconds after registration, until the first refresh, when a request without any bound
#: cookie is still served: the browser sent it before the registration's answer reached it.
REGISTRATION_GRACE = 2


def _issued_key(engine: Engine, value: str) -> str | None:
    """The record key of the session a ``Set-Cookie`` value carries: its server-side record,
    or a logged-in cookie session's revocation record (None if it has none)."""
    try:
        if engine.ids is not None:
            return IdCodec.store_key(engine.ids.decode(value)[0])
        assert engine.codec is not None
        return allow_key(_record.unpack(engine.codec.decode(value)[0]).meta)
    except InvalidCookie:
        return None


class Runtime:
    """DBSC for one engine: its options, its bound-cookie keys, its endpoints, its parsed bindings."""

    __slots__ = ("_bindings", "_target", "cookies", "endpoints", "options")

    def __init__(self, options: DBSC, engine: Engine) -> None:
        self.options = options
        self.cookies = BoundCookies(engine.keys, engine.cookie.name)
        self.endpoints = Endpoints(options, self.cookies)
        self._target = options.bound_cookie_name + "="
        # Field text -> the Binding it parses to: a bound session's every request costs no JSON.
        self._bindings: VerifiedCache[str, Binding] = VerifiedCache(1024)

    def split(self, fields: Mapping[str, str]) -> tuple[dict[str, str], Binding]:
        """A bound record's fields without the binding, and the binding (InvalidCookie if malformed)."""
        text = fields[FIELD]
        binding = self._bindings.get(text)
        if binding is None:
            if type(text) is not str:
                raise InvalidCookie("dbsc binding")
            binding = load_binding(text)
            self._bindings.put(text, binding)
        return {name: value for name, value in fields.items() if name != FIELD}, binding

    def is_endpoint(self, path: str) -> bool:
        return path == self.options.register_path or path == self.options.refresh_path

    def endpoint(
        self, engine: Engine, session: Session, request: Request, now: int
    ) -> Answer | Steps[Answer]:
        """The answer of ``register_path`` or ``refresh_path`` (the adapter checked it is one)."""
        return self.endpoints.answer(engine, session, request, now)

    # -- every other request ---------------------------------------------------------

    def refusal(
        self, session: Session, path: str, root: str, cookie_header: str | None, now: int
    ) -> Answer | None:
        """None if this request may go on; else the answer refusing it (and the reason is logged)."""
        binding = session._dbsc
        if binding is None:
            if not self.options.required or session._origin is None or not self.options.is_required(path):
                return None
            if session._origin.meta.get("uid") is None:
                return None
            reason = "a logged-in session that is not device-bound, on a path that requires it"
        else:
            value, count = (
                (None, 0)
                if cookie_header is None
                else find_cookie(cookie_header, self.options.bound_cookie_name, self._target)
            )
            if value is None:
                if (
                    count == 0
                    and binding.generation == 0
                    and now - binding.registered_at <= REGISTRATION_GRACE
                ):
                    # A request the browser sent before it had the bound cookie (the log-in's
                    # redirect, racing the registration): served. A wrong cookie never is.
                    return None
                reason = "no bound cookie" if count == 0 else "the bound cookie came more than once"
            else:
                found = self.cookies.check(value, binding, now)
                if found is None:
                    return None
                reason = found
        logger.warning("sessionware refused a request of a device-bound session (DBSC): %s", reason)
        refusal = self.options.refusal
        if isinstance(refusal, str):
            answer = plain(303, "See Other", [("Location", root + refusal)])
        else:
            answer = plain(refusal, "Unauthorized" if refusal == 401 else "Forbidden")
        return answer

    # -- after the session closed ----------------------------------------------------

    def offer(
        self,
        engine: Engine,
        session: Session,
        set_cookie: str | None,
        request_root: str,
        https: bool,
        now: int,
    ) -> Steps[str] | None:
        """Steps producing ``Secure-Session-Registration`` when this response gave a logged-in
        session a new ID (a log-in or a renewal), over https; else None."""
        if set_cookie is None or not https:
            return None
        if session._current_meta().get("uid") is None:
            return None
        value = set_cookie.partition(";")[0].partition("=")[2]
        if not value:
            return None  # an expired cookie: the session ended
        key = _issued_key(engine, value)
        if key is None or key == record_key(session):
            return None  # the same session re-sent (a refreshed Max-Age, a re-issue), bound or not
        return self._offered(key, request_root, now)

    def _offered(self, key: str, root: str, now: int) -> Steps[str]:
        challenge = yield from self.endpoints.new_challenge(key, now)
        options = self.options
        return inner_list(
            options.algorithms, [("path", root + options.register_path), ("challenge", challenge)]
        )

    def ended(self, session: Session) -> str | None:
        """The ``Set-Cookie`` expiring the bound cookie when a bound session is dropped,
        logged out or renewed on this response, else None."""
        if session._dbsc is None or session._action not in (DROP, LOG_OUT, RENEW):
            return None
        return self.endpoints.deleted
