"""Idle and absolute timeouts as pure functions, and the presets."""

from __future__ import annotations

import pytest

from sessionware import AAL1, AAL2, AAL3, ConfigurationError, Expiry

T0 = 1_800_000_000


def test_idle_expiry_happens_exactly_at_the_boundary() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=None)
    assert policy.is_valid(T0, T0, T0 + 599)
    assert not policy.is_valid(T0, T0, T0 + 600)


def test_activity_slides_the_idle_deadline() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=None)
    assert policy.is_valid(T0, T0 + 599, T0 + 1198)
    assert not policy.is_valid(T0, T0 + 599, T0 + 1199)


def test_absolute_expiry_happens_exactly_at_the_boundary_whatever_the_activity() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=3600)
    assert policy.is_valid(T0, T0 + 3599, T0 + 3599)
    assert not policy.is_valid(T0, T0 + 3599, T0 + 3600)


def test_the_deadline_is_the_nearer_of_the_two() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=3600)
    assert policy.deadline(T0, T0) == T0 + 600
    assert policy.deadline(T0, T0 + 3300) == T0 + 3600
    assert policy.ttl(T0, T0, T0 + 100) == 500


def test_times_in_the_future_or_out_of_order_are_refused() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=3600)
    assert not policy.is_valid(T0, T0 + 61, T0)  # touched a minute and a second ahead
    assert policy.is_valid(T0, T0 + 60, T0)  # a minute of clock skew is tolerated
    assert not policy.is_valid(T0 + 10, T0, T0 + 20)  # touched before it was created


def test_touches_are_throttled_by_the_touch_interval() -> None:
    policy = Expiry(idle_timeout=600, absolute_timeout=None, touch_interval=60)
    assert not policy.touch_due(T0, T0 + 59)
    assert policy.touch_due(T0, T0 + 60)


def test_without_an_idle_timeout_nothing_is_touched() -> None:
    assert not AAL1.touch_due(T0, T0 + 10**6)


def test_the_default_touch_interval_is_a_minute_or_a_tenth_of_the_idle_timeout() -> None:
    assert Expiry(idle_timeout=3600, absolute_timeout=None).touch_interval == 60
    assert Expiry(idle_timeout=100, absolute_timeout=None).touch_interval == 10


def test_presets_follow_nist_sp_800_63b() -> None:
    assert (AAL1.idle_timeout, AAL1.absolute_timeout) == (None, 30 * 86400)
    assert (AAL2.idle_timeout, AAL2.absolute_timeout) == (30 * 60, 12 * 3600)
    assert (AAL3.idle_timeout, AAL3.absolute_timeout) == (15 * 60, 12 * 3600)


@pytest.mark.parametrize(
    "options",
    [
        {"idle_timeout": None, "absolute_timeout": None},
        {"idle_timeout": 0, "absolute_timeout": 10},
        {"idle_timeout": -5, "absolute_timeout": 10},
        {"idle_timeout": 10.5, "absolute_timeout": 100},
        {"idle_timeout": 60, "absolute_timeout": 100, "touch_interval": 60},
        {"idle_timeout": 60, "absolute_timeout": 100, "touch_interval": -1.5},
    ],
)
def test_bad_policies_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Expiry(**options)  # type: ignore[arg-type]


def test_unlimited_sessions_must_be_asked_for_explicitly() -> None:
    policy = Expiry(idle_timeout=None, absolute_timeout=None, allow_unlimited=True)
    assert policy.is_valid(T0, T0, T0 + 10**9)
    assert policy.deadline(T0, T0) is None
