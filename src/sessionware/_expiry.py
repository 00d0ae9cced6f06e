"""When a session ends: an idle timeout and an absolute timeout, as pure functions of time.

Both are enforced from times the server controls (the authenticated cookie
payload or the store record) and never from a cookie's ``Max-Age``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._arguments import CheckedArguments
from .errors import ConfigurationError

__all__ = ["AAL1", "AAL2", "AAL3", "PRESETS", "Expiry"]

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

#: How far in the future a recorded time may lie (clock skew between app servers)
#: before the session is refused as forged or corrupt.
MAX_CLOCK_SKEW = 60


@dataclass(frozen=True, slots=True)
class Expiry(CheckedArguments):
    """How long a session lives.

    A session ends at whichever comes first: ``idle_timeout`` seconds after its
    last recorded activity, or ``absolute_timeout`` seconds after it began (or,
    once the log-in lifecycle is used, after the last log-in). Activity slides
    the idle deadline; nothing but a new log-in moves the absolute one. A
    session is valid while ``now < deadline``: at the deadline itself it has
    expired.

    Options:
        idle_timeout: Seconds without a request before the session ends.
            ``None`` disables it (allowed, since the absolute timeout still
            bounds the session).
        absolute_timeout: Seconds from the session's start after which it ends
            regardless of activity. ``None`` disables it.
        touch_interval: A request that does not change the session records
            activity (rewrites the cookie or the store record) only when this
            many seconds have passed since the last recorded activity, so
            read-only traffic does not write on every request. The idle timeout
            is therefore counted from a time up to ``touch_interval`` seconds
            before the last request. Defaults to 60 seconds, or a tenth of
            ``idle_timeout`` when that is shorter. Must be below
            ``idle_timeout``.
        allow_unlimited: Both timeouts ``None`` is refused unless this is
            ``True``. Defaults to ``False``.

    Presets (NIST SP 800-63B; see ``docs/security.md``): :data:`AAL1` (no idle
    timeout, 30 days absolute), :data:`AAL2` (30 minutes idle, 12 hours
    absolute; **the default**) and :data:`AAL3` (15 minutes idle, 12 hours
    absolute).

    Example::

        Expiry(idle_timeout=3600, absolute_timeout=7 * 24 * 3600)
    """

    idle_timeout: int | None
    absolute_timeout: int | None
    touch_interval: int | None = None
    allow_unlimited: bool = False
    _touch_every: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "absolute_timeout"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value <= 0):
                raise ConfigurationError(
                    f"Expiry expects {name} to be a positive number of seconds or None, got {value!r}"
                )
        if self.idle_timeout is None and self.absolute_timeout is None and not self.allow_unlimited:
            raise ConfigurationError(
                "Expiry expects idle_timeout or absolute_timeout to be set; sessions that never "
                "end must be asked for explicitly with allow_unlimited=True"
            )
        idle, absolute = self.idle_timeout, self.absolute_timeout
        if idle is not None and absolute is not None and idle > absolute:
            raise ConfigurationError(
                f"Expiry expects idle_timeout ({idle}) to be at most absolute_timeout ({absolute}): "
                "every session ends at its absolute timeout, so the idle one could never apply; "
                "lower idle_timeout or raise absolute_timeout"
            )
        touch = self.touch_interval
        if touch is None:
            touch = 60 if self.idle_timeout is None else min(60, self.idle_timeout // 10)
            object.__setattr__(self, "touch_interval", touch)
        if type(touch) is not int or touch < 0:
            raise ConfigurationError(
                f"Expiry expects touch_interval to be a number of seconds >= 0, got {touch!r}"
            )
        if self.idle_timeout is not None and touch >= self.idle_timeout:
            raise ConfigurationError(
                f"Expiry expects touch_interval ({touch}) to be below idle_timeout "
                f"({self.idle_timeout}), or the idle timeout could pass unrecorded"
            )
        object.__setattr__(self, "_touch_every", touch)

    def deadline(self, created_at: int, touched_at: int) -> int | None:
        """The first second at which the session is no longer valid, or None."""
        idle = None if self.idle_timeout is None else touched_at + self.idle_timeout
        absolute = None if self.absolute_timeout is None else created_at + self.absolute_timeout
        if idle is None:
            return absolute
        if absolute is None:
            return idle
        return min(idle, absolute)

    def is_valid(self, created_at: int, touched_at: int, now: int) -> bool:
        """Whether a session with these times is alive at ``now``."""
        if touched_at < created_at or touched_at > now + MAX_CLOCK_SKEW:
            return False  # corrupt, or forged in the future
        idle = self.idle_timeout
        if idle is not None and now >= touched_at + idle:
            return False
        absolute = self.absolute_timeout
        return absolute is None or now < created_at + absolute

    def touch_due(self, touched_at: int, now: int) -> bool:
        """Whether a read-only request at ``now`` should record activity."""
        return self.idle_timeout is not None and now - touched_at >= self._touch_every

    def ttl(self, created_at: int, touched_at: int, now: int) -> int | None:
        """Seconds from ``now`` until the deadline (at least 1), or None for no deadline."""
        deadline = self.deadline(created_at, touched_at)
        return None if deadline is None else max(1, deadline - now)


AAL1 = Expiry(idle_timeout=None, absolute_timeout=30 * _DAY)
AAL2 = Expiry(idle_timeout=30 * _MINUTE, absolute_timeout=12 * _HOUR)
AAL3 = Expiry(idle_timeout=15 * _MINUTE, absolute_timeout=12 * _HOUR)
PRESETS: dict[str, Expiry] = {"aal1": AAL1, "aal2": AAL2, "aal3": AAL3}
