"""Fuzz the Erlang term decoder and the Plug cookie formats with atheris (libFuzzer).

    .venv/bin/python scripts/fuzz_phoenix.py -runs=200000          # bounded
    .venv/bin/python scripts/fuzz_phoenix.py -max_total_time=600   # ten minutes

The property: whatever the bytes, ``binary_to_term`` returns a term (which
encodes back to a term equal to it) or raises ``EtfError``, and
``decode_cookie`` returns a dict or None -- nothing else escapes. Inputs reach
the term decoder behind a *valid* MAC or AEAD tag too, since the fuzzer signs
and encrypts what it generates with the configuration's own keys: that is the
"validly signed hostile payload" case. Any other exception is a crash, and
libFuzzer writes the input that caused it to ``crash-*``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from sessionware import _plug
    from sessionware._etf import EtfError, binary_to_term, term_to_binary
    from sessionware.phoenix import decode_cookie

SECRET = "wZcEw/ZAUehU1tD1k0hHuuFJp9q6h1pesDnhKxB6VkVAYKKoU/F/g5HRORdWM/rw"  # noqa: S105 - the vectors' public one
SIGNED = {"secret_key_base": SECRET, "signing_salt": "pUb5igN8"}
ENCRYPTED = {**SIGNED, "encryption_salt": "hHb1Xz2q"}
SIGNING_KEY = _plug.derive_key(SECRET.encode(), b"pUb5igN8", 1000, 32, "sha256")
ENCRYPTION_KEY = _plug.derive_key(SECRET.encode(), b"hHb1Xz2q", 1000, 32, "sha256")


def check_term(data: bytes) -> None:
    """binary_to_term: a term that round-trips, or EtfError."""
    try:
        term = binary_to_term(data)
    except EtfError:
        return
    again = binary_to_term(term_to_binary(term))
    if again != term:
        raise AssertionError(f"{term!r} re-encoded to {again!r}")


def check_cookie(cookie: str, options: dict[str, str]) -> None:
    """decode_cookie: a dict or None."""
    result = decode_cookie(cookie, **options)
    if result is not None and not isinstance(result, dict):
        raise AssertionError(f"decode_cookie returned {type(result).__name__}")


def test_one_input(data: bytes) -> None:
    """One libFuzzer input: the first byte picks what the rest is fed to."""
    if not data:
        return
    mode, body = data[0] % 6, data[1:]
    if mode == 0:
        check_term(body)
    elif mode == 1:
        check_term(b"\x83" + body)
    elif mode == 2:  # a payload behind a valid MAC
        check_cookie(_plug.sign(b"\x83" + body, SIGNING_KEY), SIGNED)
    elif mode == 3:  # a payload behind a valid XChaCha20-Poly1305 tag
        check_cookie(_plug.xcp_encrypt(b"\x83" + body, ENCRYPTION_KEY), ENCRYPTED)
    elif mode == 4:  # a payload behind a valid AES-GCM key wrap
        check_cookie(_plug.a128gcm_encrypt(b"\x83" + body, ENCRYPTION_KEY, SIGNING_KEY), ENCRYPTED)
    else:  # arbitrary cookie text, for the parsers of both configurations
        text = body.decode("utf-8", "replace")
        check_cookie(text, SIGNED)
        check_cookie(text, ENCRYPTED)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
