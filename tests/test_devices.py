"""Device-aware listings: a parsed device, first/last seen, how, the current flag, a truncated IP."""

from __future__ import annotations

from typing import Any

import pytest

from sessionware._client import truncate_ip
from sessionware._devices import Device, _best_effort, parse_device
from sessionware.testing import FakeClock

from .conftest import build_app, call

AGENTS = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0": (
        "Firefox",
        "128",
        "Windows",
        "desktop",
    ),
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1": (None, "17", "iOS", "mobile"),
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1": (None, "17", "iOS", "tablet"),
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
    "Mobile Safari/537.36": ("Chrome", "120", "Android", "mobile"),
    "Googlebot/2.1 (+http://www.google.com/bot.html)": (None, None, None, "bot"),
}


@pytest.mark.parametrize("parse", [parse_device, _best_effort], ids=["ua-parser", "best-effort"])
@pytest.mark.parametrize("agent", list(AGENTS))
def test_a_user_agent_becomes_browser_version_os_and_device_type(parse: Any, agent: str) -> None:
    browser, version, os, kind = AGENTS[agent]
    device = parse(agent)
    assert device.type == kind
    assert device.os == os
    if kind != "bot":  # a bot's version is whatever its string says
        assert device.version == version
    if browser is not None:
        assert device.browser == browser
    assert device.label
    assert agent not in device.label


def test_the_label_reads_as_a_person_would_say_it() -> None:
    assert Device("Firefox", "128", "Windows", "desktop").label == "Firefox 128 on Windows"
    assert Device("Chrome", "120", "Android", "mobile").label == "Chrome 120 on Android (mobile)"
    assert parse_device(None) is None


def test_ip_addresses_are_truncated_to_their_network() -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0/24"
    assert truncate_ip("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert truncate_ip("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert truncate_ip("not an address") == "unknown"


def test_a_listing_shows_device_first_seen_how_and_the_current_session(
    registry_store: Any, clock: FakeClock
) -> None:
    app = build_app(registry_store, clock)
    firefox = next(iter(AGENTS))
    cookie = call(app, "/auth/alice", headers=[("user-agent", firefox)]).cookie()
    started = int(clock())
    clock.advance(120)
    call(app, "/auth/alice", headers=[("user-agent", "Googlebot/2.1")])
    clock.advance(5)
    listing = call(app, "/sessions/alice", cookie=cookie, headers=[("user-agent", firefox)]).json()
    mine = next(info for info in listing if info["current"])
    assert mine["device"] == {"browser": "Firefox", "version": "128", "os": "Windows", "type": "desktop"}
    assert mine["first_seen"] == started
    assert mine["how"] == "password"
    assert mine["last_active"] >= started
    other = next(info for info in listing if not info["current"])
    assert other["device"]["type"] == "bot"
    assert len(listing) == 2
