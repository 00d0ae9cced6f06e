"""Secrets: validation at construction, rotation order, subkeys per purpose."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sessionware import ConfigurationError, SessionMiddleware
from sessionware._keys import KeyRing

from .conftest import OLD_SECRET, SECRET


async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, b"y" * 31])
def test_a_secret_under_32_bytes_is_refused_with_how_to_make_one(secret: str | bytes) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SessionMiddleware(app, secret_key_base=secret)
    message = str(caught.value)
    assert "secret_key_base" in message
    assert "at least 32 bytes" in message
    assert "python -m sessionware gen-secret" in message


@pytest.mark.parametrize("secret", ["a" * 64, "changeme" * 8, "secret" * 10, "ab" * 40])
def test_a_low_diversity_secret_is_refused(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="random"):
        SessionMiddleware(app, secret_key_base=secret)


def test_every_secret_in_a_list_is_checked_and_named_by_position() -> None:
    with pytest.raises(ConfigurationError, match=r"secret_key_base\[1\]"):
        SessionMiddleware(app, secret_key_base=[SECRET, "too short"])


@pytest.mark.parametrize("bad", [[], None, 42, [SECRET, 42], [SECRET, SECRET]])
def test_malformed_secret_lists_are_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        SessionMiddleware(app, secret_key_base=bad)  # type: ignore[arg-type]


def test_bytes_and_str_secrets_are_equivalent() -> None:
    assert KeyRing(SECRET).subkeys("p", "c") == KeyRing(SECRET.encode()).subkeys("p", "c")


def test_the_first_secret_is_current_and_all_verify() -> None:
    ring = KeyRing([SECRET, OLD_SECRET])
    assert ring.current_id == KeyRing(SECRET).current_id
    assert ring.indexes_for(KeyRing(OLD_SECRET).current_id) == (1,)
    assert ring.indexes_for(b"\x00\x00\x00\x00") == ()


def test_subkeys_differ_per_purpose_and_per_cookie_name_and_secret() -> None:
    ring = KeyRing(SECRET)
    keys = {
        ring.subkeys("session-encrypt", "session")[0],
        ring.subkeys("session-sign", "session")[0],
        ring.subkeys("session-id", "session")[0],
        ring.subkeys("session-encrypt", "other")[0],
        KeyRing(OLD_SECRET).subkeys("session-encrypt", "session")[0],
    }
    assert len(keys) == 5
    assert all(len(key) == 32 for key in keys)
    assert SECRET.encode() not in keys


def test_secrets_never_appear_in_reprs() -> None:
    ring = KeyRing([SECRET, OLD_SECRET])
    assert SECRET not in repr(ring)
    middleware = SessionMiddleware(app, secret_key_base=SECRET)
    assert SECRET not in repr(middleware.engine.keys)
    assert SECRET not in repr(vars(middleware))


def test_gen_secret_prints_a_fresh_64_byte_secret_that_the_middleware_accepts() -> None:
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "sessionware", "gen-secret"], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outputs[0] != outputs[1]
    import base64

    assert len(base64.urlsafe_b64decode(outputs[0] + "==")) == 64
    SessionMiddleware(app, secret_key_base=outputs[0])
