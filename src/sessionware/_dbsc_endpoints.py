"""DBSC's two endpoints, sans-IO: registration and refresh.

:meth:`Endpoints.answer` turns a request to ``register_path`` or
``refresh_path`` into an :class:`Answer`, or into steps producing one (store
calls the adapter drives, as for the session itself). The app does not run.

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
from typing import Any, NamedTuple

from . import _record
from ._dbsc_jwt import ProofRefused, parse_proof, public_key, verify
from ._dbsc_sf import parse_item, string_item
from ._dbsc_state import (
    FIELD,
    Binding,
    BoundCookies,
    challenge_age,
    challenge_key,
    challenge_record,
    dump_binding,
    new_challenge,
    new_identifier,
)
from ._engine import Engine
from ._session import Session
from ._steps import Create, Delete, Steps, Update
from .dbsc import DBSC
from .typing import Change

__all__ = ["ATTRIBUTES", "Answer", "Endpoints", "Request", "plain", "record_key"]

logger = logging.getLogger("sessionware")

#: The bound cookie's attributes, in its ``Set-Cookie`` and in the session config.
ATTRIBUTES = "Path=/; Secure; HttpOnly; SameSite=Lax"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
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


def plain(status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = (text + "\n").encode()
    return Answer(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store"), *(headers or [])],
        body,
    )


def record_key(session: Session) -> str | None:
    """The key of the record that holds the session's binding: its server-side record, or a
    logged-in cookie session's revocation record; None if it has neither."""
    if session._key is not None:
        return session._key
    return None if session._allow is None else session._allow[0]


class Endpoints:
    """Registration and refresh for one middleware's DBSC options and bound-cookie keys."""

    __slots__ = ("cookies", "deleted", "options")

    def __init__(self, options: DBSC, cookies: BoundCookies) -> None:
        self.options = options
        self.cookies = cookies
        #: The ``Set-Cookie`` that expires the bound cookie.
        self.deleted = f"{options.bound_cookie_name}=; Max-Age=0; {ATTRIBUTES}"

    def answer(self, engine: Engine, session: Session, request: Request, now: int) -> Answer | Steps[Answer]:
        """The answer of ``register_path`` or ``refresh_path`` (the caller checked it is one)."""
        kind = _REGISTER if request.path == self.options.register_path else _REFRESH
        if request.method != "POST":
            return plain(405, "Method Not Allowed: DBSC endpoints take POST", [("Allow", "POST")])
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
        return plain(status, f"DBSC {what} refused", [("Set-Cookie", self.deleted)] if clear else [])

    def _register(self, engine: Engine, session: Session, request: Request, now: int) -> Steps[Answer]:
        key, origin = record_key(session), session._origin
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
        key, binding = record_key(session), session._dbsc
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
        challenge = yield from self.new_challenge(key, now)
        answer = self._failed(403, reason, _REFRESH, level)
        answer.headers.append(("Secure-Session-Challenge", self.challenge_header(challenge, binding)))
        return answer

    # -- shared --------------------------------------------------------------------

    def new_challenge(self, key: str, now: int) -> Steps[str]:
        challenge = new_challenge(now)
        lifetime = self.options.challenge_lifetime
        yield Create(challenge_key(key, challenge), challenge_record(now), {}, lifetime, None)
        return challenge

    def _fresh(self, challenge: str, now: int) -> bool:
        """Whether ``challenge`` is one of ours, issued no longer than its lifetime ago (no store call)."""
        age = challenge_age(challenge, now)
        return age is not None and 0 <= age <= self.options.challenge_lifetime

    @staticmethod
    def challenge_header(challenge: str, binding: Binding) -> str:
        return string_item(challenge, [("id", binding.identifier)])

    @staticmethod
    def _write(engine: Engine, session: Session, binding: Binding, now: int, touched: int | None) -> Update:
        """The one atomic write of a binding: its field, and the head's ``dbsc`` mark (for listings)."""
        origin, key = session._origin, record_key(session)
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
            engine.ttl(origin.created_at, now, meta),
            engine.user_of(key, meta),
        )
        return Update(key, change)

    def _configured(
        self, session: Session, key: str, binding: Binding, request: Request, now: int
    ) -> Steps[Answer]:
        """200 with the session config, a new bound cookie, and the next refresh's challenge."""
        challenge = yield from self.new_challenge(key, now)
        options = self.options
        scope: dict[str, Any] = {"include_site": False}
        if request.host is not None and _HOST.fullmatch(request.host):
            scope = {"origin": "https://" + request.host.lower(), **scope}
        config = {
            "session_identifier": binding.identifier,
            "refresh_url": request.root + options.refresh_path,
            "scope": scope,
            "credentials": [{"type": "cookie", "name": options.bound_cookie_name, "attributes": ATTRIBUTES}],
        }
        lifetime = options.bound_cookie_lifetime
        value = self.cookies.make(binding.identifier, now + lifetime, binding.generation)
        body = json.dumps(config, separators=(",", ":")).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", f"{options.bound_cookie_name}={value}; Max-Age={lifetime}; {ATTRIBUTES}"),
            ("Secure-Session-Challenge", self.challenge_header(challenge, binding)),
        ]
        return Answer(200, headers, body)
