"""Parsing the Cookie header and rendering Set-Cookie."""

from __future__ import annotations

import pytest

from sessionware import ConfigurationError
from sessionware._cookies import CookieAttributes, find_cookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("session=abc", ("abc", 1)),
        ("a=1; session=abc", ("abc", 1)),
        ("a=1;session=abc;b=2", ("abc", 1)),
        ("  session=abc  ; b=2", ("abc", 1)),
        ("xsession=abc", (None, 0)),
        ("session_x=abc", (None, 0)),
        ("a=session=abc", (None, 0)),
        ("=session=abc", (None, 0)),  # a nameless cookie is not "session" (CVE-2023-23934)
        ("Session=abc", (None, 0)),
        ("session=", ("", 1)),
        ('session="abc"', ('"abc"', 1)),  # never unquoted
        ("session=a; session=b", (None, 2)),
        ("session=a; xsession=c; session=b", (None, 2)),
        ("a=1 session=abc", (None, 0)),
        ("", (None, 0)),
    ],
)
def test_find_cookie(header: str, expected: tuple[str | None, int]) -> None:
    assert find_cookie(header, "session") == expected


def attributes(**options: object) -> CookieAttributes:
    return CookieAttributes("session", **options)  # type: ignore[arg-type]


def test_defaults_are_httponly_lax_path_root_no_domain_and_no_max_age() -> None:
    header = attributes().header("v", https=False, max_age=None)
    assert header == "session=v; Path=/; HttpOnly; SameSite=Lax"
    # The engine decides whether a cookie persists (test_security: no Max-Age by default).
    assert (
        attributes().header("v", https=False, max_age=300).endswith("; Max-Age=300; HttpOnly; SameSite=Lax")
    )


def test_secure_auto_follows_the_request_scheme() -> None:
    cookie = attributes()
    assert "; Secure" in cookie.header("v", https=True, max_age=None)
    assert "Secure" not in cookie.header("v", https=False, max_age=None)
    assert "; Secure" in attributes(secure=True).header("v", https=False, max_age=None)
    assert "Secure" not in attributes(secure=False).header("v", https=True, max_age=None)


def test_persistent_cookies_carry_max_age() -> None:
    assert "; Max-Age=300" in attributes(persistent=True).header("v", https=False, max_age=300)


def test_all_attributes_render_in_order() -> None:
    cookie = CookieAttributes(
        "__Secure-s", path="/app", domain="example.com", same_site="strict", partitioned=True, secure=True
    )
    assert (
        cookie.header("v", https=True, max_age=None)
        == "__Secure-s=v; Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Strict; Partitioned"
    )
    assert cookie.deletion(https=True) == (
        "__Secure-s=; Path=/app; Domain=example.com; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        "; Secure; HttpOnly; SameSite=Strict; Partitioned"
    )


@pytest.mark.parametrize("name", ["__Host-s", "__host-s", "__HOST-s", "__Secure-s", "__SECURE-s"])
def test_prefixed_names_always_get_secure(name: str) -> None:
    cookie = CookieAttributes(name)
    assert "; Secure" in cookie.header("v", https=False, max_age=None)
    with pytest.raises(ConfigurationError, match="secure"):
        CookieAttributes(name, secure=False)


@pytest.mark.parametrize("name", ["__Host-s", "__host-s"])
def test_host_prefix_rules_are_enforced(name: str) -> None:
    with pytest.raises(ConfigurationError, match="__Host-"):
        CookieAttributes(name, domain="example.com")
    with pytest.raises(ConfigurationError, match="__Host-"):
        CookieAttributes(name, path="/app")


@pytest.mark.parametrize(
    "options",
    [
        {"same_site": "lax "},
        {"same_site": "Nonee"},
        {"same_site": None},
        {"same_site": "none"},  # without secure=True
        {"partitioned": True},  # without secure=True
        {"path": "app"},
        {"path": "/a;b"},
        {"path": "/a b"},
        {"domain": "example.com; HttpOnly"},
        {"domain": "exa mple.com"},
        {"secure": "yes"},
    ],
)
def test_bad_attributes_are_refused_at_construction(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        attributes(**options)


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "sessión", "a\x00"])
def test_bad_cookie_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="cookie_name"):
        CookieAttributes(name)


def test_same_site_values_are_case_insensitive_but_exact() -> None:
    assert "SameSite=Strict" in attributes(same_site="Strict").header("v", https=False, max_age=None)
    assert "SameSite=None" in attributes(same_site="none", secure=True).header("v", https=False, max_age=None)
