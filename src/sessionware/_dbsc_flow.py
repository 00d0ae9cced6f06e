"""DBSC's request handling, sans-IO: the two endpoints, the bound-cookie check, the offer.

The adapters call :class:`Runtime` (one per engine, ``engine.dbsc``):

- :meth:`Runtime.endpoint` for a request to ``register_path`` or
  ``refresh_path``: an :class:`Answer`, or steps producing one (store calls
  the adapter drives, as for the session itself). The app does not run.
- :meth:`Runtime.refusal` for any other request: None to let it through, or
  the :class:`Answer` refusing a bound session without a valid bound cookie
  (pure: the binding came with the session's record, so no store call).
- :meth:`Runtime.offer` after the session closed: steps producing the
  ``Secure-Session-Registration`` header when the response gave a logged-in
  session a new ID.

Status codes follow how Chromium reads them: a refresh answered 403 is
retried with the challenge sent along, any other 4xx ends the browser's DBSC
session, a 5xx (the store failing: the adapter's 503) keeps it. So 403 is
only for "sign this fresh challenge" (no proof yet, or one over an unknown,
used or expired challenge); a proof that can never be right (malformed,
``alg: none``, wrong ``typ``, bad signature) is a 400, an unknown or ended
session a 401, a second registration a 409. Nothing is written for bad input.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from . import _record
from ._codec import IdCodec
from ._cookies import find_cookie
from ._dbsc_jwt import ProofRefused, parse_proof, public_key, verify
from ._dbsc_sf import inner_list, parse_item, string_item
from ._dbsc_state import (
    FIELD,
    Binding,
    BoundCookies,
    challenge_age,
    challenge_key,
    challenge_record,
    dump_binding,
    load_binding,
    new_challenge,
    new_identifier,
)
from ._engine import Engine
from ._loading import allow_key
from ._registry import _current_key
from ._session import DROP, LOG_OUT, RENEW, Session
from ._steps import Create, Delete, Steps, Update
from ._verified import VerifiedCache
from .dbsc import DBSC
from .errors import InvalidCookie
from .typing import Change

__all__ = ["REGISTRATION_GRACE", "Answer", "Request", "Runtime"]

logger = logging.getLogger("sessionware")

_ATTRIBUTES = "Path=/; Secure; HttpOnly; SameSite=Lax"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
#: Seconds after registration, until the first refresh, when a request without any bound
#: cookie is still served: the browser sent it before the registration's answer reached it.
REGISTRATION_GRACE = 2
_NOT_FOUND = 0
_REGISTER = 1
_REFRESH = 2


class Request(NamedTuple):
    """What DBSC reads of a request; the adapters fill it in."""

    method: str
    path: str  #: below the app's root path
    root: str  #: the app's root path (ASGI ``root_path``, WSGI ``SCRIPT_NAME``), "" if none
    https: bool
    host: str | None  #: the ``Host`` header
    proof: str | None  #: ``Secure-Session-Response``
    session_id: str | None  #: ``Sec-Secure-Session-Id``
    cookie_header: str | None


class Answer(NamedTuple):
    """A response DBSC makes itself: status, headers, body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _plain(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = (text + "\n").encode()
    return Answer(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"), *(headers or [])],
        body,
    )


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
    """DBSC for one engine: its options, its bound-cookie keys, its parsed bindings."""

    __slots__ = ("_bindings", "_deleted", "_target", "cookies", "options")

    def __init__(self, options: DBSC, engine: Engine) -> None:
        self.options = options
        self.cookies = BoundCookies(engine.keys, engine.cookie.name)
        self._target = options.bound_cookie_name + "="
        # Field text -> the Binding it parses to: a bound session's every request costs no JSON.
        self._bindings: VerifiedCache[str, Binding] = VerifiedCache(1024)
        self._deleted = f"{options.bound_cookie_name}=; Max-Age=0; {_ATTRIBUTES}"

    # -- loading -------------------------------------------------------------------

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

    # -- routing -------------------------------------------------------------------

    def kind(self, path: str) -> int:
        if path == self.options.register_path:
            return _REGISTER
        if path == self.options.refresh_path:
            return _REFRESH
        return _NOT_FOUND

    def is_endpoint(self, path: str) -> bool:
        return path == self.options.register_path or path == self.options.refresh_path

    def endpoint(
        self, engine: Engine, session: Session, request: Request, now: int
    ) -> Answer | Steps[Answer]:
        """The answer of ``register_path`` or ``refresh_path`` (the adapter checked it is one)."""
        kind = self.kind(request.path)
        if request.method != "POST":
            return _plain(405, "Method Not Allowed: DBSC endpoints take POST", [("Allow", "POST")])
        if not request.https:
            return self._failed(400, "DBSC needs https", kind)
        if kind == _REGISTER:
            return self._register(engine, session, request, now)
        return self._refresh(engine, session, request, now)

    # -- registration --------------------------------------------------------------

    def _failed(
        self, status: int, reason: str, kind: int, level: int = logging.WARNING, *, clear: bool = False
    ) -> Answer:
        """A refusal, logged with its reason; ``clear`` also expires the bound cookie (a refresh
        of a session that has no binding, or whose proofs can never be right)."""
        what = "registration" if kind == _REGISTER else "refresh"
        logger.log(level, "sessionware refused a DBSC %s (%d): %s", what, status, reason)
        return _plain(status, f"DBSC {what} refused", [("Set-Cookie", self._deleted)] if clear else [])

    def _register(self, engine: Engine, session: Session, request: Request, now: int) -> Steps[Answer]:
        key, origin = _current_key(session), session._origin
        if key is None or origin is None or origin.meta.get("uid") is None:
            return self._failed(401, "no logged-in session", _REGISTER)
        if session._dbsc is not None:
            return self._failed(409, "the session is bound already (re-binding is never allowed)", _REGISTER)
        token = parse_item(request.proof)
        if token is None:
            return self._failed(400, "no or malformed Secure-Session-Response", _REGISTER)
        try:
            proof = parse_proof(token)
            if proof.alg not in self.options.algorithms:
                raise ProofRefused(f"algorithm {proof.alg} was not offered")
            public, jwk = public_key(proof.alg, proof.jwk)
            verify(proof, proof.alg, public)
        except ProofRefused as exc:
            return self._failed(400, exc.reason, _REGISTER)
        if not self._fresh(proof.jti, now):
            return self._failed(400, "unknown or expired challenge", _REGISTER)
        # The challenge is consumed by deleting its record: exactly one proof wins it.
        if not (yield Delete(challenge_key(key, proof.jti))):
            return self._failed(400, "unknown, used or expired challenge", _REGISTER)
        binding = Binding(new_identifier(), proof.alg, jwk, 0, now, now)
        if not (yield self._write(engine, session, binding, now, touched=now)):
            return self._failed(401, "the session ended meanwhile", _REGISTER)
        logger.info("sessionware bound a session to a device key (DBSC, %s)", proof.alg)
        return (yield from self._configured(session, key, binding, request, now))

    # -- refresh -------------------------------------------------------------------

    def _refresh(self, engine: Engine, session: Session, request: Request, now: int) -> Steps[Answer]:
        identifier = parse_item(request.session_id)
        if identifier is None:
            return self._failed(400, "no or malformed Sec-Secure-Session-Id", _REFRESH, clear=True)
        key, binding = _current_key(session), session._dbsc
        if key is None or binding is None:
            reason = "no bound session (logged out, revoked, expired or unknown)"
            return self._failed(401, reason, _REFRESH, clear=True)
        if identifier != binding.identifier:
            # Another DBSC session of this browser (one from before a renewal, say): it ends,
            # but the bound cookie, which may be this session's, stays.
            return self._failed(401, "the session identifier is not this session's", _REFRESH)
        if request.proof is None:
            # The browser asks for a challenge: a 403 carrying one, which it signs and retries with.
            return (yield from self._challenged(key, binding, now, "no proof yet", logging.DEBUG))
        token = parse_item(request.proof)
        if token is None:
            return self._failed(400, "malformed Secure-Session-Response", _REFRESH, clear=True)
        try:
            proof = parse_proof(token)
            # Only the key stored at registration verifies; a jwk in the header is ignored.
            public, _ = public_key(binding.alg, binding.jwk)
            verify(proof, binding.alg, public)
        except ProofRefused as exc:
            return self._failed(400, exc.reason, _REFRESH, clear=True)
        if not self._fresh(proof.jti, now):
            return (yield from self._challenged(key, binding, now, "unknown or expired challenge"))
        if not (yield Delete(challenge_key(key, proof.jti))):
            return (yield from self._challenged(key, binding, now, "unknown, used or expired challenge"))
        renewed = binding._replace(generation=binding.generation + 1, refreshed_at=now)
        if not (yield self._write(engine, session, renewed, now, touched=None)):
            return self._failed(401, "the session ended meanwhile", _REFRESH, clear=True)
        logger.debug("sessionware refreshed a DBSC bound cookie")
        return (yield from self._configured(session, key, renewed, request, now))

    def _challenged(
        self, key: str, binding: Binding, now: int, reason: str, level: int = logging.WARNING
    ) -> Steps[Answer]:
        challenge = yield from self._new_challenge(key, now)
        answer = self._failed(403, reason, _REFRESH, level)
        answer.headers.append(("Secure-Session-Challenge", self._challenge_header(challenge, binding)))
        return answer

    # -- shared --------------------------------------------------------------------

    def _new_challenge(self, key: str, now: int) -> Steps[str]:
        challenge = new_challenge(now)
        lifetime = self.options.challenge_lifetime
        yield Create(challenge_key(key, challenge), challenge_record(now), {}, lifetime, None)
        return challenge

    def _fresh(self, challenge: str, now: int) -> bool:
        """Whether ``challenge`` is one of ours, issued no longer than its lifetime ago (no store call)."""
        age = challenge_age(challenge, now)
        return age is not None and 0 <= age <= self.options.challenge_lifetime

    @staticmethod
    def _challenge_header(challenge: str, binding: Binding) -> str:
        return string_item(challenge, [("id", binding.identifier)])

    @staticmethod
    def _write(engine: Engine, session: Session, binding: Binding, now: int, touched: int | None) -> Update:
        """The one atomic write of a binding: its field, and the head's ``dbsc`` mark (for listings)."""
        origin, key = session._origin, _current_key(session)
        assert origin is not None
        assert key is not None
        meta = {**origin.meta, "dbsc": 1}
        head = _record.pack_head(
            origin.created_at,
            origin.touched_at if touched is None else max(touched, origin.created_at),
            origin.auth_at,
            _record.dump_meta(meta),
        )
        change = Change(
            head,
            {FIELD: dump_binding(binding)},
            (),
            engine.ttl(origin.created_at, now),
            engine.user_of(key, meta),
        )
        return Update(key, change)

    def _configured(
        self, session: Session, key: str, binding: Binding, request: Request, now: int
    ) -> Steps[Answer]:
        """200 with the session config, a new bound cookie, and the next refresh's challenge."""
        challenge = yield from self._new_challenge(key, now)
        options = self.options
        scope: dict[str, Any] = {"include_site": False}
        if request.host is not None and _HOST.fullmatch(request.host):
            scope = {"origin": "https://" + request.host.lower(), **scope}
        config = {
            "session_identifier": binding.identifier,
            "refresh_url": request.root + options.refresh_path,
            "scope": scope,
            "credentials": [{"type": "cookie", "name": options.bound_cookie_name, "attributes": _ATTRIBUTES}],
        }
        lifetime = options.bound_cookie_lifetime
        value = self.cookies.make(binding.identifier, now + lifetime, binding.generation)
        body = json.dumps(config, separators=(",", ":")).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", f"{options.bound_cookie_name}={value}; Max-Age={lifetime}; {_ATTRIBUTES}"),
            ("Secure-Session-Challenge", self._challenge_header(challenge, binding)),
        ]
        return Answer(200, headers, body)

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
            answer = _plain(303, "See Other", [("Location", root + refusal)])
        else:
            answer = _plain(refusal, "Unauthorized" if refusal == 401 else "Forbidden")
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
        if key is None or key == _current_key(session):
            return None  # the same session re-sent (a refreshed Max-Age, a re-issue), bound or not
        return self._offered(key, request_root, now)

    def _offered(self, key: str, root: str, now: int) -> Steps[str]:
        challenge = yield from self._new_challenge(key, now)
        options = self.options
        return inner_list(
            options.algorithms, [("path", root + options.register_path), ("challenge", challenge)]
        )

    def ended(self, session: Session) -> str | None:
        """The ``Set-Cookie`` expiring the bound cookie when a bound session is dropped,
        logged out or renewed on this response, else None."""
        if session._dbsc is None or session._action not in (DROP, LOG_OUT, RENEW):
            return None
        return self._deleted
