"""Reading the ``Cookie`` header and writing ``Set-Cookie`` (RFC 6265bis)."""

from __future__ import annotations

import re
from email.utils import formatdate
from typing import Literal

from .errors import ConfigurationError

__all__ = ["CookieAttributes", "find_cookie"]

# RFC 6265 cookie-name is an RFC 7230 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(r"/[\x21-\x3a\x3c-\x7e]*")  # printable ASCII without ';' or space
_DOMAIN = re.compile(
    r"\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"

Secure = bool | Literal["auto"]


def find_cookie(header: str, name: str, target: str | None = None) -> tuple[str | None, int]:
    """Return ``(value, count)`` for cookie ``name`` in a ``Cookie`` header.

    ``count`` is how many cookies carried that name. Names match exactly
    (case-sensitively); values are returned as sent, never unquoted. When the
    name appears more than once the value is None: browsers give no reliable
    order, so a duplicate (for instance one tossed in by a sibling subdomain)
    must not be trusted.
    """
    target = target or name + "="  # callers on the hot path pass it precomputed
    index = header.find(target)
    if index < 0:
        return None, 0
    if header.find(target, index + 1) < 0 and (
        index == 0 or header[index - 1] == ";" or header[index - 2 : index] == "; "
    ):
        # The common case, one cookie of that name cleanly delimited, without splitting.
        start = index + len(target)
        end = header.find(";", start)
        return (header[start:] if end < 0 else header[start:end]).strip(" \t"), 1
    found: str | None = None
    count = 0
    for pair in header.split(";"):
        key, eq, value = pair.partition("=")
        if eq and key.strip(" \t") == name:
            count += 1
            found = value.strip(" \t")
    return (found if count == 1 else None), count


class CookieAttributes:
    """The session cookie's name and attributes, validated once.

    See :class:`sessionware.SessionMiddleware` for what each option means.
    ``name`` is the name keys are bound to. With ``prefix="auto"`` (the
    middleware's default name) the cookie a browser sees is called
    ``__Host-<name>`` on https requests (``__Secure-<name>`` when a domain or
    a narrower path rules ``__Host-`` out), and ``<name>`` on plain http, where
    browsers refuse prefixed cookies; :meth:`name_for` says which.
    """

    __slots__ = (
        "_deletion",
        "_insecure_tail",
        "_names",
        "_secure_tail",
        "_tails_for",
        "expires",
        "name",
        "persistent",
        "secure",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: Secure = "auto",
        same_site: str = "lax",
        partitioned: bool = False,
        persistent: bool = False,
        prefix: Literal["auto"] | None = None,
        owner: str = "SessionMiddleware",
    ) -> None:
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise ConfigurationError(
                f"{owner} expects cookie_name to be a cookie token (letters, digits and "
                f"!#$%&'*+-.^_`|~), got {name!r}"
            )
        if not isinstance(path, str) or _PATH.fullmatch(path) is None:
            raise ConfigurationError(
                f"{owner} expects path to start with '/' and hold no ';', spaces or control "
                f"characters, got {path!r}"
            )
        if domain is not None and (not isinstance(domain, str) or _DOMAIN.fullmatch(domain) is None):
            raise ConfigurationError(
                f"{owner} expects domain to be a host name such as 'example.com', got {domain!r}"
            )
        for option, value in (("partitioned", partitioned), ("persistent", persistent)):
            if type(value) is not bool:
                raise ConfigurationError(f"{owner} expects {option} to be True or False, got {value!r}")
        if secure is not True and secure is not False and secure != "auto":
            raise ConfigurationError(f"{owner} expects secure to be True, False or 'auto', got {secure!r}")
        site = _SAME_SITE.get(same_site.lower()) if isinstance(same_site, str) else None
        if site is None:
            raise ConfigurationError(
                f"{owner} expects same_site to be 'lax', 'strict' or 'none', got {same_site!r}"
            )

        lowered = name.lower()  # browsers match prefixes case-insensitively
        prefixed = lowered.startswith(("__host-", "__secure-"))
        if prefixed:
            if secure is False:
                raise ConfigurationError(
                    f"{owner} expects secure to be True for a cookie named {name!r}: browsers "
                    "refuse __Host- and __Secure- cookies without Secure"
                )
            secure = True  # a prefixed cookie is only ever kept with Secure
        if lowered.startswith("__host-") and (path != "/" or domain is not None):
            raise ConfigurationError(
                f"{owner} expects path='/' and no domain for a cookie named {name!r}: that is "
                "what the __Host- prefix means; use a __Secure- name to set a domain or path"
            )
        if site == "None" and secure is not True:
            raise ConfigurationError(
                f"{owner} expects secure=True with same_site='none': browsers refuse "
                "SameSite=None cookies without Secure"
            )
        if partitioned and secure is not True:
            raise ConfigurationError(
                f"{owner} expects secure=True with partitioned=True: browsers refuse "
                "Partitioned cookies without Secure"
            )

        self.name = name
        self.secure: Secure = secure
        self.persistent = persistent
        #: Whether a persistent cookie carries ``Expires`` beside ``Max-Age`` (Flask's does).
        self.expires = False
        self._names = (name, name)  # (plain http, https)
        if prefix == "auto" and not prefixed and secure is not False:
            secured = ("__Host-" if path == "/" and domain is None else "__Secure-") + name
            self._names = (secured if secure is True else name, secured)
        tail = f"; Path={path}" + (f"; Domain={domain}" if domain else "")
        flags = f"; HttpOnly; SameSite={site}" + ("; Partitioned" if partitioned else "")
        self._secure_tail = tail, "; Secure" + flags
        self._insecure_tail = tail, flags
        #: What follows the value (before and after any Max-Age), on plain http and on https.
        self._tails_for = (self._tails(False), self._tails(True))
        self._deletion = {
            https: f"{self._names[https]}={tail}; Max-Age=0; Expires={_EPOCH}{self._tails(https)[1]}"
            for https in (True, False)
        }

    def name_for(self, https: bool) -> str:
        """The cookie's name on an https (or plain http) request."""
        return self._names[https]

    def _tails(self, https: bool) -> tuple[str, str]:
        if self.secure is True or (self.secure == "auto" and https):
            return self._secure_tail
        return self._insecure_tail

    def header(self, value: str, *, https: bool, max_age: int | None, now: int | None = None) -> str:
        """The ``Set-Cookie`` value that stores ``value``, for ``max_age`` seconds if given
        (and, with :attr:`expires`, until ``now + max_age``)."""
        head, flags = self._tails_for[https]
        if max_age is None:  # a browser-session cookie
            return f"{self._names[https]}={value}{head}{flags}"
        if self.expires and now is not None:
            head = f"{head}; Max-Age={max_age}; Expires={formatdate(now + max_age, usegmt=True)}"
            return f"{self._names[https]}={value}{head}{flags}"
        return f"{self._names[https]}={value}{head}; Max-Age={max_age}{flags}"

    def deletion(self, *, https: bool) -> str:
        """The ``Set-Cookie`` value that removes the cookie, with the attributes it was set with."""
        return self._deletion[https]
