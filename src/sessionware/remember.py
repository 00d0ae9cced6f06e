"""Remember-me: a long-lived cookie that logs the user in again once the session has ended.

``SessionMiddleware(..., remember=RememberMe())`` and
``session.log_in(user_id, remember=True)``: besides the session cookie, the
browser gets a cookie holding a random 256-bit token (signed, like a
server-side session ID); the store keeps only its SHA-256, with the user, the
browser's user agent and the dates. When a request comes without a live
session but with a valid remember-me cookie, the user is logged in again --
a fresh session under a new ID, with ``session.how == "remember"`` -- and the
token is replaced by a new one. See ``docs/remember-me.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigurationError

__all__ = ["RememberMe"]

_DAY = 24 * 3600


@dataclass(frozen=True, slots=True)
class RememberMe:
    """The remember-me cookie's options (Phoenix 1.8 ``phx.gen.auth`` style).

    Options:
        max_age: Seconds a token stays valid after it was issued, and the
            cookie's ``Max-Age``. Defaults to 60 days.
        reissue_after: A logged-in browser's token is replaced by a fresh one
            (and the old one retired) once it is this many seconds old, so a
            user who keeps coming back stays remembered. Defaults to 7 days.
        grace: Seconds during which a token just replaced is still accepted
            (without being replaced again): a browser's parallel requests race
            the replacement. After that, a replaced token coming back is taken
            as stolen: every session and token of its user is revoked and the
            ``on_remember_theft`` event fires. Defaults to 5.
        cookie_name: The cookie's name. Defaults to ``"remember"``
            (``__Host-remember`` on https, as the session cookie's default
            name is prefixed). Its other attributes are the session cookie's.

    Needs a store with a per-user registry: a server-side store, or
    ``CookieStore(revocation=...)``.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=store, remember=RememberMe(max_age=30 * DAY))
    """

    max_age: int = 60 * _DAY
    reissue_after: int = 7 * _DAY
    grace: int = 5
    cookie_name: str = "remember"

    def __post_init__(self) -> None:
        for name in ("max_age", "reissue_after", "grace"):
            value = getattr(self, name)
            if type(value) is not int or value < (0 if name == "grace" else 1):
                raise ConfigurationError(
                    f"RememberMe expects {name} to be a number of seconds, got {value!r}"
                )
        if self.reissue_after >= self.max_age:
            raise ConfigurationError(
                f"RememberMe expects reissue_after ({self.reissue_after}) to be below max_age "
                f"({self.max_age}), or tokens would expire before they are reissued"
            )
        if self.grace > 60:
            raise ConfigurationError(
                f"RememberMe expects grace to be at most 60 seconds, got {self.grace}: a long grace "
                "lets a stolen token be used alongside the real one unnoticed"
            )
