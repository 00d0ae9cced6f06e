"""A user agent string as a device a person recognises: "Chrome 156 on Linux (desktop)".

With the ``devices`` extra (``ua-parser`` and its bundled rules) the parse is
the maintained one; without it, a short best-effort reading of the common
browsers and systems -- never only the raw string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Device", "family", "parse_device"]

DeviceType = Literal["desktop", "mobile", "tablet", "bot", "unknown"]


@dataclass(frozen=True, slots=True)
class Device:
    """What a session's user agent says about the device."""

    browser: str | None  #: "Chrome", "Firefox", "Safari", ...
    version: str | None  #: the browser's major version
    os: str | None  #: "Windows", "macOS", "Linux", "Android", "iOS", ...
    type: DeviceType

    @property
    def label(self) -> str:
        """A short description: ``"Firefox 128 on Windows"``, ``"Googlebot (bot)"``."""
        name = self.browser or "Unknown browser"
        if self.version:
            name += " " + self.version
        if self.os:
            name += " on " + self.os
        if self.type in ("bot", "mobile", "tablet"):
            name += f" ({self.type})"
        return name


_BOTS = re.compile(r"bot\b|crawl|spider|slurp|curl/|wget/|python-|httpx|okhttp|go-http|java/", re.I)
# Order matters: Edge and Opera say "Chrome", Chrome says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS|HeadlessChrome)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[^ ]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
)
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}


def _type_of(agent: str, os: str | None, device_family: str | None) -> DeviceType:
    if device_family == "Spider" or _BOTS.search(agent):
        return "bot"
    if "iPad" in agent or "Tablet" in agent or (os == "Android" and "Mobile" not in agent):
        return "tablet"
    if os in ("iOS", "Android") or "Mobile" in agent:
        return "mobile"
    return "desktop" if os else "unknown"


def _best_effort(agent: str) -> Device:
    browser = version = None
    for name, pattern in _BROWSERS:
        match = pattern.search(agent)
        if match:
            browser, version = name, match.group(1)
            break
    os = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    kind = _type_of(agent, os, None)
    if browser is None and kind == "bot":
        browser = re.split(r"[/ ;(]", agent, maxsplit=1)[0][:40] or None
    return Device(browser, version, os, kind)


def _with_ua_parser(agent: str) -> Device | None:
    try:
        import ua_parser
    except ImportError:
        return None
    result = ua_parser.parse(agent)
    ua, os, device = result.user_agent, result.os, result.device
    os_name = None if os is None or os.family == "Other" else _OS_NAMES.get(os.family, os.family)
    browser = None if ua is None or ua.family == "Other" else ua.family
    device_family: str | None = getattr(device, "family", None)
    kind = _type_of(agent, os_name, device_family)
    found = Device(browser, None if ua is None else ua.major, os_name, kind)
    return found if found.browser or found.os else None


@functools.lru_cache(maxsize=512)
def parse_device(agent: str | None) -> Device | None:
    """The device ``agent`` describes, or None when there is no user agent."""
    if not agent:
        return None
    return _with_ua_parser(agent) or _best_effort(agent)


def family(agent: str | None) -> str:
    """The browser family alone (cheap; the anomaly hook compares it per request)."""
    if not agent:
        return ""
    for name, pattern in _BROWSERS:
        if pattern.search(agent):
            return name
    return "bot" if _BOTS.search(agent) else "other"
