"""CSRF tokens and request checks, without I/O (Plug.CSRFProtection's token format).

The session holds an unmasked secret under ``"_csrf_token"``: 18 random bytes,
base64url (24 characters). Pages get a **masked** token, new on every call, so
the secret itself never appears in a response (BREACH)::

    token = base64url(secret XOR mask) || mask       # 32 + 24 = 56 characters
    mask  = 24 fresh random base64url characters

A request passes if the token it carries unmasks to the session's secret
(compared in constant time) -- the same format Plug and Phoenix use, so a
session shared with a Phoenix app keeps working with LiveView.

Request headers are checked first and can only reject: ``Sec-Fetch-Site`` of
``cross-site`` (or ``same-site`` unless trusted, or ``none``) and an ``Origin``
or ``Referer`` from another origin fail even with a valid token; their absence
is never a pass on its own.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "CSRF_SESSION_KEY",
    "SAFE_METHODS",
    "Rules",
    "check_headers",
    "mask",
    "new_secret",
    "unmask",
    "valid_token",
]

CSRF_SESSION_KEY = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_STATE_LENGTH = 24  # characters: 18 random bytes, base64url
_MASKED_LENGTH = 32 + _STATE_LENGTH


def new_secret() -> str:
    """A fresh unmasked secret for the session."""
    return secrets.token_urlsafe(18)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def mask(secret: str) -> str:
    """A freshly masked token for ``secret`` (which never appears in it)."""
    pad = secrets.token_urlsafe(18)
    return base64.urlsafe_b64encode(_xor(secret.encode(), pad.encode())).decode() + pad


def unmask(token: str) -> str:
    """The secret a well-formed masked token carries (for tests and tools)."""
    masked = base64.b64decode(token[:32].encode(), altchars=b"-_", validate=True)
    return _xor(masked, token[32:].encode()).decode()


def valid_token(token: object, secret: object) -> bool:
    """Whether ``token`` is a masked form of ``secret``: exact format, constant-time compare."""
    if not isinstance(token, str) or not isinstance(secret, str):
        return False
    if len(token) != _MASKED_LENGTH or len(secret) != _STATE_LENGTH or not token.isascii():
        return False
    try:
        masked = base64.b64decode(token[:32].encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    pad = token[32:].encode()
    if len(masked) != _STATE_LENGTH:
        return False
    return hmac.compare_digest(_xor(masked, pad), secret.encode())


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def normalize_origin(origin: str) -> str:
    """``scheme://host[:port]`` in canonical form; raises ValueError for anything else."""
    normalized = _origin_of(origin)
    if normalized is None or normalized != _origin_of(normalized) or urlsplit(origin).path not in ("", "/"):
        raise ValueError(origin)
    return normalized


def check_headers(
    *,
    sec_fetch_site: str | None,
    origin: str | None,
    referer: str | None,
    own_origin: str,
    trusted_origins: Iterable[str],
    trust_same_site: bool,
) -> str | None:
    """Why the request must be refused from its headers alone, or None (the token still decides).

    An ``Origin`` listed in ``trusted_origins`` is let through whatever
    ``Sec-Fetch-Site`` says (a trusted sibling is "same-site", another site
    "cross-site"); with ``trust_same_site`` the browser's ``same-site`` is
    enough, whatever the sibling's origin.
    """
    claimed = None if origin is None else origin.strip()
    if claimed == "null":
        return "opaque origin (Origin: null)"
    if claimed is not None and _origin_of(claimed) in set(trusted_origins):
        return None
    if sec_fetch_site is not None:
        site = sec_fetch_site.strip().lower()
        if site == "cross-site":
            return "cross-site request (Sec-Fetch-Site)"
        if site == "same-site":
            if trust_same_site:
                return None
            return "request from another site of the same registrable domain (Sec-Fetch-Site)"
        if site == "none":
            return "request not initiated by a page (Sec-Fetch-Site: none)"
    allowed = {own_origin, *trusted_origins}
    if claimed is not None:
        if _origin_of(claimed) not in allowed:
            return "request from another origin (Origin)"
        return None
    if referer is not None and _origin_of(referer.strip()) not in allowed:
        return "request from another origin (Referer)"
    return None


def own_origin(scheme: str, host: str) -> str:
    """The request's own origin from its scheme and ``Host``; an unusable host matches no origin."""
    try:
        return normalize_origin(f"{scheme}://{host}")
    except ValueError:
        return f"{scheme}://invalid-host"


class Rules:
    """A CSRF middleware's options, validated once, and the checks that need only them.

    The ASGI and WSGI middlewares and the Flask extension share it, so the same
    options mean the same thing everywhere (see :class:`sessionware.CSRFMiddleware`
    for each). ``exempt`` is paths, or a function of the framework's request
    object (the ASGI scope, the WSGI environ).
    """

    __slots__ = (
        "_exempt_call",
        "_exempt_exact",
        "_exempt_prefixes",
        "max_body_size",
        "trust_same_site",
        "trusted_origins",
    )

    def __init__(
        self,
        *,
        trusted_origins: Iterable[str] = (),
        trust_same_site: bool = False,
        exempt: Iterable[str] | Callable[[Any], bool] = (),
        max_body_size: int = 1024 * 1024,
        owner: str = "CSRFMiddleware",
    ) -> None:
        origins = [trusted_origins] if isinstance(trusted_origins, str) else list(trusted_origins)
        try:
            self.trusted_origins = frozenset(normalize_origin(origin) for origin in origins)
        except ValueError as exc:
            raise ConfigurationError(
                f"{owner} expects trusted_origins like 'https://example.com' (scheme, host and "
                f"port only), got {exc.args[0]!r}"
            ) from None
        if type(trust_same_site) is not bool:
            raise ConfigurationError(
                f"{owner} expects trust_same_site to be True or False, got {trust_same_site!r}"
            )
        if type(max_body_size) is not int or max_body_size < 0:
            raise ConfigurationError(f"{owner} expects max_body_size in bytes, got {max_body_size!r}")
        self.trust_same_site = trust_same_site
        self.max_body_size = max_body_size
        self._exempt_call: Callable[[Any], bool] | None = None
        paths: list[Any] = []
        if callable(exempt):
            self._exempt_call = exempt
        else:
            paths = [exempt] if isinstance(exempt, str) else list(exempt)
            if not all(isinstance(path, str) and path.startswith("/") for path in paths):
                raise ConfigurationError(f"{owner} expects exempt paths starting with '/', got {paths!r}")
        self._exempt_prefixes = tuple(path for path in paths if path.endswith("/"))
        self._exempt_exact = frozenset(path for path in paths if not path.endswith("/"))

    def applies(self, method: str, path: str, request: object) -> bool:
        """Whether a request is checked: an unsafe method, not exempt."""
        if method.upper() in SAFE_METHODS:
            return False
        if self._exempt_call is not None:
            return not self._exempt_call(request)
        return path not in self._exempt_exact and not (
            self._exempt_prefixes and path.startswith(self._exempt_prefixes)
        )

    def header_refusal(
        self, *, scheme: str, host: str, sec_fetch_site: str | None, origin: str | None, referer: str | None
    ) -> str | None:
        """:func:`check_headers` with these options and the request's own origin."""
        return check_headers(
            sec_fetch_site=sec_fetch_site,
            origin=origin,
            referer=referer,
            own_origin=own_origin(scheme, host),
            trusted_origins=self.trusted_origins,
            trust_same_site=self.trust_same_site,
        )
