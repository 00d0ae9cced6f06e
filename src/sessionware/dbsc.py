"""Device Bound Session Credentials: a stolen session cookie is no use without the device's key.

Pass ``dbsc=DBSC()`` to :class:`sessionware.SessionMiddleware`, to
:class:`sessionware.wsgi.SessionMiddleware` or to the Flask extension. See
``docs/dbsc.md`` for the protocol, the threat and what browsers do.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._dbsc_jwt import ALGORITHMS
from .errors import ConfigurationError

__all__ = ["DBSC"]

_OWNER = "DBSC"


def _path(name: str, value: object) -> str:
    if type(value) is not str or not value.startswith("/") or any(c in value for c in ' ;,"?#\\'):
        raise ConfigurationError(
            f"{_OWNER} expects {name} to be an absolute path such as '/dbsc/register', got {value!r}"
        )
    return value


def _seconds(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ConfigurationError(
            f"{_OWNER} expects {name} to be a number of seconds from {low} to {high}, got {value!r}"
        )
    return value


class DBSC:
    """Device Bound Session Credentials for the session middleware (W3C WebAppSec draft).

    When a logged-in session gets its ID (on the log-in response, and on any
    renewal of a logged-in session) over https, the response offers
    registration (``Secure-Session-Registration``). A browser that supports
    DBSC makes a key pair on the device and registers its public key at
    ``register_path``; from then on the session is *bound*: every request
    must carry a short-lived bound cookie, which the browser renews at
    ``refresh_path`` by signing a fresh challenge with that key. A copy of the
    long-lived session cookie taken off the device gets nothing -- not the
    pages, not a new bound cookie, not a re-binding to another key.

    The middleware serves both endpoints itself. Everything lives in the
    session's server-side record (the key, the DBSC session identifier, the
    bound cookie's generation) and in single-use challenge records, through
    the store's atomic writes, on every server-side store -- and, with a
    :class:`~sessionware.CookieStore`, in its revocation store (a logged-in
    cookie session's record there). A ``CookieStore`` without a revocation
    store is refused at construction: the device's key must be held
    server-side.

    Browsers without DBSC keep working unchanged: their sessions never get
    bound. Log-out, revocation and "log out everywhere" delete the record,
    and with it the binding; the browser's next refresh is answered 401 and
    it ends its DBSC session.

    Options:
        bound_cookie_lifetime: Seconds a bound cookie is valid, checked by the
            server (not only by ``Max-Age``). Defaults to 600. Shorter means a
            stolen bound cookie is useful for less time and the browser
            refreshes more often (one signature each time).
        bound_cookie_name: The bound cookie's name. Defaults to
            ``"__Host-dbsc"`` (``Secure``, ``Path=/``, no ``Domain``; it is
            also ``HttpOnly`` and ``SameSite=Lax``).
        register_path: Where browsers register their key (POST). Defaults to
            ``"/dbsc/register"``, below the app's root path.
        refresh_path: Where browsers renew the bound cookie (POST). Defaults
            to ``"/dbsc/refresh"``.
        algorithms: The signature algorithms offered, in order of preference,
            from ``("ES256", "RS256")`` (the default). ``none`` is never
            accepted.
        challenge_lifetime: Seconds a challenge can be used, once. Defaults to
            300.
        required: Paths (prefixes, e.g. ``("/admin",)``) where a logged-in
            session must be bound: a session that is not is refused as below.
            ``True`` for every path, ``False`` (default) for none. With
            ``required``, a browser without DBSC cannot use those paths, and
            the page a log-in redirects to should not be one of them (the
            browser registers right after the log-in response).
        refusal: The answer to a request of a bound session without a valid
            bound cookie (except, for 2 seconds after registration and until
            the first refresh, a request with no bound cookie at all: one the
            browser sent before it had the cookie, such as the log-in's
            redirect) (and, with ``required``, of an unbound logged-in
            session on a required path): ``401`` (default) or ``403``, a
            plain-text response; or a path such as ``"/login"``, a ``303``
            redirect there. The app does not run, the session is not touched,
            and the reason is logged (logger ``"sessionware"``).

    Example::

        app.add_middleware(
            SessionMiddleware,
            secret_key_base=os.environ["SECRET_KEY_BASE"],
            store=SQLiteStore("sessions.db"),
            dbsc=DBSC(bound_cookie_lifetime=600),
        )
    """

    __slots__ = (
        "algorithms",
        "bound_cookie_lifetime",
        "bound_cookie_name",
        "challenge_lifetime",
        "refresh_path",
        "refusal",
        "register_path",
        "required",
    )

    def __init__(
        self,
        *,
        bound_cookie_lifetime: int = 600,
        bound_cookie_name: str = "__Host-dbsc",
        register_path: str = "/dbsc/register",
        refresh_path: str = "/dbsc/refresh",
        algorithms: Sequence[str] = ALGORITHMS,
        challenge_lifetime: int = 300,
        required: bool | Sequence[str] = False,
        refusal: int | str = 401,
    ) -> None:
        self.bound_cookie_lifetime = _seconds("bound_cookie_lifetime", bound_cookie_lifetime, 1, 86400)
        if (
            type(bound_cookie_name) is not str
            or not bound_cookie_name
            or any(not (0x21 <= ord(c) <= 0x7E) or c in '()<>@,;:\\"/[]?={}' for c in bound_cookie_name)
        ):
            raise ConfigurationError(
                f"{_OWNER} expects bound_cookie_name to be a cookie name (a token), got {bound_cookie_name!r}"
            )
        self.bound_cookie_name = bound_cookie_name
        self.register_path = _path("register_path", register_path)
        self.refresh_path = _path("refresh_path", refresh_path)
        if self.register_path == self.refresh_path:
            raise ConfigurationError(f"{_OWNER} expects register_path and refresh_path to differ")
        chosen = (algorithms,) if isinstance(algorithms, str) else tuple(algorithms)
        if not chosen or any(alg not in ALGORITHMS for alg in chosen) or len(set(chosen)) != len(chosen):
            raise ConfigurationError(
                f"{_OWNER} expects algorithms to be some of {list(ALGORITHMS)}, without repeats, "
                f"got {algorithms!r}"
            )
        self.algorithms: tuple[str, ...] = chosen
        self.challenge_lifetime = _seconds("challenge_lifetime", challenge_lifetime, 5, 3600)
        if required is True or required is False:
            self.required: tuple[str, ...] = ("/",) if required else ()
        elif isinstance(required, str) or not all(isinstance(p, str) for p in required):
            raise ConfigurationError(
                f"{_OWNER} expects required to be True, False or a list of path prefixes, got {required!r}"
            )
        else:
            self.required = tuple(_path("required", p) for p in required)
        if isinstance(refusal, bool) or not (
            refusal in (401, 403) or (isinstance(refusal, str) and refusal.startswith("/"))
        ):
            raise ConfigurationError(
                f"{_OWNER} expects refusal to be 401, 403 or a path to redirect to (say '/login'), "
                f"got {refusal!r}"
            )
        if isinstance(refusal, str):
            _path("refusal", refusal)
        self.refusal = refusal

    def __repr__(self) -> str:
        return (
            f"DBSC(bound_cookie_lifetime={self.bound_cookie_lifetime}, "
            f"register_path={self.register_path!r}, refresh_path={self.refresh_path!r}, "
            f"required={self.required!r})"
        )

    def is_required(self, path: str) -> bool:
        """Whether a logged-in session must be bound for ``path`` (see ``required``)."""
        return any(path.startswith(prefix) for prefix in self.required)
