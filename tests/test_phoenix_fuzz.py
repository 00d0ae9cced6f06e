"""Fuzzing decode_cookie in every format: a dict, or None -- nothing else escapes.

Payloads reach the term decoder behind a valid MAC or AEAD tag too (made here
with the configuration's own keys), which is what a hostile holder of
``secret_key_base`` could send. The atheris run of scripts/fuzz_phoenix.py is
here in a short, bounded form; run the script itself for longer sessions.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionware import _plug
from sessionware.phoenix import decode_cookie, encode_cookie

SECRET = "wZcEw/ZAUehU1tD1k0hHuuFJp9q6h1pesDnhKxB6VkVAYKKoU/F/g5HRORdWM/rw"
SIGNED: dict[str, Any] = {"secret_key_base": SECRET, "signing_salt": "pUb5igN8"}
ENCRYPTED: dict[str, Any] = {**SIGNED, "encryption_salt": "hHb1Xz2q"}
SIGNING_KEY = _plug.derive_key(SECRET.encode(), b"pUb5igN8", 1000, 32, "sha256")
ENCRYPTION_KEY = _plug.derive_key(SECRET.encode(), b"hHb1Xz2q", 1000, 32, "sha256")
SESSION = {"_csrf_token": "_TwMfeXgSWLXnZilqb7G5e5w", "user_token": bytes(range(200, 232)), "n": 7}
FUZZ = settings(max_examples=300, derandomize=True, deadline=None)

SEALS = {
    "signed": lambda payload: _plug.sign(payload, SIGNING_KEY),
    "xcp": lambda payload: _plug.xcp_encrypt(payload, ENCRYPTION_KEY),
    "a128gcm": lambda payload: _plug.a128gcm_encrypt(payload, ENCRYPTION_KEY, SIGNING_KEY),
}


def options_for(format: str) -> dict[str, Any]:
    return SIGNED if format == "signed" else ENCRYPTED


def decodes_or_none(cookie: str, options: dict[str, Any]) -> dict[Any, Any] | None:
    result = decode_cookie(cookie, **options)
    assert result is None or isinstance(result, dict)
    return result


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_any_text_is_a_session_or_none(text: str) -> None:
    decodes_or_none(text, SIGNED)
    decodes_or_none(text, ENCRYPTED)


@FUZZ
@given(
    st.sampled_from(["SFMyNTY.", "SFMzODQ.", "SFM1MTI.", "XCP.", "QTEyOEdDTQ."]),
    st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.", max_size=80)),
)
def test_fuzz_cookie_shaped_text_is_a_session_or_none(header: str, parts: list[str]) -> None:
    cookie = header + ".".join(parts)
    decodes_or_none(cookie, SIGNED)
    decodes_or_none(cookie, ENCRYPTED)


@pytest.mark.parametrize("format", sorted(SEALS))
@FUZZ
@given(payload=st.binary(max_size=300))
def test_fuzz_validly_sealed_payloads_are_a_session_or_none(format: str, payload: bytes) -> None:
    for data in (payload, b"\x83" + payload, b"\x83t" + payload):
        decodes_or_none(SEALS[format](data), options_for(format))


@pytest.mark.parametrize("format", sorted(SEALS))
@FUZZ
@given(data=st.data())
def test_fuzz_a_mutated_cookie_is_the_same_session_or_none(format: str, data: st.DataObject) -> None:
    """A changed character never yields another session: the MAC or tag covers it
    (only base64's unused trailing bits and padding may change and still decode)."""
    options = options_for(format)
    cookie = list(encode_cookie(SESSION, **options, format=format))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        position = data.draw(st.integers(0, len(cookie) - 1), label="position")
        cookie[position] = data.draw(st.sampled_from("AZaz09-_.=+/ é"), label="character")
    result = decodes_or_none("".join(cookie), options)
    assert result is None or result == SESSION


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
def test_atheris_finds_no_escape_in_a_short_bounded_run(tmp_path: Path) -> None:
    script = Path(__file__).parent.parent / "scripts" / "fuzz_phoenix.py"
    result = subprocess.run(
        [sys.executable, str(script), "-runs=20000", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 20000 runs" in result.stderr
    assert not list(tmp_path.iterdir())  # no crash-* input written
