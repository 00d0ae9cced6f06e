"""Share sessions with a Phoenix app: read and write the cookies ``Plug.Session`` makes.

A Python app and a Phoenix app behind one domain, or a team moving from one to
the other, can share one session cookie: the same ``secret_key_base``, the same
salts, the same bytes. A user logged in on one side is logged in on the other.

- :class:`PhoenixCookieStore` is a store for :class:`~sessionware.SessionMiddleware`
  configured like a Phoenix endpoint's ``Plug.Session`` (``store: :cookie``).
- :func:`decode_cookie` and :func:`encode_cookie` are plain functions for tools
  and tests; ``python -m sessionware decode --phoenix`` prints a cookie's session.
- :func:`binary_to_term` and :func:`term_to_binary` are the Erlang term codec
  underneath (see ``sessionware._etf`` for every type and limit).

Formats: signed ``SFMyNTY.`` (the Phoenix default; HMAC-SHA384/512 variants are
read too), encrypted ``XCP.`` (plug_crypto 2.x, XChaCha20-Poly1305) and
encrypted ``QTEyOEdDTQ.`` (plug_crypto 1.x, AES-GCM), read and written as Plug
does -- including its leniencies (padded or trailing-bit base64, bytes after
the term, compressed terms) and its refusals. The encrypted ``XCP.`` format
needs the ``phoenix`` extra: ``pip install 'sessionware[phoenix]'`` (PyNaCl).

Session values are Erlang terms as Python values: ``str`` (UTF-8 binaries),
``bytes`` (other binaries, such as phx.gen.auth's ``user_token``), ``int``,
``float``, ``bool``, ``None`` (``nil``), :class:`Atom`, ``list``, ``tuple``,
``dict`` (any term keys), :class:`ImproperList` and :class:`BitString`. A value
the app did not change is written back exactly as it came.

**sessionware's own state** (when the session began, its last activity, the
log-in with :meth:`~sessionware.Session.log_in`) travels in the same cookie,
under the session key ``"_sessionware"``, a map Phoenix carries along without
looking at it. The app never sees that key. A cookie without it (one Phoenix
wrote, say after its own log-in cleared the session) is a session that begins
with the request that reads it; it gets the key the first time sessionware
writes. Phoenix's requests do not count as activity, so the idle timeout counts
the Python side's requests only. See ``docs/phoenix.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from . import _plug, _record
from ._codec import MAX_COOKIE_BYTES
from ._etf import Atom, BitString, EtfError, ImproperList, binary_to_term, term_to_binary
from ._expiry import Expiry
from .errors import ConfigurationError, InvalidCookie, SerializationError, SessionTooLarge
from .stores.cookie import CookieStore

if TYPE_CHECKING:
    from ._keys import KeyRing

__all__ = [
    "META_KEY",
    "Atom",
    "BitString",
    "EtfError",
    "ImproperList",
    "PhoenixCookieStore",
    "binary_to_term",
    "decode_cookie",
    "encode_cookie",
    "term_to_binary",
]

#: The session key under which sessionware keeps its own state in a Plug cookie.
META_KEY = "_sessionware"
#: Plug's cookie store refuses a secret_key_base shorter than this.
MIN_SECRET_KEY_BASE = 64
#: The largest term a cookie's (compressed) payload may inflate to.
MAX_TERM_SIZE = 64 * 1024
FORMATS = ("signed", "xcp", "a128gcm")
#: ``; expires=Thu, 01 Jan 1970 00:00:00 GMT``: Plug writes it beside every ``max-age``.
_PLUG_EXPIRES_BYTES = 39
#: The attributes of ``Plug.Session``'s defaults: ``; path=/; HttpOnly``.
_PLUG_DEFAULT_ATTRIBUTES = "; path=/; HttpOnly"
_MAX_KEY_LENGTH = 1024
_ROTATING_KEYS = frozenset(
    {"secret_key_base", "signing_salt", "encryption_salt", "key_iterations", "key_length", "key_digest"}
)


class _Config(NamedTuple):
    """One reading (or writing) configuration's derived keys."""

    signing_key: bytes
    encryption_key: bytes | None  # None: signed cookies


class _TermError(SerializationError):
    """A session value has no Erlang term (a SerializationError with Plug's wording)."""

    def __init__(self, key: Any, detail: str) -> None:
        self.key = key
        where = f"session[{key!r}]" if key is not None else "the session"
        Exception.__init__(
            self,
            f"{where} cannot be stored in a Plug session: {detail}. Plug sessions hold Erlang terms: "
            "dict, list, tuple, str, bytes, int, float, bool, None and sessionware.phoenix.Atom",
        )


# -- options -------------------------------------------------------------------------


def _bytes(value: object, name: str, owner: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    raise ConfigurationError(f"{owner} expects {name} to be a str or bytes, got {type(value).__name__}")


def _secret(value: object, owner: str) -> bytes:
    secret = _bytes(value, "secret_key_base", owner)
    if len(secret) < MIN_SECRET_KEY_BASE:
        raise ConfigurationError(
            f"{owner} expects secret_key_base to be at least {MIN_SECRET_KEY_BASE} bytes, as Plug's "
            f"cookie store does, got {len(secret)}; use the Phoenix endpoint's secret_key_base"
        )
    return secret


def _key_options(owner: str, iterations: object, length: object, digest: object) -> tuple[int, int, str]:
    if type(iterations) is not int or iterations < 1:
        raise ConfigurationError(f"{owner} expects key_iterations to be an integer >= 1, got {iterations!r}")
    if type(length) is not int or not 1 <= length <= _MAX_KEY_LENGTH:
        raise ConfigurationError(
            f"{owner} expects key_length to be a number of bytes from 1 to {_MAX_KEY_LENGTH}, got {length!r}"
        )
    if not isinstance(digest, str) or digest.lower().removeprefix(":") not in _plug.DIGESTS:
        raise ConfigurationError(
            f"{owner} expects key_digest to be one of {sorted(_plug.DIGESTS)} (Plug's :sha is SHA-1), "
            f"got {digest!r}"
        )
    return iterations, length, digest.lower().removeprefix(":")


def _write_format(owner: str, format: object, encrypted: bool, length: int) -> str:
    if format is None:
        format = "xcp" if encrypted else "signed"
    if not isinstance(format, str) or format.lower() not in FORMATS:
        raise ConfigurationError(f"{owner} expects format to be one of {list(FORMATS)}, got {format!r}")
    format = format.lower()
    if (format == "signed") == encrypted:
        raise ConfigurationError(
            f"{owner} expects format 'signed' without encryption_salt and 'xcp' or 'a128gcm' with "
            f"one, as Plug decides by encryption_salt; got format={format!r} "
            f"{'with' if encrypted else 'without'} encryption_salt"
        )
    if format == "xcp" and length != 32:
        raise ConfigurationError(
            f"{owner} expects key_length 32 to write 'xcp' cookies (plug_crypto 2.x needs 256-bit keys), "
            f"got {length}"
        )
    if format == "a128gcm" and min(length, 32) not in (16, 24, 32):
        raise ConfigurationError(
            f"{owner} expects key_length 16, 24 or at least 32 to write 'a128gcm' cookies, got {length}"
        )
    return format


def _config(
    secret: bytes,
    signing_salt: bytes,
    encryption_salt: bytes | None,
    iterations: int,
    length: int,
    digest: str,
) -> _Config:
    derive = _plug.derive_key
    return _Config(
        derive(secret, signing_salt, iterations, length, digest),
        None if encryption_salt is None else derive(secret, encryption_salt, iterations, length, digest),
    )


# -- reading and writing ---------------------------------------------------------------


def _open(cookie: str, config: _Config) -> bytes | None:
    """The payload a cookie carries under one configuration, or None: Plug's read_raw_cookie."""
    if config.encryption_key is None:
        return _plug.verify(cookie, config.signing_key)
    if cookie.startswith(_plug.XCP_HEADER):
        return _plug.xcp_decrypt(cookie, config.encryption_key)
    return _plug.a128gcm_decrypt(cookie, config.encryption_key, config.signing_key)


def _read(cookie: str, configs: Sequence[_Config]) -> tuple[dict[Any, Any], int]:
    """The session map and the index of the configuration that opened it.

    Raises ``InvalidCookie``: ``"mac"`` when no configuration verifies it (Plug
    logs "could not verify"), ``"payload"`` when the term is refused or not a
    map (Plug logs "could not decode"; both give an empty session).
    """
    for index, config in enumerate(configs):  # noqa: B007 - the index is returned
        payload = _open(cookie, config)
        if payload is not None:
            break
    else:
        raise InvalidCookie("mac")
    try:
        term = binary_to_term(payload, max_size=MAX_TERM_SIZE)
    except EtfError:
        raise InvalidCookie("payload") from None
    if not isinstance(term, dict):
        raise InvalidCookie("payload")
    return term, index


def _seal(payload: bytes, config: _Config, format: str) -> str:
    if format == "signed":
        return _plug.sign(payload, config.signing_key)
    assert config.encryption_key is not None
    if format == "xcp":
        return _plug.xcp_encrypt(payload, config.encryption_key)
    return _plug.a128gcm_encrypt(payload, config.encryption_key, config.signing_key)


def _dump(session: Mapping[Any, Any], minor_version: int) -> bytes:
    """``term_to_binary(session)``, or an error naming the key whose value has no term."""
    data = session if isinstance(session, dict) else dict(session)
    try:
        return term_to_binary(data, minor_version=minor_version)
    except EtfError as exc:
        for key, value in dict.items(data):
            try:
                term_to_binary(key)
            except EtfError as inner:
                raise _TermError(None, f"the key {key!r}: {inner}") from exc
            try:
                term_to_binary(value, minor_version=minor_version)
            except EtfError as inner:
                raise _TermError(key, str(inner)) from exc
        raise _TermError(None, str(exc)) from exc


def decode_cookie(
    cookie: str,
    *,
    secret_key_base: str | bytes,
    signing_salt: str | bytes,
    encryption_salt: str | bytes | None = None,
    key_iterations: int = 1000,
    key_length: int = 32,
    key_digest: str = "sha256",
) -> dict[Any, Any] | None:
    """The session a Plug session cookie holds, or None where Plug would refuse it.

    ``cookie`` is the cookie's value (without ``name=``). The options are the
    Phoenix endpoint's ``Plug.Session`` options (``secret_key_base`` is the
    endpoint's). Without ``encryption_salt`` the cookie must be signed; with
    one, encrypted (``XCP.`` or ``QTEyOEdDTQ.``). None means Plug would yield
    an empty session: the cookie does not verify, or its term is refused (see
    :func:`binary_to_term`) or is not a map. An empty map decodes to ``{}``.
    The map is returned whole, ``"_sessionware"`` included.

    Raises :class:`~sessionware.ConfigurationError` for invalid options (a
    ``secret_key_base`` under 64 bytes, as Plug).
    """
    owner = "decode_cookie"
    iterations, length, digest = _key_options(owner, key_iterations, key_length, key_digest)
    config = _config(
        _secret(secret_key_base, owner),
        _bytes(signing_salt, "signing_salt", owner),
        None if encryption_salt is None else _bytes(encryption_salt, "encryption_salt", owner),
        iterations,
        length,
        digest,
    )
    if not isinstance(cookie, str):
        raise TypeError(f"decode_cookie expects the cookie value as a str, got {type(cookie).__name__}")
    try:
        return _read(cookie, (config,))[0]
    except InvalidCookie:
        return None


def encode_cookie(
    session: Mapping[Any, Any],
    *,
    secret_key_base: str | bytes,
    signing_salt: str | bytes,
    encryption_salt: str | bytes | None = None,
    format: str | None = None,
    key_iterations: int = 1000,
    key_length: int = 32,
    key_digest: str = "sha256",
    minor_version: int = 1,
    key: str | None = None,
    attributes: str = _PLUG_DEFAULT_ATTRIBUTES,
) -> str:
    """The cookie value ``Plug.Session`` would write for ``session``.

    ``format`` is ``"signed"`` (the default without ``encryption_salt``),
    ``"xcp"`` (the default with one; plug_crypto 2.x) or ``"a128gcm"`` (for apps
    still on plug_crypto 1.x, which cannot read ``XCP.``). ``minor_version`` is
    ``term_to_binary``'s: 1 writes atoms as OTP 25 does (the default), 2 as OTP
    26+. Signed cookies of maps up to 32 keys are byte-identical to Plug's.

    The value is refused with :class:`~sessionware.SessionTooLarge` if Plug
    could not send it: Plug allows 4096 bytes for the whole ``Set-Cookie``
    line, ``<key>=<value>`` and its ``attributes``. ``key`` is the endpoint's
    ``:key`` (the cookie name; none counts no name) and ``attributes`` what
    Plug writes after the value, by default ``"; path=/; HttpOnly"`` (add
    ``"; SameSite=Lax"``, ``"; secure"``, ``"; expires=...; max-age=..."`` as
    the endpoint sets them).

    Raises :class:`~sessionware.SerializationError` naming the key whose value
    has no Erlang term, and :class:`~sessionware.ConfigurationError` for invalid
    options.
    """
    owner = "encode_cookie"
    iterations, length, digest = _key_options(owner, key_iterations, key_length, key_digest)
    written = _write_format(owner, format, encryption_salt is not None, length)
    if minor_version not in (1, 2):
        raise ConfigurationError(f"{owner} expects minor_version 1 or 2, got {minor_version!r}")
    config = _config(
        _secret(secret_key_base, owner),
        _bytes(signing_salt, "signing_salt", owner),
        None if encryption_salt is None else _bytes(encryption_salt, "encryption_salt", owner),
        iterations,
        length,
        digest,
    )
    if not isinstance(session, Mapping):
        raise _TermError(None, f"a Plug session is a map, got {type(session).__name__}")
    value = _seal(_dump(session, minor_version), config, written)
    size = (0 if key is None else len(key) + 1) + len(value) + len(attributes)
    if size > MAX_COOKIE_BYTES:
        raise SessionTooLarge(size, MAX_COOKIE_BYTES)
    return value


# -- the store -------------------------------------------------------------------------


class PhoenixCookieStore(CookieStore):
    """Keep the session in a ``Plug.Session`` cookie a Phoenix app reads and writes too.

    Configure it as the Phoenix endpoint's ``@session_options`` are configured:
    the middleware's ``secret_key_base`` is the endpoint's ``secret_key_base``
    (at least 64 bytes, as Plug requires) and its ``cookie_name`` the ``:key``.
    With a list of secrets, the first writes and every one reads (a cookie read
    under a later one is re-issued under the first).

    The session holds Erlang terms as Python values (see
    :mod:`sessionware.phoenix`); keys the app does not change are written back
    as they came, so ``user_token`` bytes, ``live_socket_id`` and atoms in
    nested maps survive. ``_csrf_token`` keeps Plug's format under
    :class:`~sessionware.CSRFMiddleware`, and flash messages use
    ``"phoenix_flash"`` as Phoenix does. sessionware's timestamps and log-in
    travel under ``"_sessionware"`` (the app never sees it; Phoenix keeps it);
    a cookie without it starts a session at the request that reads it.
    Phoenix code can write that key too; a map of the wrong shape is refused,
    and a ``revocation`` store refuses log-ins the Python side did not make.
    A cookie is written only if Plug could write it back: its whole
    ``Set-Cookie`` line, as Plug formats it with this middleware's cookie
    options (so configure them as the endpoint's), at most 4096 bytes, else
    ``SessionTooLarge``.
    See ``docs/phoenix.md`` for how log-ins on the two sides interact.

    **Expiry.** Requests Phoenix serves do not count as activity: only the
    Python side's do. An idle timeout would therefore end a session that is
    busy on the Phoenix side, and the next write from Python would replace
    the cookie, logging the user out of Phoenix too. So with this store the
    middleware's default ``expiry`` is ``"aal1"`` (no idle timeout, 30 days
    absolute, counted from the Python side's first sight of the session or
    its last :meth:`~sessionware.Session.log_in`), and an ``expiry`` with an
    idle timeout, which you may still choose, logs a warning at start-up.

    Options:
        signing_salt: The endpoint's ``:signing_salt``. Required.
        encryption_salt: The endpoint's ``:encryption_salt``; None (the Phoenix
            default) for signed cookies, which the client **can read**.
        key_iterations: ``:key_iterations``. Defaults to 1000.
        key_length: ``:key_length`` in bytes. Defaults to 32 (required for
            ``"xcp"``).
        key_digest: ``:key_digest``: ``"sha256"`` (default), ``"sha"``,
            ``"sha224"``, ``"sha384"`` or ``"sha512"``.
        format: What to write: ``"signed"`` (default without
            ``encryption_salt``), ``"xcp"`` (default with it; plug_crypto 2.x)
            or ``"a128gcm"`` (for a Phoenix app on plug_crypto 1.x). Every
            encrypted format is read whatever this says.
        minor_version: 1 (default) writes atoms as OTP 25 does, 2 as OTP 26+;
            Phoenix reads both.
        rotating_options: ``:rotating_options``: a list of dicts of the options
            above (``signing_salt`` required; ``secret_key_base`` allowed),
            tried in order after the main ones when reading; cookies they open
            are re-issued under the main ones.
        revocation: A server-side store keeping a record per logged-in session,
            as for :class:`~sessionware.CookieStore`: a cookie copied before a
            log-out stops working on the Python side (Phoenix cannot be told).
            ``False`` acknowledges cookie-only sessions (nothing is logged).

    Example::

        # plug Plug.Session, store: :cookie, key: "_my_app_key", signing_salt: "pUb5igN8", same_site: "Lax"
        app.add_middleware(
            SessionMiddleware,
            secret_key_base=os.environ["SECRET_KEY_BASE"],  # the endpoint's
            cookie_name="_my_app_key",
            store=PhoenixCookieStore(signing_salt="pUb5igN8"),
        )
    """

    default_expiry: ClassVar[Expiry | str] = "aal1"

    __slots__ = (
        "encryption_salt",
        "format",
        "key_digest",
        "key_iterations",
        "key_length",
        "minor_version",
        "rotating_options",
        "signing_salt",
    )

    def __init__(
        self,
        *,
        signing_salt: str | bytes,
        encryption_salt: str | bytes | None = None,
        key_iterations: int = 1000,
        key_length: int = 32,
        key_digest: str = "sha256",
        format: str | None = None,
        minor_version: int = 1,
        rotating_options: Sequence[Mapping[str, Any]] = (),
        revocation: Any = None,
    ) -> None:
        owner = "PhoenixCookieStore"
        super().__init__(encrypt=encryption_salt is not None, revocation=revocation)
        self.signing_salt = _bytes(signing_salt, "signing_salt", owner)
        self.encryption_salt = (
            None if encryption_salt is None else _bytes(encryption_salt, "encryption_salt", owner)
        )
        self.key_iterations, self.key_length, self.key_digest = _key_options(
            owner, key_iterations, key_length, key_digest
        )
        self.format = _write_format(owner, format, encryption_salt is not None, self.key_length)
        if minor_version not in (1, 2):
            raise ConfigurationError(f"{owner} expects minor_version 1 or 2, got {minor_version!r}")
        self.minor_version = minor_version
        if isinstance(rotating_options, Mapping) or not isinstance(rotating_options, Sequence):
            raise ConfigurationError(f"{owner} expects rotating_options to be a list of dicts of options")
        checked: list[dict[str, Any]] = []
        for options in rotating_options:
            if not isinstance(options, Mapping) or "signing_salt" not in options:
                raise ConfigurationError(
                    f"{owner} expects each of rotating_options to be a dict with at least signing_salt"
                )
            unknown = set(options) - _ROTATING_KEYS
            if unknown:
                raise ConfigurationError(
                    f"{owner} expects rotating_options to hold only {sorted(_ROTATING_KEYS)}, "
                    f"got {sorted(unknown)}"
                )
            where = f"{owner} rotating_options[{len(checked)}]"
            entry: dict[str, Any] = {"signing_salt": _bytes(options["signing_salt"], "signing_salt", where)}
            salt = options.get("encryption_salt")
            entry["encryption_salt"] = None if salt is None else _bytes(salt, "encryption_salt", where)
            entry["key_options"] = _key_options(
                where,
                options.get("key_iterations", 1000),
                options.get("key_length", 32),
                options.get("key_digest", "sha256"),
            )
            if "secret_key_base" in options:
                entry["secret_key_base"] = _secret(options["secret_key_base"], where)
            checked.append(entry)
        self.rotating_options: tuple[dict[str, Any], ...] = tuple(checked)

    def __repr__(self) -> str:
        extra = f", revocation={self.revocation!r}" if self.revocation is not None else ""
        extra = ", revocation=False" if self.cookie_only else extra
        return (
            f"PhoenixCookieStore(format={self.format!r}, key_iterations={self.key_iterations}, "
            f"key_length={self.key_length}, key_digest={self.key_digest!r}{extra})"
        )

    def expiry_warning(self, expiry: Expiry) -> str | None:
        if expiry.idle_timeout is None:
            return None
        return (
            f"an idle timeout ({expiry.idle_timeout} s) with PhoenixCookieStore counts the Python "
            "side's requests only: a user busy on the Phoenix side past it is logged out (of both, "
            "at the next write from Python); Expiry(idle_timeout=None, absolute_timeout=...) avoids it"
        )

    def valid_csrf_token(self, keys: KeyRing, state: str, token: str, host: str) -> bool:
        """Accept Plug's host-bound CSRF token (``get_csrf_token_for/1`` with an absolute URL).

        Its key is PBKDF2-SHA256 of the endpoint's ``secret_key_base`` salted with
        the session's CSRF state (not cached: the salt changes per session); the
        signed payload is 24 random characters and the host, which must be this
        request's (Plug's ``:allow_hosts`` is not supported).
        """
        if not token.startswith(_plug.SIGNED_HEADER + ".") or len(state) != _CSRF_STATE_LENGTH:
            return False
        for secret in keys._secrets:
            key = _plug.derive_key.__wrapped__(secret, state.encode(), 1000, 32, "sha256")
            payload = _plug.verify(token, key)
            if payload is not None:
                return payload[_CSRF_STATE_LENGTH:] == host.encode() and len(payload) > _CSRF_STATE_LENGTH
        return False

    def cookie_codec(self, keys: KeyRing, cookie_name: str) -> _PhoenixCodec:
        """Plug's cookie format, with keys derived from the middleware's secrets (see the class)."""
        secrets = [_secret(secret, "SessionMiddleware with PhoenixCookieStore") for secret in keys._secrets]
        options = (self.key_iterations, self.key_length, self.key_digest)
        configs = [_config(secret, self.signing_salt, self.encryption_salt, *options) for secret in secrets]
        for entry in self.rotating_options:
            for secret in [entry["secret_key_base"]] if "secret_key_base" in entry else secrets:
                configs.append(
                    _config(secret, entry["signing_salt"], entry["encryption_salt"], *entry["key_options"])
                )
        return _PhoenixCodec(tuple(configs), self.format, self.minor_version)


class _PhoenixCodec:
    """The engine's cookie codec for Plug cookies (see ``CookieStore.cookie_codec``).

    A session record's data part is the ETF of the app's map (without
    ``"_sessionware"``), canonically encoded so that comparing bytes tells
    whether the app changed anything; its times and metadata come from, and go
    back to, the ``"_sessionware"`` map.
    """

    __slots__ = ("_configs", "_format", "_minor_version")

    def __init__(self, configs: tuple[_Config, ...], format: str, minor_version: int) -> None:
        self._configs = configs
        self._format = format
        self._minor_version = minor_version

    @staticmethod
    def check_header(header: str, max_age: bool) -> None:
        """Refuse a ``Set-Cookie`` line Plug could not write back.

        Plug raises ``CookieOverflowError`` (a 500 in the Phoenix app) for a
        whole ``Set-Cookie`` over 4096 bytes. Its attributes are the engine's,
        spelled alike, plus ``; expires=<date>`` beside a ``max-age``.
        """
        size = len(header) + (_PLUG_EXPIRES_BYTES if max_age else 0)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(size, MAX_COOKIE_BYTES)

    def decode(self, value: str) -> tuple[bytes, bool]:
        """The record a Plug cookie holds and whether a non-primary configuration opened it."""
        term, index = _read(value, self._configs)
        created, touched, auth, meta_json = _unstamp(term)
        try:
            data = term_to_binary(term, minor_version=self._minor_version)
        except EtfError:  # pragma: no cover - whatever decodes, encodes
            raise InvalidCookie("payload") from None
        return _record.pack(created, touched, auth, meta_json, data), index != 0

    def encode(self, record: bytes) -> str:
        """The Plug cookie for a record: its data map plus ``"_sessionware"``."""
        parsed = _record.unpack(record)
        term = binary_to_term(parsed.data_json)
        stamp: dict[str, Any] = {"created_at": parsed.created_at, "last_active": parsed.touched_at}
        if parsed.auth_at is not None:
            stamp["auth_at"] = parsed.auth_at
        if parsed.meta:
            stamp["meta"] = parsed.meta
        term[META_KEY] = stamp
        return _seal(term_to_binary(term, minor_version=self._minor_version), self._configs[0], self._format)

    def load_data(self, data: bytes) -> dict[Any, Any]:
        term = binary_to_term(data)
        assert isinstance(term, dict)
        return term

    def dump_data(self, data: dict[Any, Any]) -> bytes:
        if dict.__contains__(data, META_KEY):
            raise _TermError(META_KEY, "the key is sessionware's own in a Plug session")
        return _dump(data, self._minor_version)


_MAX_TIME = 2**63
_CSRF_STATE_LENGTH = 24  # Plug's CSRF state and the random prefix of a host-bound token


def _unstamp(term: dict[Any, Any]) -> tuple[int, int, int | None, bytes]:
    """Take sessionware's state out of a session map: (created, touched, auth, meta JSON).

    No ``"_sessionware"`` key gives zero times, which the engine reads as a session
    that starts now.
    """
    stamp = term.pop(META_KEY, None)
    if stamp is None:
        return 0, 0, None, b""
    if not isinstance(stamp, dict):
        raise InvalidCookie("payload")
    created: Any = stamp.get("created_at")
    touched: Any = stamp.get("last_active")
    auth: Any = stamp.get("auth_at")
    meta = stamp.get("meta", {})
    for moment in (created, touched) if auth is None else (created, touched, auth):
        if type(moment) is not int or not 0 < moment < _MAX_TIME:
            raise InvalidCookie("payload")
    if not isinstance(meta, dict) or not all(type(key) is str for key in meta):
        raise InvalidCookie("payload")
    _record.check_meta(meta)  # Phoenix code can write "_sessionware" like any key: the shapes log_in writes
    try:
        meta_json = _record.dump_meta(meta)
    except (TypeError, ValueError):
        raise InvalidCookie("payload") from None
    return created, touched, auth, meta_json
