"""``Sessionware(app, csrf=...)``: CSRF protection for Flask apps, through Flask's test client.

The rules are :class:`sessionware.CSRFMiddleware`'s (SW-29 to SW-35): only unsafe methods are
checked, the token comes from the ``x-csrf-token`` header or the form field (never the query
string), a cross-site request fails even with a valid token, and log-in rotates the secret.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, request

from sessionware import ConfigurationError, CSRFError, csrf_input
from sessionware.flask import Sessionware, csrf_exempt, current_session

from .conftest import SECRET


def make_app(csrf: Any = True, before: bool = False) -> Flask:
    app = Flask(__name__)
    if before:
        app.register_error_handler(CSRFError, lambda error: (f"custom: {error.reason}", 418))
    Sessionware(app, secret_key_base=SECRET, csrf=csrf)

    @app.get("/form")
    def form() -> str:
        return f'<form method="post">{csrf_input(current_session())}</form>'

    @app.post("/submit")
    def submit() -> str:
        return "accepted " + request.form.get("name", "")  # the body is still there

    @app.post("/api")
    def api() -> dict[str, Any]:
        return {"got": request.get_json()}

    @app.post("/login")
    def login() -> str:
        current_session().log_in("alice")
        return "in"

    @app.post("/hook")
    @csrf_exempt
    def hook() -> str:
        return "hooked"

    @app.post("/public/ping")
    def ping() -> str:
        return "pong"

    return app


def token_from(client: Any) -> str:
    match = re.search(r'value="([^"]+)"', client.get("/form").text)
    assert match is not None
    return match.group(1)


def test_sw29_an_unsafe_request_without_a_token_is_a_403_naming_why() -> None:
    client = make_app().test_client()
    client.get("/form")
    response = client.post("/submit", data={"name": "x"})
    assert response.status_code == 403
    assert "missing token" in response.text


def test_sw29_a_form_with_its_token_passes_and_the_view_still_reads_the_form() -> None:
    client = make_app().test_client()
    token = token_from(client)
    response = client.post("/submit", data={"name": "bob", "_csrf_token": token})
    assert (response.status_code, response.text) == (200, "accepted bob")


def test_sw30_json_apis_send_the_header() -> None:
    client = make_app().test_client()
    token = token_from(client)
    response = client.post("/api", json={"a": 1}, headers={"x-csrf-token": token})
    assert response.json == {"got": {"a": 1}}
    assert client.post("/api", json={"a": 1}, headers={"x-csrf-token": "forged"}).status_code == 403


def test_sw31_a_token_in_the_query_string_is_not_accepted() -> None:
    client = make_app().test_client()
    token = token_from(client)
    assert client.post(f"/submit?_csrf_token={token}").status_code == 403


def test_sw32_a_cross_site_request_fails_even_with_a_valid_token() -> None:
    client = make_app().test_client()
    token = token_from(client)
    headers = {"sec-fetch-site": "cross-site", "x-csrf-token": token}
    response = client.post("/submit", headers=headers)
    assert response.status_code == 403
    assert "cross-site" in response.text
    trusted = make_app(csrf={"trusted_origins": ["https://partner.example"]}).test_client()
    token = token_from(trusted)
    headers = {"origin": "https://partner.example", "sec-fetch-site": "cross-site", "x-csrf-token": token}
    assert trusted.post("/submit", headers=headers).status_code == 200


def test_sw33_log_in_rotates_the_token() -> None:
    client = make_app().test_client()
    before = token_from(client)
    assert client.post("/login", headers={"x-csrf-token": before}).text == "in"
    assert client.post("/submit", headers={"x-csrf-token": before}).status_code == 403
    assert client.post("/submit", headers={"x-csrf-token": token_from(client)}).status_code == 200


def test_safe_methods_exempt_views_and_exempt_paths_are_not_checked() -> None:
    client = make_app(csrf={"exempt": ["/public/"]}).test_client()
    assert client.get("/form").status_code == 200
    assert client.post("/hook").text == "hooked"
    assert client.post("/public/ping").text == "pong"
    assert client.post("/submit").status_code == 403


def test_without_the_option_nothing_is_checked() -> None:
    assert make_app(csrf=False).test_client().post("/submit").status_code == 200


def test_the_apps_own_handler_for_csrf_errors_wins() -> None:
    registered_before = make_app(before=True).test_client()
    response = registered_before.post("/submit")
    assert (response.status_code, response.text) == (418, "custom: missing token")

    app = make_app()
    app.register_error_handler(CSRFError, lambda error: ("after", 418))
    assert app.test_client().post("/submit").status_code == 418


def test_a_bad_csrf_option_raises_when_the_extension_is_made() -> None:
    with pytest.raises(ConfigurationError, match="trusted_origins"):
        Sessionware(secret_key_base=SECRET, csrf={"trusted_origins": ["not a url"]})
    with pytest.raises(ConfigurationError, match="unknown option 'no_such_option'"):
        Sessionware(secret_key_base=SECRET, csrf={"no_such_option": 1})
