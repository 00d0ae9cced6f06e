"""A Starlette app sharing its session with a Phoenix app, over real HTTP requests.

The app is configured with the vectors' endpoint settings. It must read the
sessions Plug wrote (the vector cookies) and write cookies that Plug's settings
read back (``decode_cookie``, itself checked byte for byte against Plug's
output in test_phoenix.py), leaving the keys it did not change as they were.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import (
    ConfigurationError,
    CSRFError,
    CSRFMiddleware,
    Expiry,
    SerializationError,
    SessionMiddleware,
    csrf_token,
    get_flashes,
    get_session,
    put_flash,
)
from sessionware._etf import to_typed_json
from sessionware.phoenix import (
    META_KEY,
    Atom,
    PhoenixCookieStore,
    decode_cookie,
    encode_cookie,
    term_to_binary,
)
from sessionware.testing import FakeClock

DATA = Path(__file__).parent / "data" / "phoenix"
VECTORS = {
    vector["id"]: vector
    for vector in map(json.loads, (DATA / "plug_cookies_public.jsonl").read_text().splitlines())
}
TYPICAL = VECTORS["pub-signed-phoenix-typical"]
ENCRYPTED = VECTORS["pub-encrypted-phoenix-typical"]
LEGACY = VECTORS["pub-legacy-encrypted-a128gcm-phoenix"]
NAME = TYPICAL["key"]  # "_public_app_key"


def plug_settings(vector: dict[str, Any]) -> dict[str, Any]:
    """The Phoenix endpoint's Plug.Session options, as decode_cookie takes them."""
    key_opts = vector["key_opts"]
    return {
        "secret_key_base": vector["secret_key_base"],
        "signing_salt": vector["signing_salt"],
        "encryption_salt": vector["encryption_salt"],
        "key_iterations": key_opts["iterations"],
        "key_length": key_opts["length"],
        "key_digest": key_opts["digest"],
    }


def store_for(vector: dict[str, Any], **options: Any) -> PhoenixCookieStore:
    """A store configured as the endpoint that wrote ``vector``."""
    settings = plug_settings(vector)
    settings.pop("secret_key_base")
    if vector["format"] == "A128GCM":
        settings["format"] = "a128gcm"
    return PhoenixCookieStore(**{**settings, **options})


# -- the app ---------------------------------------------------------------------------


async def show(request: Request) -> Response:
    return JSONResponse(to_typed_json(dict(request.session)))


async def visit(request: Request) -> Response:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return PlainTextResponse("ok")


async def flash(request: Request) -> Response:
    put_flash(request, "info", "Saved from Python.")
    return RedirectResponse("/flashes", status_code=302)


async def flashes(request: Request) -> Response:
    return JSONResponse(get_flashes(request))


async def form(request: Request) -> Response:
    return PlainTextResponse(csrf_token(request))


async def submit(request: Request) -> Response:
    return PlainTextResponse("accepted")


ROUTES = [
    Route("/show", show),
    Route("/visit", visit),
    Route("/flash", flash),
    Route("/flashes", flashes),
    Route("/form", form),
    Route("/submit", submit, methods=["POST"]),
]


def client(store: PhoenixCookieStore, secret: Any = TYPICAL["secret_key_base"]) -> TestClient:
    app = Starlette(routes=ROUTES)
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=secret,
        cookie_name=NAME,
        store=store,
        same_site="lax",
        clock=FakeClock(),
    )
    return TestClient(app, base_url="http://testserver")


def request(
    http: TestClient, path: str, cookie: str | None, method: str = "GET", **options: Any
) -> tuple[Any, str | None]:
    """One request carrying the session cookie (no cookie jar): the response and the new value."""
    headers = dict(options.pop("headers", {}))
    if cookie is not None:
        headers["cookie"] = f"{NAME}={cookie}"
    response = http.request(method, path, headers=headers, follow_redirects=False, **options)
    set_cookie = response.headers.get("set-cookie")
    if set_cookie is None:
        return response, None
    name, value = set_cookie.split(";", 1)[0].split("=", 1)
    assert name == NAME
    return response, value


# -- reading what Phoenix wrote -------------------------------------------------------

READABLE = [vector for vector in VECTORS.values() if vector["expect"] == "ok"]


@pytest.mark.parametrize("vector", READABLE, ids=[vector["id"] for vector in READABLE])
def test_the_app_reads_every_session_a_phoenix_app_wrote(vector: dict[str, Any]) -> None:
    http = client(store_for(vector), secret=vector["secret_key_base"])
    response, new_cookie = request(http, "/show", vector["cookie"])
    assert response.status_code == 200
    assert response.json() == vector["session_typed"]
    assert new_cookie is None  # read-only: nothing written back, as Plug


REFUSED = [vector for vector in VECTORS.values() if vector["expect"] == "reject"]


@pytest.mark.parametrize("vector", REFUSED, ids=[vector["id"] for vector in REFUSED])
def test_a_cookie_phoenix_refuses_is_an_empty_session_and_is_not_cleared(vector: dict[str, Any]) -> None:
    http = client(store_for(vector), secret=vector["secret_key_base"])
    response, new_cookie = request(http, "/show", vector["cookie"])
    assert response.json() == {}
    assert new_cookie is None  # Plug does not delete an invalid cookie either


# -- writing what Phoenix reads -----------------------------------------------------------


@pytest.mark.parametrize("vector", [TYPICAL, ENCRYPTED, LEGACY], ids=["signed", "xcp", "a128gcm"])
def test_a_written_session_is_read_by_plugs_settings_with_unchanged_keys_intact(
    vector: dict[str, Any],
) -> None:
    http = client(store_for(vector), secret=vector["secret_key_base"])
    original = decode_cookie(vector["cookie"], **plug_settings(vector))
    assert original is not None
    response, new_cookie = request(http, "/visit", vector["cookie"])
    assert response.status_code == 200
    assert new_cookie is not None
    prefix = {"SFMyNTY": "SFMyNTY.", "XCP": "XCP.", "A128GCM": "QTEyOEdDTQ."}[vector["format"]]
    assert new_cookie.startswith(prefix)
    written = decode_cookie(new_cookie, **plug_settings(vector))
    assert written is not None
    assert written["visits"] == 1
    for key, value in original.items():  # user_token bytes, live_socket_id, _csrf_token
        assert term_to_binary(written[key]) == term_to_binary(value), key
        assert type(written[key]) is type(value)
    assert set(written) == {*original, "visits", META_KEY}


def test_the_written_cookie_has_the_endpoints_name_and_attributes() -> None:
    http = client(store_for(TYPICAL))
    response, _ = request(http, "/visit", TYPICAL["cookie"])
    attributes = [part.strip().lower() for part in response.headers["set-cookie"].split(";")[1:]]
    assert "path=/" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes  # Phoenix's generated `same_site: "Lax"`


@pytest.mark.parametrize("vector_id", ["pub-signed-nested-atom-keys", "pub-signed-atoms-bools-nil"])
def test_atoms_and_nested_maps_survive_a_python_write_byte_exact(vector_id: str) -> None:
    vector = VECTORS[vector_id]
    http = client(store_for(vector))
    _, new_cookie = request(http, "/visit", vector["cookie"])
    assert new_cookie is not None
    written = decode_cookie(new_cookie, **plug_settings(vector))
    assert written is not None
    for key in vector["session_typed"]:
        assert to_typed_json(written[key]) == vector["session_typed"][key]
    # The unchanged part of the session is exactly the term Plug wrote.
    unchanged = {key: value for key, value in written.items() if key not in ("visits", META_KEY)}
    assert term_to_binary(unchanged).hex() == vector["etf_hex"]


def test_a_session_python_writes_reads_back_on_the_python_side() -> None:
    http = client(store_for(TYPICAL))
    _, first = request(http, "/visit", TYPICAL["cookie"])
    _, second = request(http, "/visit", first)
    assert second is not None
    response, _ = request(http, "/show", second)
    shown = response.json()
    assert shown["visits"] == 2
    assert META_KEY not in shown  # sessionware's own state is never the app's
    assert shown["user_token"] == TYPICAL["session_typed"]["user_token"]


def test_a_session_phoenix_wrote_back_keeps_sessionwares_state() -> None:
    # Phoenix carries "_sessionware" along: simulate it re-writing the session with a change.
    http = client(store_for(TYPICAL))
    _, python_cookie = request(http, "/visit", TYPICAL["cookie"])
    assert python_cookie is not None
    session = decode_cookie(python_cookie, **plug_settings(TYPICAL))
    assert session is not None
    session["phoenix_side"] = Atom("visited")
    phoenix_cookie = encode_cookie(session, **plug_settings(TYPICAL))
    response, _ = request(http, "/show", phoenix_cookie)
    assert response.json()["phoenix_side"] == {"atom": "visited"}
    assert response.json()["visits"] == 1


def test_the_app_cannot_write_sessionwares_own_key() -> None:
    async def forge(request: Request) -> Response:
        request.session[META_KEY] = {"created_at": 1}
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/forge", forge)])
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=TYPICAL["secret_key_base"],
        cookie_name=NAME,
        store=store_for(TYPICAL),
    )
    with pytest.raises(SerializationError, match="sessionware's own"):
        TestClient(app).get("/forge")


def phoenix_wrote(stamp: dict[str, Any]) -> str:
    """A cookie Phoenix code wrote with its own ``"_sessionware"`` map."""
    return encode_cookie({"user_token": b"\x01" * 32, META_KEY: stamp}, **plug_settings(TYPICAL))


def whoami_client(**options: Any) -> TestClient:
    async def whoami(request: Request) -> Response:
        session = get_session(request)
        return JSONResponse({"user": session.user_id, "data": sorted(dict.keys(session))})

    app = Starlette(routes=[Route("/whoami", whoami)])
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=TYPICAL["secret_key_base"],
        cookie_name=NAME,
        store=store_for(TYPICAL, **options),
        clock=FakeClock(),
    )
    return TestClient(app)


def test_a_log_in_state_of_the_wrong_shape_from_phoenix_is_refused() -> None:
    """Phoenix code can write "_sessionware"; only sessionware's own shapes are taken."""
    now = int(FakeClock().time())
    good = {"created_at": now, "last_active": now, "auth_at": now, "meta": {"uid": "alice"}}
    http = whoami_client()
    assert http.get("/whoami", headers={"cookie": f"{NAME}={phoenix_wrote(good)}"}).json() == {
        "user": "alice",
        "data": ["user_token"],
    }
    for meta in (
        {"uid": {"$ne": None}},
        {"uid": ["a"]},
        {"uid": 1.5},
        {"uid": True},
        {"uid": ""},
        {"uid": "x" * 257},
        {"uid": "a", "sid": 7},
        {"uid": "a", "ua": {"x": 1}},
    ):
        cookie = phoenix_wrote({**good, "meta": meta})
        assert http.get("/whoami", headers={"cookie": f"{NAME}={cookie}"}).json() == {
            "user": None,
            "data": [],
        }, meta


def test_with_a_revocation_store_a_log_in_phoenix_code_wrote_is_refused() -> None:
    from sessionware import MemoryStore

    now = int(FakeClock().time())
    forged = {"created_at": now, "last_active": now, "auth_at": now, "meta": {"uid": "admin"}}
    http = whoami_client(revocation=MemoryStore())
    shown = http.get("/whoami", headers={"cookie": f"{NAME}={phoenix_wrote(forged)}"}).json()
    assert shown["user"] is None


def _filler(**options: Any) -> TestClient:
    """An app whose /fill?n=N stores N random bytes (2N hex digits) in a Plug session."""

    async def fill(request: Request) -> Response:
        request.session["blob"] = secrets.token_hex(int(request.query_params["n"]))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/fill", fill)])
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=TYPICAL["secret_key_base"],
        cookie_name=NAME,
        store=store_for(TYPICAL),
        **options,
    )
    return TestClient(app, base_url="https://testserver")


def _largest_written(http: TestClient) -> tuple[str, tuple[int, int]]:
    """The longest Set-Cookie the app writes, and the first size it refuses (SessionTooLarge)."""
    from sessionware import SessionTooLarge

    low, high = 1, 3000  # n=1 fits, n=3000 (6000 hex digits) cannot
    while high - low > 1:
        middle = (low + high) // 2
        try:
            http.get(f"/fill?n={middle}")
        except SessionTooLarge as exc:
            high, refused = middle, (exc.size, exc.limit)
        else:
            low = middle
    return http.get(f"/fill?n={low}").headers["set-cookie"], refused


@pytest.mark.parametrize("persistent", [False, True])
def test_plug_cookies_are_written_up_to_plugs_own_limit_for_the_whole_set_cookie(persistent: bool) -> None:
    """Plug refuses a whole Set-Cookie over 4096 bytes (CookieOverflowError): so does the
    Python side, counting the attributes as Plug writes them (``expires`` beside a
    ``max-age``), and nothing smaller is refused."""
    header, (refused, limit) = _largest_written(_filler(persistent=persistent))
    assert limit == 4096
    plug_size = len(header) + (len("; expires=Thu, 01 Jan 1970 00:00:00 GMT") if persistent else 0)
    assert ("Max-Age=" in header) is persistent
    assert 4096 - 4 < plug_size <= 4096 < refused  # one random byte more is 2 hex digits, ≤ 4 cookie bytes
    value = header.split(";", 1)[0].split("=", 1)[1]
    session = decode_cookie(value, **plug_settings(TYPICAL))
    assert session is not None
    assert session["blob"]  # the whole session, readable


def test_a_plug_session_near_4_kb_is_read_and_written_back_while_plug_could_write_it() -> None:
    """A cookie Phoenix wrote near the limit: the Python side adds its ``_sessionware`` stamp
    and writes it, as long as Plug could write the stamped cookie back."""
    from sessionware import SessionTooLarge

    settings = plug_settings(TYPICAL)
    plug_attributes = "; path=/; HttpOnly; SameSite=Lax"  # the endpoint's same_site: "Lax"

    def plug_header(session: dict[str, Any]) -> str:
        value = encode_cookie(session, **settings, key=NAME, attributes=plug_attributes)
        return f"{NAME}={value}{plug_attributes}"

    async def note(request: Request) -> Response:
        request.session["seen"] = True
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/note", note)])
    secret = TYPICAL["secret_key_base"]
    app.add_middleware(SessionMiddleware, secret_key_base=secret, cookie_name=NAME, store=store_for(TYPICAL))
    http = TestClient(app)
    written, refused = 0, []
    for size in range(3500, 4200, 7):
        session = {"blob": "x" * (size * 3 // 4 - 150)}
        try:
            header = plug_header(session)
            assert len(header) <= 4096
        except SessionTooLarge:
            break  # encode_cookie refuses what Plug would refuse (checked below)
        try:
            reply = http.get("/note", headers={"cookie": header.split(";", 1)[0]})
        except SessionTooLarge as exc:
            refused.append((len(header), exc.size))
            continue
        written = max(written, len(reply.headers["set-cookie"]))
        kept = decode_cookie(reply.cookies[NAME], **settings)
        assert kept is not None
        assert kept["seen"] is True
    assert 4096 - 40 < written <= 4096  # up to Plug's limit, not 160 bytes short of it
    assert refused  # and over it, refused: only where the stamp pushed it over
    assert all(given > 4096 - 150 and size > 4096 for given, size in refused)


def test_encode_cookie_refuses_a_cookie_plug_could_not_send() -> None:
    from sessionware import SessionTooLarge

    settings = plug_settings(TYPICAL)
    fits = encode_cookie({"blob": "x" * 2900}, **settings, key=NAME)
    assert len(f"{NAME}={fits}; path=/; HttpOnly") <= 4096
    with pytest.raises(SessionTooLarge) as raised:
        encode_cookie({"blob": "x" * 3100}, **settings)
    assert (raised.value.limit, raised.value.size > 4096) == (4096, True)
    value = encode_cookie({"blob": "x" * 2950}, **settings, key=NAME)  # fits the default attributes...
    longer = "; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; max-age=2592000; secure; HttpOnly"
    with pytest.raises(SessionTooLarge):  # ...but not the attributes this endpoint writes
        encode_cookie({"blob": "x" * 2950}, **settings, key=NAME, attributes=longer)
    assert len(f"{NAME}={value}; path=/; HttpOnly") <= 4096 < len(f"{NAME}={value}{longer}")


# -- flash -----------------------------------------------------------------------------


def test_flash_is_kept_under_phoenix_flash_as_phoenix_keeps_it() -> None:
    http = client(store_for(TYPICAL))
    response, new_cookie = request(http, "/flash", TYPICAL["cookie"])
    assert response.status_code == 302
    assert new_cookie is not None
    written = decode_cookie(new_cookie, **plug_settings(TYPICAL))
    assert written is not None
    assert written["phoenix_flash"] == {"info": "Saved from Python."}
    response, after = request(http, "/flashes", new_cookie)
    assert response.json() == {"info": "Saved from Python."}
    assert after is not None
    consumed = decode_cookie(after, **plug_settings(TYPICAL))
    assert consumed is not None
    assert "phoenix_flash" not in consumed


def test_a_flash_phoenix_put_before_redirecting_is_shown_by_python() -> None:
    session = decode_cookie(TYPICAL["cookie"], **plug_settings(TYPICAL))
    assert session is not None
    phoenix_cookie = encode_cookie(
        {**session, "phoenix_flash": {"error": "Not allowed."}}, **plug_settings(TYPICAL)
    )
    http = client(store_for(TYPICAL))
    response, _ = request(http, "/flashes", phoenix_cookie)
    assert response.json() == {"error": "Not allowed."}


# -- CSRF in Plug's format ----------------------------------------------------------------


def plug_mask(state: str) -> str:
    """``Plug.CSRFProtection.mask/1``: base64url(state XOR mask) followed by the 24-char mask."""
    mask = base64.urlsafe_b64encode(secrets.token_bytes(18)).decode()
    masked = bytes(a ^ b for a, b in zip(state.encode(), mask.encode(), strict=True))
    return base64.urlsafe_b64encode(masked).decode() + mask


def plug_unmask(token: str) -> str:
    """What ``Plug.CSRFProtection.valid_masked_token?/3`` compares with the session's state."""
    assert len(token) == 56
    masked = base64.urlsafe_b64decode(token[:32])
    return bytes(a ^ b for a, b in zip(masked, token[32:].encode(), strict=True)).decode()


def test_a_token_masked_by_plug_passes_python_csrf_protection() -> None:
    http = client(store_for(TYPICAL))
    state = TYPICAL["session_typed"]["_csrf_token"]
    ok, _ = request(http, "/submit", TYPICAL["cookie"], "POST", data={"_csrf_token": plug_mask(state)})
    assert ok.status_code == 200
    assert ok.text == "accepted"
    header, _ = request(
        http, "/submit", TYPICAL["cookie"], "POST", headers={"x-csrf-token": plug_mask(state)}
    )
    assert header.status_code == 200
    forged, _ = request(http, "/submit", TYPICAL["cookie"], "POST", data={"_csrf_token": plug_mask("x" * 24)})
    assert forged.status_code == 403


def plug_host_token(secret_key_base: str, state: str, host: str) -> str:
    """``Plug.CSRFProtection.get_csrf_token_for(url)`` for an absolute URL, per ../shared/PLUG.md §1.6:
    MessageVerifier.sign(generate_token() <> host, KeyGenerator.generate(secret_key_base, state))."""

    def b64u(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    key = hashlib.pbkdf2_hmac("sha256", secret_key_base.encode(), state.encode(), 1000, 32)
    head = "SFMyNTY." + b64u(base64.urlsafe_b64encode(secrets.token_bytes(18)) + host.encode())
    return head + "." + b64u(hmac.new(key, head.encode(), hashlib.sha256).digest())


def test_a_host_bound_token_plug_made_for_this_host_passes_and_for_another_fails() -> None:
    http = client(store_for(TYPICAL))
    state = TYPICAL["session_typed"]["_csrf_token"]
    secret = TYPICAL["secret_key_base"]

    def post(token: str) -> int:
        response, _ = request(http, "/submit", TYPICAL["cookie"], "POST", data={"_csrf_token": token})
        return int(response.status_code)

    assert post(plug_host_token(secret, state, "testserver")) == 200
    assert post(plug_host_token(secret, state, "evil.example")) == 403  # made for another host
    assert post(plug_host_token(secret, "y" * 24, "testserver")) == 403  # another session's state
    assert post(plug_host_token("z" * 64, state, "testserver")) == 403  # another endpoint's secret
    assert post(plug_host_token(secret, state, "testserver")[:-2]) == 403  # tampered


def test_sessionwares_own_cookie_store_takes_no_host_bound_tokens() -> None:
    from sessionware import CookieStore
    from sessionware.csrf import verify_csrf_token

    async def check(request: Request) -> Response:
        session = get_session(request)
        csrf_token(session)  # creates the session's state
        state = dict.get(session, "_csrf_token")
        assert isinstance(state, str)
        try:
            verify_csrf_token(session, plug_host_token(TYPICAL["secret_key_base"], state, "testserver"))
        except CSRFError:
            return PlainTextResponse("refused")
        return PlainTextResponse("accepted")

    app = Starlette(routes=[Route("/check", check)])
    app.add_middleware(SessionMiddleware, secret_key_base=TYPICAL["secret_key_base"], store=CookieStore())
    assert TestClient(app).get("/check").text == "refused"


def test_python_masks_phoenixs_csrf_state_as_plug_does_and_keeps_it() -> None:
    http = client(store_for(TYPICAL))
    response, new_cookie = request(http, "/form", TYPICAL["cookie"])
    token = response.text
    assert token != TYPICAL["session_typed"]["_csrf_token"]
    assert plug_unmask(token) == TYPICAL["session_typed"]["_csrf_token"]  # LiveView's check passes
    assert new_cookie is None  # the existing state was used, not replaced


def test_a_csrf_state_python_creates_is_in_plugs_format() -> None:
    session = decode_cookie(TYPICAL["cookie"], **plug_settings(TYPICAL))
    assert session is not None
    del session["_csrf_token"]
    http = client(store_for(TYPICAL))
    response, new_cookie = request(http, "/form", encode_cookie(session, **plug_settings(TYPICAL)))
    assert new_cookie is not None
    written = decode_cookie(new_cookie, **plug_settings(TYPICAL))
    assert written is not None
    state = written["_csrf_token"]
    assert isinstance(state, str)
    assert len(state) == 24
    assert base64.urlsafe_b64decode(state) is not None  # Plug's generate_token(): 18 random bytes
    assert plug_unmask(response.text) == state


# -- key rotation ---------------------------------------------------------------------------

NEW_SECRET = "N" * 32 + "new-secret-key-base-for-rotation"


def test_several_secret_key_bases_read_the_old_cookie_and_re_issue_it_under_the_first() -> None:
    http = client(store_for(TYPICAL), secret=[NEW_SECRET, TYPICAL["secret_key_base"]])
    response, new_cookie = request(http, "/show", TYPICAL["cookie"])
    assert response.json() == TYPICAL["session_typed"]
    assert new_cookie is not None  # re-issued under the new secret
    new_settings = {**plug_settings(TYPICAL), "secret_key_base": NEW_SECRET}
    reissued = decode_cookie(new_cookie, **new_settings)
    assert reissued is not None
    assert to_typed_json({key: reissued[key] for key in TYPICAL["session_typed"]}) == TYPICAL["session_typed"]
    assert decode_cookie(new_cookie, **plug_settings(TYPICAL)) is None


def test_rotating_options_read_cookies_of_the_old_salts_and_re_issue_them() -> None:
    store = PhoenixCookieStore(
        signing_salt="newSalt1",
        encryption_salt="newSalt2",
        rotating_options=[{"signing_salt": TYPICAL["signing_salt"]}],
    )
    http = client(store)
    response, new_cookie = request(http, "/show", TYPICAL["cookie"])
    assert response.json() == TYPICAL["session_typed"]
    assert new_cookie is not None
    assert new_cookie.startswith("XCP.")  # the main options decide how it is written
    new_settings = {**plug_settings(TYPICAL), "signing_salt": "newSalt1", "encryption_salt": "newSalt2"}
    assert decode_cookie(new_cookie, **new_settings) is not None


def test_rotating_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="signing_salt"):
        PhoenixCookieStore(signing_salt="s", rotating_options=[{"encryption_salt": "e"}])
    with pytest.raises(ConfigurationError, match="only"):
        PhoenixCookieStore(signing_salt="s", rotating_options=[{"signing_salt": "s", "key": "x"}])
    with pytest.raises(ConfigurationError, match="list of dicts"):
        PhoenixCookieStore(signing_salt="s", rotating_options={"signing_salt": "s"})  # type: ignore[arg-type]


def test_a_secret_key_base_shorter_than_plug_allows_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="at least 64 bytes"):
        SessionMiddleware(
            Starlette(), secret_key_base=TYPICAL["secret_key_base"][:40], store=store_for(TYPICAL)
        )


# -- expiry (docs/phoenix.md) -------------------------------------------------------------


def test_the_guides_configuration_reads_phoenixs_session_and_counts_only_python_activity() -> None:
    clock = FakeClock()
    app = Starlette(routes=ROUTES)
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=TYPICAL["secret_key_base"],
        cookie_name=NAME,
        same_site="lax",
        expiry=Expiry(idle_timeout=None, absolute_timeout=14 * 24 * 3600),
        store=PhoenixCookieStore(signing_salt=TYPICAL["signing_salt"]),
        clock=clock,
    )
    http = TestClient(app)
    _, python_cookie = request(http, "/visit", TYPICAL["cookie"])
    clock.advance(days=13)  # only Phoenix served the user meanwhile: still a session here
    response, _ = request(http, "/show", python_cookie)
    assert response.json()["visits"] == 1
    clock.advance(days=2)  # past the absolute timeout counted from the first Python visit
    response, _ = request(http, "/show", python_cookie)
    assert response.json() == {}
    # A cookie Phoenix rewrote without "_sessionware" (its log-in clears the session) starts afresh.
    response, _ = request(http, "/show", TYPICAL["cookie"])
    assert response.json() == TYPICAL["session_typed"]


def phoenix_app(clock: FakeClock, **options: Any) -> TestClient:
    app = Starlette(routes=ROUTES)
    app.add_middleware(
        SessionMiddleware,
        secret_key_base=TYPICAL["secret_key_base"],
        cookie_name=NAME,
        store=PhoenixCookieStore(signing_salt=TYPICAL["signing_salt"]),
        clock=clock,
        **options,
    )
    return TestClient(app)


def test_by_default_a_session_busy_on_the_phoenix_side_does_not_idle_out_here() -> None:
    """The default expiry with this store has no idle timeout (Phoenix's requests are invisible)."""
    clock = FakeClock()
    http = phoenix_app(clock)
    _, python_cookie = request(http, "/visit", TYPICAL["cookie"])
    clock.advance(hours=8)  # far past AAL2's 30 idle minutes, Python saw nothing
    response, _ = request(http, "/show", python_cookie)
    assert response.json()["visits"] == 1
    clock.advance(days=30)  # AAL1's absolute timeout still bounds it
    response, _ = request(http, "/show", python_cookie)
    assert response.json() == {}


def test_an_idle_timeout_chosen_with_phoenix_cookies_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def build(**options: Any) -> SessionMiddleware:
        store = PhoenixCookieStore(signing_salt=TYPICAL["signing_salt"])
        return SessionMiddleware(
            Starlette(), secret_key_base=TYPICAL["secret_key_base"], store=store, **options
        )

    with caplog.at_level("WARNING", logger="sessionware"):
        build(expiry="aal2")
    assert (
        "idle timeout (1800 s) with PhoenixCookieStore counts the Python side's requests only" in caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="sessionware"):
        build(expiry=Expiry(idle_timeout=None, absolute_timeout=3600))
        default = build()
    assert "idle timeout" not in caplog.text
    assert default.engine.expiry.idle_timeout is None
    assert default.engine.expiry.absolute_timeout == 30 * 24 * 3600


def test_other_stores_keep_the_aal2_default() -> None:
    from sessionware import AAL2, CookieStore, MemoryStore

    for store in (None, CookieStore(), MemoryStore()):
        middleware = SessionMiddleware(Starlette(), secret_key_base=TYPICAL["secret_key_base"], store=store)
        assert middleware.engine.expiry == AAL2
