"""CSRF protection through real requests of a Starlette app (SW-29 to SW-35, scenario 5)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionware import (
    ConfigurationError,
    CSRFError,
    CSRFMiddleware,
    SessionMiddleware,
    _csrf,
    csrf_input,
    csrf_token,
    get_session,
)
from sessionware.testing import FakeClock
from sessionware.typing import ASGIApp

from .conftest import SECRET, Reply, call

ORIGIN = "http://testserver"


async def form(request: Request) -> Response:
    return HTMLResponse(f'<form method="post" action="/transfer">{csrf_input(request)}</form>')


async def token(request: Request) -> Response:
    return JSONResponse({"token": csrf_token(request)})


async def transfer(request: Request) -> Response:
    body = await request.body()  # the app still gets the body the middleware read
    return PlainTextResponse("transferred:" + body.decode())


async def login(request: Request) -> Response:
    get_session(request).log_in("alice")
    return RedirectResponse("/form", status_code=303)


def csrf_app(store: Any, **options: Any) -> ASGIApp:
    routes = [
        Route("/form", form),
        Route("/token", token),
        Route(
            "/transfer",
            transfer,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "PURGE", "TRACE", "OPTIONS"],
        ),
        Route("/hooks/stripe", transfer, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(CSRFMiddleware, **options)
    app.add_middleware(SessionMiddleware, secret_key_base=SECRET, store=store, clock=FakeClock())
    return app


@pytest.fixture
def app(store: Any) -> ASGIApp:
    return csrf_app(store)


def session_and_token(app: ASGIApp) -> tuple[str, str]:
    reply = call(app, "/token")
    return reply.cookie(), reply.json()["token"]


def post(
    app: ASGIApp,
    cookie: str | None,
    *,
    token: str | None = None,
    header: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    method: str = "POST",
    body: bytes | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> Reply:
    all_headers = [("content-type", content_type), *(headers or [])]
    if header is not None:
        all_headers.append(("x-csrf-token", header))
    if body is None:
        body = urlencode({"amount": "100", **({"_csrf_token": token} if token is not None else {})}).encode()
    return call(app, "/transfer", cookie=cookie, method=method, headers=all_headers, body=body)


# -- SW-29: a per-session synchronizer token on every unsafe method --------------------


def test_sw29_unsafe_requests_need_the_sessions_token(app: ASGIApp) -> None:
    cookie, good = session_and_token(app)
    _, other = session_and_token(app)  # another session's token
    assert post(app, cookie).status == 403  # none
    assert post(app, cookie, token="").status == 403  # empty
    assert post(app, cookie, token=other).status == 403  # another session's
    reply = post(app, cookie, token=good)
    assert reply.status == 200
    assert reply.body.startswith(b"transferred:amount=100")  # the body reached the app intact


def test_sw29_the_token_is_taken_from_a_form_field_or_the_header_only(app: ASGIApp) -> None:
    cookie, good = session_and_token(app)
    assert (
        post(app, cookie, header=good, body=b'{"json": true}', content_type="application/json").status == 200
    )
    assert post(app, cookie, body=b"", headers=[("cookie-token", good)]).status == 403
    query = call(app, f"/transfer?_csrf_token={good}", cookie=cookie, method="POST")
    assert query.status == 403  # never from the query string
    in_cookie = call(app, "/transfer", cookie=f"{cookie}; _csrf_token={good}", method="POST")
    assert in_cookie.status == 403  # never from a cookie


def test_sw29_multipart_forms_carry_the_token_too(app: ASGIApp) -> None:
    cookie, good = session_and_token(app)
    boundary = "----sessionware-test"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n{good}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\ncontent\r\n--{boundary}--\r\n"
    ).encode()
    ok = post(app, cookie, body=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert ok.status == 200
    assert b"content" in ok.body
    missing = body.replace(good.encode(), b"x" * len(good))
    assert (
        post(app, cookie, body=missing, content_type=f"multipart/form-data; boundary={boundary}").status
        == 403
    )


def test_a_body_arriving_in_pieces_is_replayed_to_the_app_whole(app: ASGIApp) -> None:
    cookie, good = session_and_token(app)
    body = urlencode({"note": "x" * 5000, "_csrf_token": good}).encode()
    reply = call(
        app,
        "/transfer",
        cookie=cookie,
        method="POST",
        body=body,
        chunk=700,
        headers=[("content-type", "application/x-www-form-urlencoded")],
    )
    assert reply.status == 200
    assert reply.body == b"transferred:" + body


def test_a_form_over_the_size_limit_needs_the_header(store: Any) -> None:
    app = csrf_app(store, max_body_size=100)
    cookie, good = session_and_token(app)
    body = urlencode({"note": "x" * 200, "_csrf_token": good}).encode()
    assert post(app, cookie, body=body).status == 403
    assert post(app, cookie, body=body, header=good).status == 200


# -- SW-30: masked per render, the secret never shown -----------------------------------


def test_sw30_every_render_masks_the_token_afresh_and_the_secret_never_appears(app: ASGIApp) -> None:
    first = call(app, "/form")
    cookie = first.cookie()
    pages = [first.body.decode()] + [call(app, "/form", cookie=cookie).body.decode() for _ in range(3)]
    tokens = [re.search(r'value="([^"]+)"', page).group(1) for page in pages]  # type: ignore[union-attr]
    assert len(set(tokens)) == 4
    secrets = {_csrf.unmask(token) for token in tokens}
    assert len(secrets) == 1  # all unmask to the one session secret
    secret = secrets.pop()
    for page in pages:
        assert secret not in page
    for token in tokens:
        assert post(app, cookie, token=token).status == 200


@pytest.mark.parametrize("bad", ["bare-secret", "short", "x" * 56, "é" * 56, "A" * 55 + "=", ""])
def test_sw30_tokens_of_the_wrong_shape_fail_without_an_error(app: ASGIApp, bad: str) -> None:
    cookie, good = session_and_token(app)
    candidate = _csrf.unmask(good) if bad == "bare-secret" else bad  # scenario 5(a): the unmasked secret
    assert post(app, cookie, token=candidate).status == 403
    assert post(app, cookie, header=candidate.encode("utf-8").decode("latin-1")).status == 403


def test_sw30_tokens_are_compared_in_constant_time(app: ASGIApp, monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[int] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(len(a))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    cookie, good = session_and_token(app)
    post(app, cookie, token=good)
    post(app, cookie, token=good[:-1] + ("A" if good[-1] != "A" else "B"))
    assert calls.count(24) == 2  # one constant-time comparison of the 24-byte secret per check


# -- SW-31: session-bound; no double-submit cookie ---------------------------------------


def test_sw31_a_token_tossed_in_as_a_cookie_or_minted_for_another_session_fails(app: ASGIApp) -> None:
    victim, _ = session_and_token(app)
    _, attackers = session_and_token(app)  # scenario 5(b): a token from the attacker's own session
    tossed = f"{victim}; csrftoken={attackers}; _csrf_token={attackers}"
    assert (
        call(
            app,
            "/transfer",
            cookie=tossed,
            method="POST",
            headers=[("content-type", "application/x-www-form-urlencoded")],
            body=urlencode({"_csrf_token": attackers}).encode(),
        ).status
        == 403
    )


def test_sw31_there_is_no_csrf_cookie(app: ASGIApp) -> None:
    reply = call(app, "/form")
    assert len(reply.all("set-cookie")) == 1  # only the session cookie
    assert reply.set_cookie is not None
    assert reply.set_cookie.startswith("session=")


# -- SW-32: Fetch Metadata and Origin can only reject -------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("sec-fetch-site", "cross-site")], 403),
        ([("sec-fetch-site", "same-site")], 403),
        ([("sec-fetch-site", "same-origin")], 200),
        ([("sec-fetch-site", "none")], 403),
        ([("origin", "http://testserver.attacker.com")], 403),
        ([("origin", "null")], 403),
        ([("origin", "https://testserver")], 403),  # scheme mismatch
        ([("origin", ORIGIN)], 200),
        ([("referer", "http://testserver/form")], 200),
        ([("referer", "http://evil.example/page")], 403),
        ([], 200),  # no headers at all: the token decides
        ([("sec-fetch-site", "same-origin"), ("origin", "http://evil.example")], 403),
    ],
)
def test_sw32_request_headers_are_checked_before_the_token(
    app: ASGIApp, headers: list[tuple[str, str]], status: int
) -> None:
    cookie, good = session_and_token(app)
    assert post(app, cookie, token=good, headers=headers).status == status


def test_sw32_headers_never_grant_scenario_5d_a_valid_token_from_another_site_fails(app: ASGIApp) -> None:
    cookie, good = session_and_token(app)
    assert post(app, cookie, headers=[("origin", ORIGIN), ("sec-fetch-site", "same-origin")]).status == 403
    # the attacker knows a valid token, but the browser says where the request comes from
    assert post(app, cookie, token=good, headers=[("sec-fetch-site", "cross-site")]).status == 403


def test_sw32_trusted_origins_and_same_site_can_be_allowed(store: Any) -> None:
    app = csrf_app(store, trusted_origins=["https://admin.example.com"], trust_same_site=True)
    cookie, good = session_and_token(app)
    assert post(app, cookie, token=good, headers=[("origin", "https://admin.example.com")]).status == 200
    assert post(app, cookie, token=good, headers=[("sec-fetch-site", "same-site")]).status == 200
    assert post(app, cookie, token=good, headers=[("origin", "https://other.example.com")]).status == 403


def test_sw32_a_trusted_origin_passes_as_browsers_send_it(store: Any) -> None:
    """Browsers mark a sibling subdomain same-site and another site cross-site: the listed
    origin is let through either way, and the token is still required."""
    app = csrf_app(store, trusted_origins=["https://admin.example.com", "https://partner.example"])
    cookie, good = session_and_token(app)
    for origin, site in (
        ("https://admin.example.com", "same-site"),
        ("https://partner.example", "cross-site"),
    ):
        headers = [("origin", origin), ("sec-fetch-site", site)]
        assert post(app, cookie, token=good, headers=headers).status == 200, origin
        assert post(app, cookie, headers=headers).status == 403, origin  # no token: refused
    # Unlisted siblings and sites are still refused, with or without their Origin.
    for headers in (
        [("origin", "https://other.example.com"), ("sec-fetch-site", "same-site")],
        [("sec-fetch-site", "same-site")],
        [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")],
        [("origin", "null"), ("sec-fetch-site", "same-site")],
    ):
        assert post(app, cookie, token=good, headers=headers).status == 403, headers


def test_sw32_trust_same_site_alone_accepts_what_the_browser_marks_same_site(store: Any) -> None:
    app = csrf_app(store, trust_same_site=True)
    cookie, good = session_and_token(app)
    sibling = [("origin", "https://admin.testserver"), ("sec-fetch-site", "same-site")]
    assert post(app, cookie, token=good, headers=sibling).status == 200
    assert post(app, cookie, headers=sibling).status == 403
    cross = [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")]
    assert post(app, cookie, token=good, headers=cross).status == 403


@pytest.mark.parametrize("bad", ["example.com", "https://example.com/path", "ftp://example.com", ""])
def test_bad_trusted_origins_are_refused_at_construction(bad: str) -> None:
    async def noop(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    with pytest.raises(ConfigurationError, match="trusted_origins"):
        CSRFMiddleware(noop, trusted_origins=[bad])


# -- SW-33: which methods are checked ------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "PURGE", "post"])
def test_sw33_every_unsafe_or_unknown_method_is_checked(app: ASGIApp, method: str) -> None:
    cookie, _ = session_and_token(app)
    assert post(app, cookie, method=method).status == 403


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
def test_sw33_safe_methods_pass_without_a_token(app: ASGIApp, method: str) -> None:
    cookie, _ = session_and_token(app)
    reply = call(
        app, "/transfer", cookie=cookie, method=method, headers=[("x-http-method-override", "DELETE")]
    )
    assert reply.status in (200, 405)
    assert reply.status != 403


def test_sw33_exempt_paths_skip_the_check(store: Any) -> None:
    app = csrf_app(store, exempt=["/hooks/"])
    assert call(app, "/hooks/stripe", method="POST", body=b"{}").status == 200
    assert post(app, None).status == 403


# -- SW-34: login CSRF -------------------------------------------------------------------------


def test_sw34_the_login_form_needs_a_pre_session_token_which_dies_at_log_in(app: ASGIApp) -> None:
    anonymous, pre_login = session_and_token(app)
    refused = call(
        app,
        "/login",
        cookie=anonymous,
        method="POST",
        body=b"",
        headers=[("content-type", "application/x-www-form-urlencoded")],
    )
    assert refused.status == 403
    logged_in = call(
        app,
        "/login",
        cookie=anonymous,
        method="POST",
        headers=[("content-type", "application/x-www-form-urlencoded")],
        body=urlencode({"_csrf_token": pre_login}).encode(),
    )
    assert logged_in.status == 303
    cookie = logged_in.cookie()
    assert cookie != anonymous  # a new session ID (SW-06)
    assert post(app, cookie, token=pre_login).status == 403  # scenario 5(c): rotated at log-in
    page = call(app, "/token", cookie=cookie)
    fresh = page.json()["token"]
    if page.set_cookie is not None:  # the new secret lives in the session: a cookie store re-issues it
        cookie = page.cookie()
    assert post(app, cookie, token=fresh).status == 200


# -- SW-35: never in URLs or logs -------------------------------------------------------------


def test_sw35_a_failure_is_a_403_with_one_warning_that_holds_no_token(
    app: ASGIApp, caplog: pytest.LogCaptureFixture
) -> None:
    cookie, good = session_and_token(app)
    _, other = session_and_token(app)
    with caplog.at_level(logging.DEBUG, logger="sessionware"):
        reply = post(app, cookie, token=other)
    assert reply.status == 403
    assert b"invalid CSRF" in reply.body
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "CSRF" in r.getMessage()]
    assert len(warnings) == 1
    assert "invalid token" in warnings[0].getMessage()
    text = "\n".join(record.getMessage() for record in caplog.records) + reply.body.decode()
    for secret in (other, good, _csrf.unmask(good)):
        assert secret not in text


def test_sw35_helpers_put_the_token_in_a_hidden_field_not_a_url(app: ASGIApp) -> None:
    page = call(app, "/form").body.decode()
    assert re.fullmatch(
        r'<form method="post" action="/transfer">'
        r'<input type="hidden" name="_csrf_token" value="[A-Za-z0-9_=-]{56}"></form>',
        page,
    )


def test_verify_csrf_token_raises_a_403_error_for_apps_that_check_by_hand() -> None:
    from sessionware import Session
    from sessionware.csrf import verify_csrf_token

    session = Session()
    good = csrf_token(session)
    verify_csrf_token(session, good)
    with pytest.raises(CSRFError) as caught:
        verify_csrf_token(session, None)
    assert caught.value.status_code == 403
    assert json.dumps(caught.value.reason) == '"missing token"'


def test_csrf_middleware_without_session_middleware_says_what_is_missing() -> None:
    async def noop(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    with pytest.raises(ConfigurationError, match="SessionMiddleware"):
        call(CSRFMiddleware(noop), "/transfer", method="POST")
