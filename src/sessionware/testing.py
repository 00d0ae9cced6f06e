"""Helpers for testing apps and stores that use sessionware.

For apps -- start a test client with a session, read back the session a
response left, and move time by hand:

- :func:`init_test_session` -- give a test client a session, as Plug's
  ``init_test_session`` does: a real cookie the app's middleware accepts (for
  a server-side store, a real record in the app's store), optionally logged
  in::

      client = TestClient(app)
      init_test_session(client, {"cart": [1]}, user_id=42)
      assert client.get("/cart").json() == [1]

  It works with Starlette's and FastAPI's ``TestClient``, ``httpx.Client`` and
  ``httpx.AsyncClient`` over ``ASGITransport`` or ``WSGITransport`` (and their
  ``httpx2`` twins), and Flask's (Werkzeug's) test client, with every store.
- :func:`read_session` -- the session a client holds now (or a response left
  behind), decoded with the app's keys: a :class:`SessionSnapshot` (a dict of
  the data, plus ``user_id``, ``auth_level`` and the session's times), or
  None when there is no live session (never set, dropped, logged out,
  expired or revoked)::

      client.post("/logout")
      assert read_session(client) is None
- :func:`make_session_cookie` -- the ``name=value`` pair of a fresh session
  cookie, for a raw ``Cookie`` header.
- :class:`FakeClock` -- a clock to pass as ``clock=`` to the middleware and
  the stores, moved by hand in expiry tests.
- :class:`DBSCBrowser` -- plays a browser with Device Bound Session
  Credentials (a software ES256 or RS256 key) through an httpx-style client,
  to test an app's ``dbsc=`` flows: register, refresh, and proofs of any
  shape.

The helpers find the app's sessionware middleware by themselves: inside a
Starlette or FastAPI app's middleware stack, behind any middleware that keeps
the next app in ``.app``, a Flask app's ``session_interface`` (the
:class:`~sessionware.flask.Sessionware` extension) or its ``wsgi_app``. When
they cannot see it (an app wrapped in a function, another framework), pass
``middleware=`` the :class:`~sessionware.SessionMiddleware` (ASGI) or
:class:`sessionware.wsgi.SessionMiddleware` instance; one built for the test
with the same ``secret_key_base``, cookie options and *store instance* works
too. The helpers read time from the middleware's ``clock``, so a session made
after ``clock.advance(...)`` starts at the fake time, and :func:`read_session`
applies the app's expiry at the fake time.

The sessionware pytest plugin (loaded automatically once sessionware is
installed; ``-p no:sessionware`` turns it off) adds three fixtures:
``session_clock`` (a :class:`FakeClock`), ``session_secret`` (a fresh
``secret_key_base``) and ``session_store`` (a :class:`~sessionware.MemoryStore`
on ``session_clock``).

For store authors:

- :class:`StoreContract` -- the test suite every server-side store must pass.
  Subclass it in a pytest module and provide a ``store`` fixture::

      class TestMyStore(StoreContract):
          @pytest.fixture
          def store(self):
              return MyStore(...)

  Override :meth:`StoreContract.expire` if the store keeps time some other way
  than the wall clock (the built-in stores take a ``clock`` argument). Async
  stores pass the same suite: each call is run on an event loop the contract
  creates for the test.
- :class:`RegistryContract` -- the suite for stores that also implement
  :class:`~sessionware.typing.Registry` (listing and revoking a user's
  sessions); subclass it instead.
- :func:`change` -- a :class:`~sessionware.typing.Change` with defaults, for
  calling a store's ``update`` in tests.

This module imports pytest; it is meant for test code only. It imports no web
framework: each helper looks at the client and app it is given.
"""

from __future__ import annotations

import asyncio
import datetime
import email.message
import inspect
import sys
import threading
import urllib.request
from collections.abc import Callable, Mapping
from types import GeneratorType
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from ._closing import close_session
from ._contract import RegistryContract, StoreContract, change
from ._cookies import find_cookie
from ._dbsc_browser import DBSCBrowser
from ._engine import Engine
from ._loading import open_session
from ._session import Session
from ._steps import Load, Pending, Steps, Then, run_async, run_sync
from .asgi import SessionMiddleware as _AsgiMiddleware
from .errors import ConfigurationError, SessionError
from .wsgi import SessionMiddleware as _WsgiMiddleware

__all__ = [
    "DBSCBrowser",
    "FakeClock",
    "RegistryContract",
    "SessionSnapshot",
    "StoreContract",
    "change",
    "init_test_session",
    "make_session_cookie",
    "read_session",
]

T = TypeVar("T")
C = TypeVar("C")


class FakeClock:
    """A clock that stands still until moved: ``clock()`` returns the current time.

    Pass the same clock to the middleware and to the stores that take one
    (``MemoryStore``, ``SQLiteStore``); Redis and PostgreSQL keep their own
    time for TTLs, but sessionware checks expiry itself from the session's
    timestamps at the middleware's time, so sessions on those stores expire
    on the fake clock too.

    Example::

        clock = FakeClock()
        app = SessionMiddleware(app, secret_key_base=secret, clock=clock, store=MemoryStore(clock=clock))
        clock.advance(minutes=31)  # past the default (AAL2) idle timeout
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        """The current time, as :func:`time.time` would give it."""
        return self.now

    def advance(
        self,
        seconds: float | datetime.timedelta = 0,
        *,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> float:
        """Move the clock forward by the sum of the arguments; return the new time.

        ``seconds`` may be a :class:`datetime.timedelta`. A negative amount moves
        the clock back.
        """
        if isinstance(seconds, datetime.timedelta):
            seconds = seconds.total_seconds()
        with self._lock:
            self.now += seconds + 60 * minutes + 3600 * hours + 86400 * days
            return self.now

    def __repr__(self) -> str:
        return f"FakeClock({self.now})"


# -- test clients -------------------------------------------------------------------


class SessionSnapshot(dict[str, Any]):
    """A session as the app will load it on the client's next request.

    A plain ``dict`` of the session's data (so ``read_session(client) ==
    {"cart": [1]}`` compares the data only), with what sessionware keeps
    beside the data as attributes. Times are unix seconds at the app's clock.

    Attributes:
        user_id: The user the session is logged in as, or None.
        auth_level: The level given to ``log_in`` / ``reauthenticated``, or None.
        created_at: When the session began (its last log-in, if any).
        auth_at: When the user last authenticated, or None.
        last_active: The activity the idle timeout counts from.
        expires_at: When the session ends if nothing else happens, or None.
    """

    __slots__ = ("auth_at", "auth_level", "created_at", "expires_at", "last_active", "user_id")

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        user_id: str | int | None,
        auth_level: str | None,
        created_at: int,
        auth_at: int | None,
        last_active: int,
        expires_at: int | None,
    ) -> None:
        super().__init__(data)
        self.user_id = user_id
        self.auth_level = auth_level
        self.created_at = created_at
        self.auth_at = auth_at
        self.last_active = last_active
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"SessionSnapshot({dict.__repr__(self)}, user_id={self.user_id!r})"


class _Target(NamedTuple):
    """What the helpers need from an app's sessionware middleware."""

    engine: Engine
    clock: Callable[[], float]


def _target_of(obj: object) -> _Target | None:
    if isinstance(obj, _AsgiMiddleware):
        return _Target(obj.engine, obj._clock)
    if isinstance(obj, _WsgiMiddleware):
        return _Target(obj.engine, obj.clock)
    if "sessionware.flask" in sys.modules:  # only an app that uses it has imported it
        from .flask import SessionInterface

        interface = getattr(obj, "session_interface", None)
        if isinstance(interface, SessionInterface):
            return _Target(interface.engine(obj), interface.clock)  # type: ignore[arg-type]
    return None


def _find(app: object) -> _Target | None:
    """The sessionware middleware in ``app``, looking through the wrappers that show their inside."""
    pending, seen = [app], set[int]()
    while pending and len(seen) < 64:
        obj = pending.pop(0)
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        target = _target_of(obj)
        if target is not None:
            return target
        if hasattr(obj, "build_middleware_stack") and hasattr(obj, "middleware_stack"):
            # Starlette and FastAPI build their middleware on the first request; build
            # it now, exactly as that request would (so it is the stack the app uses).
            if obj.middleware_stack is None:
                obj.middleware_stack = obj.build_middleware_stack()
            pending.append(obj.middleware_stack)
        pending.extend(getattr(obj, name, None) for name in ("app", "wsgi_app", "asgi_app"))
    return None


def _app_of(client: object) -> object:
    """The app behind a test client, or None when it does not show it."""
    for obj, name in ((client, "application"), (client, "app")):
        app = getattr(obj, name, None)
        if app is not None:
            return app
    return getattr(getattr(client, "_transport", None), "app", None)  # httpx over ASGI/WSGITransport


def _target(who: str, client: object, app: object, middleware: object) -> _Target:
    if middleware is not None:
        if not isinstance(middleware, _AsgiMiddleware | _WsgiMiddleware):
            raise ConfigurationError(
                f"{who} expects middleware to be a sessionware SessionMiddleware instance "
                f"(sessionware.SessionMiddleware or sessionware.wsgi.SessionMiddleware), got {middleware!r}"
            )
        target = _target_of(middleware)
        assert target is not None
        return target
    if app is None:
        app = _app_of(client) if client is not None else None
        if app is None:
            raise ConfigurationError(
                f"{who} cannot see the app behind {client!r}: pass app=the app, or middleware=its "
                "sessionware SessionMiddleware"
            )
    elif _is_client(app):
        app = _app_of(app)  # a test client given as app= stands for its app
    target = _find(app)
    if target is None:
        raise ConfigurationError(
            f"{who} found no sessionware SessionMiddleware in {app!r}. It looks inside Starlette and "
            "FastAPI middleware stacks, behind middleware that keep the next app in .app, and at a "
            "Flask app's session_interface and wsgi_app. Add the middleware to the app, or pass "
            "middleware=the SessionMiddleware instance (one built for the test with the same "
            "secret_key_base, cookie options and store instance works too)."
        )
    return target


def _read_only(steps: Pending[T]) -> Pending[T]:
    """The engine's store calls with every write answered without touching the store
    (a delete, say, of a record found expired: "nothing was there")."""
    if isinstance(steps, Then):
        assert isinstance(steps.call, Load)
        then = steps.then

        def finish(answer: Any) -> Any:
            done = then(answer)
            return _read_only_steps(done) if isinstance(done, GeneratorType) else done

        return Then(steps.call, finish)
    return _read_only_steps(steps)


def _read_only_steps(steps: Steps[T]) -> Steps[T]:
    try:
        call = next(steps)
        while True:
            result = (yield call) if isinstance(call, Load) else False
            call = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _drive(steps: Pending[T], engine: Engine, who: str) -> T:
    """Run the engine's store calls against the app's store, synchronously when it can."""
    store: Any = engine.registry_store  # sync or async: checked below
    if store is None or not inspect.iscoroutinefunction(store.load):
        return run_sync(steps, store)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_async(steps, store))
    if not isinstance(steps, Then):
        steps.close()
    raise SessionError(
        f"{who} cannot call {store!r} from inside a running event loop: it has only async methods. "
        "Call it from a synchronous test, or give the store synchronous methods too"
    )


def _cookie_parts(header: str) -> tuple[str, str, dict[str, str]]:
    """``(name, value, attributes)`` of a ``Set-Cookie`` value; attribute names lower-cased."""
    pair, *attributes = header.split(";")
    name, _, value = pair.partition("=")
    params: dict[str, str] = {}
    for attribute in attributes:
        key, _, text = attribute.strip(" \t").partition("=")
        params[key.lower()] = text
    return name.strip(" \t"), value.strip(" \t"), params


def _is_deletion(params: dict[str, str]) -> bool:
    return params.get("max-age") == "0" or "1970" in params.get("expires", "")


def _scope_of(engine: Engine) -> tuple[str, str | None]:
    """The session cookie's ``(path, domain)``, as the middleware sets it."""
    params = _cookie_parts(engine.cookie.deletion(https=False))[2]
    return params.get("path") or "/", params.get("domain") or None


class _HttpxJar:
    """The cookie jar of an httpx (or httpx2, or Starlette ``TestClient``) client."""

    def __init__(self, client: Any, who: str) -> None:
        self.client = client
        base = urlsplit(str(client.base_url))
        if not base.scheme or not base.netloc:
            raise ConfigurationError(
                f"{who} needs the client's base_url to know which host the cookie is for: create "
                "the client with base_url='http://testserver' (any host works)"
            )
        self.origin = f"{base.scheme}://{base.netloc}"
        self.https = base.scheme == "https"

    @property
    def user_agent(self) -> str | None:
        agent = self.client.headers.get("user-agent")
        return None if agent is None else str(agent)

    def put(self, name: str, set_cookie: str | None, path: str) -> None:
        jar = self.client.cookies.jar
        for cookie in [cookie for cookie in jar if cookie.name == name]:  # never two of one name
            jar.clear(cookie.domain, cookie.path, cookie.name)
        if set_cookie is not None:  # stored exactly as the same header in a response would be
            jar.extract_cookies(_Response(set_cookie), _request(self.origin + path))

    def get(self, path: str) -> str | None:
        request = _request(self.origin + path)
        self.client.cookies.jar.add_cookie_header(request)
        header = request.get_header("Cookie")
        return None if header is None else str(header)


def _request(url: str) -> urllib.request.Request:
    """A request for the cookie jar to apply its rules to (host, path, https); never sent."""
    return urllib.request.Request(url)  # noqa: S310 - never opened; the scheme is http(s)


class _Response:
    """Just enough of a ``urllib`` response for ``CookieJar.extract_cookies``."""

    def __init__(self, set_cookie: str) -> None:
        self._headers = email.message.Message()
        self._headers["Set-Cookie"] = set_cookie

    def info(self) -> email.message.Message:
        return self._headers


class _WerkzeugJar:
    """The cookies of a Werkzeug test client (Flask's ``app.test_client()``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        config = getattr(client.application, "config", None) or {}
        self.host = str(config.get("SERVER_NAME") or "localhost").rsplit(":", 1)[0]
        self.https = config.get("PREFERRED_URL_SCHEME") == "https"

    @property
    def user_agent(self) -> str | None:
        agent = getattr(self.client, "environ_base", {}).get("HTTP_USER_AGENT")
        return None if agent is None else str(agent)

    def put(self, name: str, set_cookie: str | None, path: str, domain: str | None) -> None:
        self.client.delete_cookie(name, domain=domain or self.host, path=path)
        if set_cookie is not None:
            value = _cookie_parts(set_cookie)[1]
            self.client.set_cookie(
                name, value, domain=domain or self.host, origin_only=domain is None, path=path
            )

    def get(self, name: str, path: str, domain: str | None) -> str | None:
        cookie = self.client.get_cookie(name, domain=domain or self.host, path=path)
        return None if cookie is None else f"{name}={cookie.value}"


def _is_werkzeug_client(obj: object) -> bool:
    return all(hasattr(obj, name) for name in ("application", "get_cookie", "set_cookie"))


def _is_httpx_client(obj: object) -> bool:
    return hasattr(obj, "base_url") and hasattr(getattr(obj, "cookies", None), "jar")


def _is_client(obj: object) -> bool:
    return _is_werkzeug_client(obj) or _is_httpx_client(obj)


def _jar(client: object, who: str) -> _HttpxJar | _WerkzeugJar:
    if _is_werkzeug_client(client):
        return _WerkzeugJar(client)
    if _is_httpx_client(client):
        return _HttpxJar(client, who)
    raise ConfigurationError(
        f"{who} expects a test client -- Starlette's or FastAPI's TestClient, an httpx.Client or "
        f"httpx.AsyncClient, or Flask's app.test_client() -- got {client!r}"
    )


def _mint(
    target: _Target,
    data: Mapping[str, Any] | None,
    user_id: str | int | None,
    auth_level: str | None,
    user_agent: str | None,
    https: bool,
    who: str,
) -> str | None:
    """The ``Set-Cookie`` value of a new session, stored as the app stores sessions; None if empty."""
    if auth_level is not None and user_id is None:
        raise SessionError(f"{who} got auth_level but no user_id: a level belongs to a log-in")
    engine = target.engine
    now = int(target.clock())
    session = engine.new_session(now)
    session._scope = {"headers": [(b"user-agent", user_agent.encode("latin-1"))] if user_agent else []}
    if user_id is not None:
        session.log_in(user_id, level=auth_level)  # a real log-in: user-grouped ID, registry entry
    if data:
        session.update(data)
    closed = close_session(engine, session, 200, now, https)
    if closed is None or isinstance(closed, str):
        return closed
    return _drive(closed, engine, who)


def init_test_session(
    client: C,
    data: Mapping[str, Any] | None = None,
    /,
    *,
    user_id: str | int | None = None,
    auth_level: str | None = None,
    app: object = None,
    middleware: object = None,
) -> C:
    """Give ``client`` a session holding ``data``, logged in as ``user_id`` if given.

    The session is made by the app's own middleware configuration: a cookie
    it accepts, encrypted or signed with its keys; with a server-side store (or
    a cookie store's revocation store), a real record in that store. With
    ``user_id`` it is a real log-in, exactly as ``session.log_in(user_id,
    level=auth_level)`` in a request would make it: the user's ID group, the
    per-user registry entry (so ``user_sessions`` lists it and can revoke it),
    ``auth_at`` now, the client's user agent recorded, and
    ``max_sessions_per_user`` applied. The session starts at the middleware's
    clock. It replaces any session cookie the client held; with no data and no
    user the client is left without one.

    ``client`` is Starlette's or FastAPI's ``TestClient``, an ``httpx.Client``
    or ``httpx.AsyncClient`` with ``ASGITransport`` or ``WSGITransport`` and a
    ``base_url``, or Flask's ``app.test_client()``. Pass ``app=`` when the
    client does not show its app, and ``middleware=`` (a sessionware
    ``SessionMiddleware``) when the app does not show its middleware.
    Returns ``client``.

    Raises :class:`~sessionware.ConfigurationError` naming the fix when the
    client or middleware cannot be found, and
    :class:`~sessionware.SerializationError` for data JSON cannot hold.
    """
    who = "init_test_session"
    jar = _jar(client, who)
    target = _target(who, client, app, middleware)
    set_cookie = _mint(target, data, user_id, auth_level, jar.user_agent, jar.https, who)
    name = target.engine.cookie.name_for(jar.https)
    path, domain = _scope_of(target.engine)
    if isinstance(jar, _WerkzeugJar):
        jar.put(name, set_cookie, path, domain)
    else:
        jar.put(name, set_cookie, path)
    return client


def make_session_cookie(
    app: object,
    data: Mapping[str, Any] | None = None,
    /,
    *,
    user_id: str | int | None = None,
    auth_level: str | None = None,
    user_agent: str | None = None,
    https: bool = False,
) -> str:
    """A new session as :func:`init_test_session` makes it; returns ``"name=value"`` for a ``Cookie`` header.

    ``app`` is the app, its test client or its sessionware ``SessionMiddleware``.
    ``user_agent`` is recorded with a log-in; ``https`` is whether the request
    the cookie stands for was made over https. An empty anonymous session has
    no cookie: give ``data`` or ``user_id``.

    Example::

        cookie = make_session_cookie(app, {"theme": "dark"})
        await app(scope_with_headers([(b"cookie", cookie.encode())]), receive, send)
    """
    who = "make_session_cookie"
    middleware = app if isinstance(app, _AsgiMiddleware | _WsgiMiddleware) else None
    target = _target(who, None, app, middleware)
    set_cookie = _mint(target, data, user_id, auth_level, user_agent, https, who)
    if set_cookie is None:
        raise SessionError(f"{who}: an empty anonymous session has no cookie; give data or user_id")
    name, value, _ = _cookie_parts(set_cookie)
    return f"{name}={value}"


def _response_cookie(response: Any, names: tuple[str, ...]) -> str | None:
    """The ``Cookie`` header that stands for the session a response left behind."""
    headers = response.headers
    if hasattr(headers, "get_list"):  # httpx
        set_cookies = headers.get_list("set-cookie")
    else:  # werkzeug
        set_cookies = headers.getlist("Set-Cookie")
    for set_cookie in reversed(set_cookies):
        cookie_name, value, params = _cookie_parts(set_cookie)
        if cookie_name in names:
            return None if _is_deletion(params) else f"{cookie_name}={value}"
    try:  # no session cookie sent back: the session is the one the request carried
        request = response.request
    except RuntimeError:  # an httpx response built without a request
        return None
    environ = getattr(request, "environ", None)
    header = environ.get("HTTP_COOKIE") if environ is not None else request.headers.get("cookie")
    return None if header is None else str(header)


def _is_response(source: object) -> bool:
    return hasattr(source, "status_code") and hasattr(source, "headers") and not hasattr(source, "base_url")


def read_session(source: object, *, app: object = None, middleware: object = None) -> SessionSnapshot | None:
    """The session ``source`` holds, as the app will load it on the next request; None if there is none.

    ``source`` is a test client (its cookie jar is read: the session cookie it
    will send next), a response (the session cookie it set, or -- if it set
    none -- the one its request carried), or a ``Cookie`` header value
    (``"session=..."``). A response or a header needs ``app=`` (the app or its
    test client) or ``middleware=``.

    The cookie is decoded with the app's keys and, for a server-side store
    (or a cookie store's revocation store), looked up in the app's store; the
    app's expiry is applied at its clock. Nothing is written: not even an
    expired record is deleted. None means the next request will have no
    session: no cookie, a dropped or logged-out session, an expired, revoked
    or unknown one, or a cookie the app refuses.

    Example::

        init_test_session(client, user_id=42)
        client.post("/logout")
        assert read_session(client) is None
    """
    who = "read_session"
    if isinstance(source, str) or _is_response(source):
        if app is None and middleware is None:
            raise ConfigurationError(
                f"{who} needs to know the app to read a response or a Cookie header: pass app=the app "
                "(or its test client) or middleware=its SessionMiddleware; read_session(client) finds "
                "the app by itself"
            )
        target = _target(who, None, app, middleware)
        cookie = target.engine.cookie
        names = (cookie.name_for(True), cookie.name_for(False))
        header = source if isinstance(source, str) else _response_cookie(source, names)
        # The cookie's name tells which scheme it was set for (when the name depends on it).
        https = header is not None and names[0] != names[1] and find_cookie(header, names[0])[1] > 0
    else:
        jar = _jar(source, who)
        target = _target(who, source, app, middleware)
        engine = target.engine
        path, domain = _scope_of(engine)
        https = jar.https
        name = engine.cookie.name_for(https)
        header = jar.get(name, path, domain) if isinstance(jar, _WerkzeugJar) else jar.get(path)
    if not header:
        return None
    return _snapshot(target, header, who, https)


def _snapshot(target: _Target, header: str, who: str, https: bool) -> SessionSnapshot | None:
    engine = target.engine
    now = int(target.clock())
    opened = open_session(engine, header, now, https)
    session = opened if isinstance(opened, Session) else _drive(_read_only(opened), engine, who)
    origin = session._origin
    if origin is None:
        return None
    meta = origin.meta
    return SessionSnapshot(
        dict(dict.items(session)),
        user_id=meta.get("uid"),
        auth_level=meta.get("lvl"),
        created_at=origin.created_at,
        auth_at=origin.auth_at,
        last_active=origin.touched_at,
        expires_at=engine.expiry_of(origin.meta).deadline(origin.created_at, origin.touched_at),
    )
